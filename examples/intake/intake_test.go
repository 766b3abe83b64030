package intake_test

import (
	"context"
	"encoding/json"
	"fmt"
	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/adapters/serve"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/store"
)

// ledger is the booking service the flow calls: it deduplicates by id.
type ledger struct {
	mu    sync.Mutex
	calls map[string]int
}

func (l *ledger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var b struct {
		ID    string  `json:"id"`
		Total float64 `json:"total"`
	}
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.ID == "" || b.ID != r.Header.Get("Idempotency-Key") {
		http.Error(w, `{"error": "bad booking"}`, http.StatusBadRequest)
		return
	}
	l.mu.Lock()
	l.calls[b.ID]++
	l.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"booked": %q}`, b.ID)
}

func buildFlowrun(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "flowrun")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/flowrun")
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run())
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// server is one flowrun serve process.
type server struct {
	cmd  *exec.Cmd
	done chan error
	log  string // its log file
}

func start(t *testing.T, bin string, args []string, addr string) *server {
	t.Helper()
	cmd := exec.Command(bin, args...)
	logPath := filepath.Join(t.TempDir(), "serve.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	t.Cleanup(func() { log.Close() })
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	s := &server{cmd: cmd, done: make(chan error, 1), log: logPath}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}, 30*time.Second, 10*time.Millisecond, "flowrun serve did not start listening")
	require.Eventually(t, func() bool {
		out, _ := os.ReadFile(logPath)
		return strings.Contains(string(out), "listening http "+addr+"\n")
	}, 5*time.Second, 10*time.Millisecond, "flowrun serve says where it listens")
	return s
}

// TestCrashSafety sends 1,000 orders, kills the server with SIGKILL part
// way, restarts it, and proves every order ends done exactly once in the
// store, and is booked exactly once in the ledger (effects idempotent by
// message id).
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowrun")
	}
	bin := buildFlowrun(t)
	led := &ledger{calls: map[string]int{}}
	ls := httptest.NewServer(led)
	defer ls.Close()

	data := t.TempDir()
	addr := freeAddr(t)
	args := []string{"serve", "intake.yaml", "--data", data, "--admin", "off", "--drain", "5s",
		"--set", "vars.ledger=" + ls.URL,
		"--set", "channels.intake.from.http.listen=" + addr}
	srv := start(t, bin, args, addr)

	const total = 1000
	var answered atomic.Int32
	var killOnce sync.Once
	killed := make(chan struct{})
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)

	work := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, total)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				key := fmt.Sprintf("order-%04d", i)
				body := fmt.Sprintf(`{"items": [{"sku": "s%d", "price": 1.5, "qty": %d}]}`, i, i%5+1)
				for {
					if time.Now().After(deadline) {
						errs <- fmt.Errorf("%s: never answered", key)
						break
					}
					req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/orders", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Idempotency-Key", key)
					resp, err := client.Do(req)
					if err != nil {
						time.Sleep(20 * time.Millisecond) // server down: retry the same key
						continue
					}
					var out map[string]any
					_ = json.NewDecoder(resp.Body).Decode(&out)
					resp.Body.Close()
					if resp.StatusCode == http.StatusServiceUnavailable {
						time.Sleep(20 * time.Millisecond)
						continue
					}
					if resp.StatusCode != http.StatusOK {
						errs <- fmt.Errorf("%s: status %d: %v", key, resp.StatusCode, out)
						break
					}
					if want := 1.5 * float64(i%5+1); out["total"] != want {
						errs <- fmt.Errorf("%s: total %v, want %v", key, out["total"], want)
					}
					if answered.Add(1) == total*3/10 {
						killOnce.Do(func() { close(killed) })
					}
					break
				}
			}
		})
	}
	go func() {
		defer close(work)
		for i := range total {
			work <- i
		}
	}()

	<-killed
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGKILL))
	<-srv.done
	srv = start(t, bin, args, addr)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Graceful stop.
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, <-srv.done, "flowrun serve exits 0 on SIGTERM")

	st, err := serve.OpenStore(nil, "sqlite:"+filepath.Join(data, "intake.db"))
	require.NoError(t, err)
	defer st.Close()
	ctx := context.Background()
	all, err := st.Count(ctx, store.Query{})
	require.NoError(t, err)
	done, err := st.Count(ctx, store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, total, all, "one record per order")
	assert.Equal(t, total, done, "every order is done")

	led.mu.Lock()
	defer led.mu.Unlock()
	assert.Len(t, led.calls, total, "every order booked")
	again := 0
	for _, n := range led.calls {
		again += n - 1
	}
	t.Logf("%d orders; %d bookings repeated for messages in flight at the kill (deduplicated by id)", total, again)
}

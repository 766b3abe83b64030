package main_test

// End-to-end tests of hostile input and faults against flowrun serve run
// as a child process: a message that kills the process, a result that
// cannot be stored, a SIGTERM under load.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
	flowerrors "github.com/svcflow/svcflow/errors"
)

var (
	crashOnce sync.Once
	crashBin  string
	crashErr  error
)

// crashrunBin builds testdata/crashrun, flowrun with a service that exits
// the process on a poison payload, once per test run.
func crashrunBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a flowrun")
	}
	bin := flowrunBin(t) // also skips without the go command
	crashOnce.Do(func() {
		crashBin = filepath.Join(filepath.Dir(bin), "crashrun")
		out, err := exec.Command("go", "build", "-o", crashBin, "./testdata/crashrun").CombinedOutput()
		if err != nil {
			crashErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, crashErr)
	return crashBin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// child is one flowrun serve process.
type child struct {
	cmd  *exec.Cmd
	log  string
	done chan error
}

func startServe(t *testing.T, bin string, args ...string) *child {
	t.Helper()
	c := &child{log: filepath.Join(t.TempDir(), "serve.log"), done: make(chan error, 1)}
	f, err := os.Create(c.log)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	c.cmd = exec.Command(bin, append([]string{"serve"}, args...)...)
	c.cmd.Stdout, c.cmd.Stderr = f, f
	require.NoError(t, c.cmd.Start())
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { _ = c.cmd.Process.Kill() })
	return c
}

// listening waits until c serves addr, or fails the test.
func (c *child) listening(t *testing.T, addr string) {
	t.Helper()
	if !assert.Eventually(t, func() bool {
		out, _ := os.ReadFile(c.log)
		return strings.Contains(string(out), "listening http "+addr+"\n")
	}, 30*time.Second, 10*time.Millisecond) {
		t.Fatalf("flowrun serve did not start serving %s; its log:\n%s", addr, c.logText())
	}
}

// exit waits for c to exit and returns its status.
func (c *child) exit(t *testing.T) int {
	t.Helper()
	select {
	case err := <-c.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	case <-time.After(30 * time.Second):
		out, _ := os.ReadFile(c.log)
		t.Fatalf("flowrun serve did not exit; its log:\n%s", out)
		return -1
	}
}

func (c *child) logText() string {
	out, _ := os.ReadFile(c.log)
	return string(out)
}

const hostileYAML = `version: 1
flows:
  f:
    input: [x]
    steps:
      - crash
      - set: {total: "x * 10"}
channels:
  c:
    from: {http: {listen: "ADDR", path: /in, method: POST}}
    flow: f
`

type answer struct {
	code int
	body map[string]any
	id   string // the X-Message-Id header
	err  error
}

func postKey(url, key, body string) answer {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return answer{code: resp.StatusCode, body: out, id: resp.Header.Get("X-Message-Id")}
}

func openStore(t *testing.T, data string) store.Store {
	t.Helper()
	st, err := serve.OpenStore(nil, "sqlite:"+filepath.Join(data, "c.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

// TestPoisonMessageIsSetAside: a message whose service exits the process
// kills flowrun serve on its first run and on each recovery; after the
// third crashed run, the next start sets it aside (state dead, outcome
// fatal, "gave up after 3 crashed runs") and serves normally, and a client
// sending it again gets a 500 without it running.
func TestPoisonMessageIsSetAside(t *testing.T) {
	bin := crashrunBin(t)
	dir, data, addr := t.TempDir(), t.TempDir(), freeAddr(t)
	file := filepath.Join(dir, "hostile.yaml")
	require.NoError(t, os.WriteFile(file, []byte(strings.ReplaceAll(hostileYAML, "ADDR", addr)), 0o644))
	args := []string{file, "--data", data, "--admin", "off", "--drain", "5s"}
	url := "http://" + addr + "/in"

	srv := startServe(t, bin, args...)
	srv.listening(t, addr)
	a := postKey(url, "poison-1", `{"poison": true, "x": 1}`)
	require.Error(t, a.err, "the process died answering")
	require.Equal(t, 3, srv.exit(t), "the service exited the process")

	for run := 2; run <= 3; run++ { // each start recovers it and dies again
		srv = startServe(t, bin, args...)
		require.Equal(t, 3, srv.exit(t), "start %d: recovery ran the poison message:\n%s", run, srv.logText())
	}

	srv = startServe(t, bin, args...)
	srv.listening(t, addr)
	a = postKey(url, "ok-1", `{"x": 2}`)
	require.NoError(t, a.err)
	assert.Equal(t, 200, a.code, "%v", a.body)
	assert.Equal(t, 20.0, a.body["total"])
	a = postKey(url, "poison-1", `{"poison": true, "x": 1}`)
	require.NoError(t, a.err, "delivered again, it is not run")
	assert.Equal(t, 500, a.code)
	assert.NotEmpty(t, a.body["error_id"])
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, srv.exit(t))
	assert.Contains(t, srv.logText(), "message set aside")

	st := openStore(t, data)
	rec, err := st.Get(context.Background(), "poison-1")
	require.NoError(t, err)
	assert.Equal(t, store.Dead, rec.State)
	assert.Equal(t, flowerrors.KindFatal, rec.Outcome)
	assert.Equal(t, "gave up after 3 crashed runs", rec.Err)
	assert.Equal(t, 3, rec.Attempts)
	require.NoError(t, st.Close())

	// A user finds it.
	out, err := exec.Command(bin, "messages", file, "--data", data, "--channel", "c", "--state", "dead").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "poison-1")
	assert.Contains(t, string(out), "gave up after 3 crashed runs")
}

// TestUnstorableResultEndsInError: a run whose context holds +Inf (from
// 1e308 * 10) cannot be stored as JSON: the request answers 500 with an
// error id, and the message ends in state error with the reason, never
// left processing.
func TestUnstorableResultEndsInError(t *testing.T) {
	bin := crashrunBin(t)
	dir, data, addr := t.TempDir(), t.TempDir(), freeAddr(t)
	file := filepath.Join(dir, "hostile.yaml")
	require.NoError(t, os.WriteFile(file, []byte(strings.ReplaceAll(hostileYAML, "ADDR", addr)), 0o644))
	srv := startServe(t, bin, file, "--data", data, "--admin", "off")
	srv.listening(t, addr)
	a := postKey("http://"+addr+"/in", "inf-1", `{"x": 1e308}`)
	require.NoError(t, a.err)
	assert.Equal(t, 500, a.code, "%v", a.body)
	assert.NotEmpty(t, a.body["error_id"])
	assert.Equal(t, "inf-1", a.body["id"])
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, srv.exit(t))

	rec, err := openStore(t, data).Get(context.Background(), "inf-1")
	require.NoError(t, err)
	assert.Equal(t, store.Error, rec.State)
	assert.Equal(t, flowerrors.KindFailed, rec.Outcome)
	assert.Contains(t, rec.Err, "the result cannot be stored")
	assert.NotContains(t, rec.Message.Context, "total", "the unstorable result is not kept")
}

// booker counts the bookings per id.
type booker struct {
	mu    sync.Mutex
	calls map[string]int
}

func (b *booker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/book/")
	b.mu.Lock()
	b.calls[id]++
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"booked": %q}`, id)
}

const loadYAML = `version: 1
flows:
  book:
    input: [x, meta]
    steps:
      - set: {total: "x * 2"}
      - http: {url: '{{var "ledger"}}/book/{{.meta.id}}', into: booking}
channels:
  c:
    from: {http: {listen: "ADDR", path: /in, method: POST}}
    flow: book
vars:
  ledger: LEDGER
`

// TestSIGTERMUnderLoad: 2,000 requests from 32 clients; SIGTERM half way.
// flowrun serve drains and exits 0, and every request answered 2xx is done
// exactly once in the store and booked exactly once.
func TestSIGTERMUnderLoad(t *testing.T) {
	bin := crashrunBin(t)
	led := &booker{calls: map[string]int{}}
	ls := httptest.NewServer(led)
	defer ls.Close()
	dir, data, addr := t.TempDir(), t.TempDir(), freeAddr(t)
	file := filepath.Join(dir, "load.yaml")
	text := strings.NewReplacer("ADDR", addr, "LEDGER", ls.URL).Replace(loadYAML)
	require.NoError(t, os.WriteFile(file, []byte(text), 0o644))
	srv := startServe(t, bin, file, "--data", data, "--admin", "off", "--drain", "20s")
	srv.listening(t, addr)

	const total, clients = 2000, 32
	var answered atomic.Int32
	term := make(chan struct{})
	var termOnce sync.Once
	ok := make([]bool, total)
	work := make(chan int)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := range work {
				a := postKey("http://"+addr+"/in", fmt.Sprintf("k-%04d", i), fmt.Sprintf(`{"x": %d}`, i))
				if a.err == nil && a.code/100 == 2 {
					ok[i] = true
					if a.body["total"] != float64(2*i) {
						t.Errorf("k-%04d: total %v", i, a.body["total"])
					}
				} else if a.err == nil && a.code != http.StatusServiceUnavailable {
					t.Errorf("k-%04d: status %d: %v", i, a.code, a.body)
				}
				if answered.Add(1) == total/2 {
					termOnce.Do(func() { close(term) })
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
	<-term
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	wg.Wait()
	require.Equal(t, 0, srv.exit(t), "flowrun serve exits 0 on SIGTERM:\n%s", srv.logText())

	st := openStore(t, data)
	led.mu.Lock()
	defer led.mu.Unlock()
	n := 0
	for i, good := range ok {
		if !good {
			continue
		}
		n++
		key := fmt.Sprintf("k-%04d", i)
		rec, err := st.Get(context.Background(), key)
		if !assert.NoError(t, err, key) {
			continue
		}
		assert.Equal(t, store.Done, rec.State, key)
		assert.Equal(t, 1, rec.Attempts, "%s: run once", key)
		assert.Equal(t, 1, led.calls[key], "%s: booked once", key)
	}
	assert.GreaterOrEqual(t, n, total/2, "the requests answered before SIGTERM")
	owed, err := st.Count(context.Background(), store.Query{States: []store.State{store.Pending, store.Processing}})
	require.NoError(t, err)
	assert.Zero(t, owed, "a graceful stop leaves nothing owed")
	t.Logf("%d of %d requests answered 2xx before the stop", n, total)
}

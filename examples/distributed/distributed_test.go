package distributed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
)

// ledger is the booking service the flow calls: it books each id once
// and counts the calls.
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

func (l *ledger) booked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

func TestValidates(t *testing.T) {
	cfg, err := config.Load([]string{"distributed.yaml"})
	require.NoError(t, err)
	require.NoError(t, serve.Check(cfg, serve.Options{DataDir: t.TempDir()}))
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// worker is one flowrun serve process.
type worker struct {
	cmd   *exec.Cmd
	done  chan error
	admin string
}

func startWorker(t *testing.T, bin string, args []string, admin, logPath string) *worker {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--admin", admin)...)
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	t.Cleanup(func() { log.Close() })
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	w := &worker{cmd: cmd, done: make(chan error, 1), admin: admin}
	go func() { w.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	require.Eventually(t, func() bool {
		r, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	}, 60*time.Second, 20*time.Millisecond, "worker ready (see %s)", logPath)
	return w
}

// TestThreeWorkersOneKilled runs three flowrun worker processes on one
// stream, publishes the orders with flowrun publish, SIGKILLs a worker
// part way and restarts it, and proves that every order is booked, once
// per id in the ledger (its effect), none is lost, every worker's store
// ends with nothing unfinished, and the stream's work is done (consumer
// pending 0). The first worker runs the embedded nats-server, the others
// connect to it. SVCFLOW_DISTRIBUTED_MESSAGES sets the count (default
// 3,000, to keep CI short; the run is 20,000).
func TestThreeWorkersOneKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowrun")
	}
	total := 3000
	if s := os.Getenv("SVCFLOW_DISTRIBUTED_MESSAGES"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err)
		total = n
	}
	bin := filepath.Join(t.TempDir(), "flowrun")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/flowrun")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	// Worker 0 runs the embedded nats-server (JetStream under its --data),
	// as on one machine; the others connect to it.
	listen := "127.0.0.1:" + strconv.Itoa(freePort(t))
	url := "nats://" + listen

	led := &ledger{calls: map[string]int{}}
	ls := httptest.NewServer(led)
	defer ls.Close()

	logs := t.TempDir()
	var datas []string
	args := func(i int) []string {
		a := []string{"serve", "distributed.yaml", "--data", datas[i], "--drain", "10s",
			"--set", "vars.ledger=" + ls.URL,
			"--set", "channels.orders.from.nats.ack_wait=3s"}
		if i == 0 {
			return append(a, "--set", "channels.orders.from.nats.listen="+listen)
		}
		return append(a, "--set", "channels.orders.from.nats.url="+url)
	}
	workers := make([]*worker, 3)
	for i := range workers {
		datas = append(datas, t.TempDir())
		workers[i] = startWorker(t, bin, args(i), "127.0.0.1:"+strconv.Itoa(freePort(t)), filepath.Join(logs, fmt.Sprintf("w%d.log", i)))
	}

	// The orders, published with flowrun publish: ids from order_id.
	var in strings.Builder
	for i := range total {
		fmt.Fprintf(&in, `{"order_id": "o-%05d", "items": [{"sku": "s%d", "price": 1.5, "qty": %d}]}`+"\n", i, i, i%5+1)
	}
	orders := filepath.Join(t.TempDir(), "orders.jsonl")
	require.NoError(t, os.WriteFile(orders, []byte(in.String()), 0o644))
	pub := exec.Command(bin, "publish", orders, "--subject", "orders.new", "--url", url, "--id", "order_id", "--progress", "none")
	published := make(chan []byte, 1)
	go func() {
		out, err := pub.CombinedOutput()
		assert.NoError(t, err, "%s", out)
		published <- out
	}()

	// Kill a worker part way, and restart it on its data.
	deadline := time.Now().Add(5 * time.Minute)
	for led.booked() < total*3/10 {
		require.True(t, time.Now().Before(deadline), "bookings stalled at %d", led.booked())
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, workers[1].cmd.Process.Signal(syscall.SIGKILL))
	<-workers[1].done
	killedAt := led.booked()
	workers[1] = startWorker(t, bin, args(1), workers[1].admin, filepath.Join(logs, "w1.log"))
	t.Logf("publish: %s", strings.TrimSpace(string(<-published)))

	nc, err := natsgo.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	require.Eventually(t, func() bool {
		cons, err := js.Consumer(ctx, "ORDERS", "workers")
		if err != nil {
			return false
		}
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && led.booked() == total
	}, 5*time.Minute, 50*time.Millisecond, "every order booked, the consumer has nothing pending")
	stream, err := js.Stream(ctx, "ORDERS")
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(0), info.State.Msgs, "a work-queue stream is empty once every message is acked")

	for i := len(workers) - 1; i >= 0; i-- { // the server's worker last
		require.NoError(t, workers[i].cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, <-workers[i].done, "worker %d exits 0 on SIGTERM", i)
	}

	// Every order is done in some worker's store; no store has an order
	// unfinished or failed.
	doneIDs := map[string]bool{}
	for i, d := range datas {
		st, err := serve.OpenStore(nil, "sqlite:"+filepath.Join(d, "orders.db"))
		require.NoError(t, err)
		recs, err := st.Search(ctx, store.Query{States: []store.State{store.Done}, Limit: total * 2})
		require.NoError(t, err)
		for _, r := range recs {
			doneIDs[r.Message.ID] = true
		}
		other, err := st.Count(ctx, store.Query{States: []store.State{store.Pending, store.Processing, store.Error, store.Rejected}})
		require.NoError(t, err)
		assert.Zero(t, other, "worker %d: messages not done", i)
		t.Logf("worker %d: %d done", i, len(recs))
		require.NoError(t, st.Close())
	}
	assert.Len(t, doneIDs, total, "every order done in a store")

	led.mu.Lock()
	defer led.mu.Unlock()
	assert.Len(t, led.calls, total, "every order booked, once per id")
	again := 0
	for _, n := range led.calls {
		again += n - 1
	}
	t.Logf("%d orders over 3 workers; worker 1 killed at %d bookings; %d booking calls repeated (runs of messages in flight at the kill, deduplicated by id)",
		total, killedAt, again)
}

package distributed_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/postgres"
	"github.com/svcflow/svcflow/cmd/flowrun/cli"
	"github.com/svcflow/svcflow/internal/pgtest"
)

// TestTwoWorkersSharePostgres runs two flowrun serve workers on the
// stream of distributed.yaml with one PostgreSQL message store (a real
// server the test starts; skipped where none is installed): every order
// is done once (one record each, one attempt, booked once per id), and
// the store's search and replay work from either worker's configuration
// (flowrun messages with each one's --data): each lists every order, and
// a message one worker ran is replayed from the other's.
func TestTwoWorkersSharePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowrun")
	}
	pg := pgtest.Start(t)
	const total = 600
	bin := filepath.Join(t.TempDir(), "flowrun")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/flowrun")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	listen := "127.0.0.1:" + strconv.Itoa(freePort(t))
	url := "nats://" + listen
	led := &ledger{calls: map[string]int{}}
	ls := httptest.NewServer(led)
	defer ls.Close()

	// distributed.yaml with the shared store (every worker names it) and
	// this test's ledger.
	src, err := os.ReadFile("distributed.yaml")
	require.NoError(t, err)
	text := strings.Replace(string(src), "ledger: http://127.0.0.1:8082", "ledger: "+ls.URL, 1) + "    store: " + pg.URL + "\n"
	file := filepath.Join(t.TempDir(), "distributed.yaml")
	require.NoError(t, os.WriteFile(file, []byte(text), 0o644))
	logs := t.TempDir()
	datas := []string{t.TempDir(), t.TempDir()}
	args := func(i int) []string {
		a := []string{"serve", file, "--data", datas[i], "--drain", "10s"}
		if i == 0 {
			return append(a, "--set", "channels.orders.from.nats.listen="+listen)
		}
		return append(a, "--set", "channels.orders.from.nats.url="+url)
	}
	workers := make([]*worker, 2)
	for i := range workers {
		workers[i] = startWorker(t, bin, args(i), "127.0.0.1:"+strconv.Itoa(freePort(t)), filepath.Join(logs, fmt.Sprintf("w%d.log", i)))
	}
	var in strings.Builder
	for i := range total {
		fmt.Fprintf(&in, `{"order_id": "p-%05d", "items": [{"sku": "s%d", "price": 2, "qty": %d}]}`+"\n", i, i, i%5+1)
	}
	orders := filepath.Join(t.TempDir(), "orders.jsonl")
	require.NoError(t, os.WriteFile(orders, []byte(in.String()), 0o644))
	out, err := exec.Command(bin, "publish", orders, "--subject", "orders.new", "--url", url, "--id", "order_id", "--progress", "none").CombinedOutput()
	require.NoError(t, err, "%s", out)

	ctx := context.Background()
	st, err := postgres.Open(ctx, pg.URL, postgres.Options{Table: "orders"}) // the channel's tables
	require.NoError(t, err)
	defer st.Close()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		n, err := st.Count(ctx, store.Query{States: []store.State{store.Done}})
		if err == nil && n == total {
			break
		}
		if time.Now().After(deadline) {
			for i := range workers {
				b, _ := os.ReadFile(filepath.Join(logs, fmt.Sprintf("w%d.log", i)))
				t.Logf("worker %d:\n%s", i, tail(string(b), 3000))
			}
			t.Fatalf("%d of %d orders done in the shared store (%v)", n, total, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := len(workers) - 1; i >= 0; i-- {
		require.NoError(t, workers[i].cmd.Process.Signal(syscall.SIGTERM))
		require.NoError(t, <-workers[i].done, "worker %d exits 0 on SIGTERM", i)
	}

	recs, err := st.Search(ctx, store.Query{Limit: total * 2})
	require.NoError(t, err)
	require.Len(t, recs, total, "one record per order")
	for _, r := range recs {
		assert.Equal(t, store.Done, r.State, r.Message.ID)
		assert.Equal(t, 1, r.Attempts, "%s ran once", r.Message.ID)
	}
	led.mu.Lock()
	assert.Len(t, led.calls, total)
	for id, n := range led.calls {
		assert.Equal(t, 1, n, "%s booked once", id)
	}
	led.mu.Unlock()

	// Search and replay from either worker's configuration.
	messages := func(i int, extra ...string) (int, string, string) {
		var o, e bytes.Buffer
		code := cli.Run(ctx, append([]string{"messages", file, "--channel", "orders", "--data", datas[i]}, extra...), cli.WithStdio(nil, &o, &e))
		return code, o.String(), e.String()
	}
	for i := range workers {
		code, o, e := messages(i, "--state", "done", "--limit", strconv.Itoa(total*2))
		require.Equal(t, 0, code, e)
		assert.Equal(t, total, strings.Count(o, "p-0"), "worker %d's configuration lists every order", i)
	}
	code, o, e := messages(1, "replay", "p-00007")
	require.Equal(t, 0, code, "%s%s", o, e)
	code, o, e = messages(0, "show", "p-00007")
	require.Equal(t, 0, code, e)
	assert.Contains(t, o, "p-00007")
	rec, err := st.Get(ctx, "p-00007")
	require.NoError(t, err)
	assert.Equal(t, store.Done, rec.State)
	assert.Equal(t, 2, rec.Attempts, "replayed once, seen by the other worker's configuration")
	led.mu.Lock()
	assert.Equal(t, 2, led.calls["p-00007"], "the replay ran the flow again (the ledger dedupes by id)")
	led.mu.Unlock()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	snats "github.com/svcflow/svcflow/adapters/nats"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var quiet = slog.New(slog.DiscardHandler)

// startServer starts a real nats-server with JetStream stored in dir on
// port (0: any free one).
func startServer(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	if port == 0 {
		port = freePort(t)
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	require.NoError(t, err)
	srv.Start()
	require.True(t, srv.ReadyForConnections(10*time.Second), "nats-server ready")
	return srv
}

func stopServer(srv *server.Server) {
	srv.Shutdown()
	srv.WaitForShutdown()
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// spec is a source spec with the YAML defaults.
func spec(url string) snats.Spec {
	s := snats.Spec{Stream: "WORK", Subjects: []string{"work.>"}, Retention: "workqueue", Storage: "file", Replicas: 1,
		Duplicates: 2 * time.Minute, Consumer: "workers", MaxDeliver: 5, AckWait: 30 * time.Second, MaxAckPending: 1000,
		Concurrency: 16, MaxNakDelay: time.Minute, Listen: "127.0.0.1:0"}
	if url != "" {
		s.URL = []string{url}
	}
	return s
}

func client(t testing.TB, url string) (*natsgo.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := natsgo.Connect(url, natsgo.MaxReconnects(-1), natsgo.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return nc, js
}

func publish(t testing.TB, js jetstream.JetStream, subject, id, body string) {
	t.Helper()
	msg := natsgo.NewMsg(subject)
	msg.Data = []byte(body)
	if id != "" {
		msg.Header.Set(natsgo.MsgIdHdr, id)
	}
	// A server just restarted may not have the client back yet: publish
	// again (the stream drops a repeat of an id).
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := js.PublishMsg(ctx, msg)
		cancel()
		if err == nil || id == "" || time.Now().After(deadline) {
			require.NoError(t, err)
			return
		}
	}
}

// runChannel runs a channel of f fed by src until the test ends.
func runChannel(t testing.TB, name string, f *flow.Flow, src channel.Source, st store.Store) *channel.Channel {
	t.Helper()
	ch, err := channel.New(channel.Config{Name: name, Flow: f, Sources: []channel.Source{src}, Store: st, Logger: quiet,
		RetryAfter: 20 * time.Millisecond, MaxInFlight: -1})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, ch.Stop(ctx))
	})
	return ch
}

// runs counts runs per message id.
type runs struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *runs) add(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string]int{}
	}
	r.n[id]++
	return r.n[id]
}

func (r *runs) get(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[id]
}

func metaID(c *fc.Context) string {
	m, _ := c.Get("meta")
	id, _ := m.(map[string]any)["id"].(string)
	return id
}

// TestSettle: a Stop is acked and never redelivered; a Retry whose
// retries ran out is redelivered with a delay and then acked; one that
// keeps failing is terminated at max_deliver and lands on the dead-letter
// subject with its error text; a failure is dead-lettered at once.
func TestSettle(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	defer stopServer(srv)
	_, js := client(t, srv.ClientURL())

	var r runs
	f, err := flow.New("work", flow.Step("work", func(ctx context.Context, c *fc.Context) error {
		kind, _ := c.Get("kind")
		n := r.add(metaID(c))
		switch kind {
		case "stop":
			return errors.Stop("unwanted")
		case "flaky":
			if n == 1 {
				return errors.Retry(fmt.Errorf("ledger busy"))
			}
		case "broken":
			return errors.Retry(fmt.Errorf("ledger down for run %d", n))
		case "bug":
			return fmt.Errorf("bad data")
		}
		return nil
	})).Retry(errors.Policy{MaxAttempts: 1}).Build()
	require.NoError(t, err)

	sp := spec(srv.ClientURL())
	sp.MaxDeliver = 3
	sp.DeadLetter = "dead.work"
	src, err := snats.NewSource("work", sp, t.TempDir(), quiet)
	require.NoError(t, err)
	st := store.NewMemory()
	runChannel(t, "work", f, src, st)

	publish(t, js, "work.a", "stop-1", `{"kind": "stop"}`)
	publish(t, js, "work.a", "flaky-1", `{"kind": "flaky"}`)
	publish(t, js, "work.a", "broken-1", `{"kind": "broken"}`)
	publish(t, js, "work.a", "bug-1", `{"kind": "bug"}`)
	publish(t, js, "work.a", "", `{"kind": "ok"}`) // no Nats-Msg-Id: STREAM-SEQUENCE

	dead, err := js.Stream(context.Background(), "WORK_DEAD")
	require.NoError(t, err, "a stream for the dead-letter subject is made")
	require.Eventually(t, func() bool {
		info, err := dead.Info(context.Background())
		return err == nil && info.State.Msgs == 2
	}, 20*time.Second, 10*time.Millisecond, "the broken and the bug messages are dead-lettered")
	require.Eventually(t, func() bool {
		cons, err := js.Consumer(context.Background(), "WORK", "workers")
		if err != nil {
			return false
		}
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, 20*time.Second, 10*time.Millisecond, "every message settled")

	assert.Equal(t, 1, r.get("stop-1"), "a Stop is acked, never redelivered")
	assert.Equal(t, 2, r.get("flaky-1"), "a Retry is redelivered, then acked")
	assert.Equal(t, 3, r.get("broken-1"), "a message failing every delivery runs max_deliver times")
	assert.Equal(t, 1, r.get("bug-1"), "a failure is dead-lettered at once")
	assert.Equal(t, 1, r.get("WORK-5"), "a message without Nats-Msg-Id has the id STREAM-SEQUENCE")

	ctx := context.Background()
	for id, want := range map[string]store.State{"stop-1": store.Rejected, "flaky-1": store.Done, "broken-1": store.Error, "WORK-5": store.Done} {
		rec, err := st.Get(ctx, id)
		require.NoError(t, err, id)
		assert.Equal(t, want, rec.State, id)
	}

	// The dead letters carry the error text and where they came from.
	cons, err := dead.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	got := map[string]natsgo.Header{}
	for range 2 {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		got[m.Headers().Get(snats.HeaderID)] = m.Headers()
	}
	require.Contains(t, got, "broken-1")
	assert.Contains(t, got["broken-1"].Get(snats.HeaderError), "ledger down for run 3")
	assert.Equal(t, "3", got["broken-1"].Get(snats.HeaderDeliveries))
	assert.Equal(t, "work.a", got["broken-1"].Get(snats.HeaderSubject))
	assert.Equal(t, "WORK", got["broken-1"].Get(snats.HeaderStream))
	require.Contains(t, got, "bug-1")
	assert.Contains(t, got["bug-1"].Get(snats.HeaderError), "bad data")
	assert.Equal(t, "failed", got["bug-1"].Get(snats.HeaderOutcome))

	s := src.Stats()
	assert.Equal(t, int64(5+1+2), s.Delivered.Load())
	assert.Equal(t, int64(3), s.Redelivered.Load())
	assert.Equal(t, int64(3), s.Acked.Load())
	assert.Equal(t, int64(3), s.Nacked.Load())
	assert.Equal(t, int64(2), s.Terminated.Load())
}

// TestHeartbeat: a run longer than ack_wait is reported in progress, so
// it is not redelivered meanwhile.
func TestHeartbeat(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	defer stopServer(srv)
	_, js := client(t, srv.ClientURL())
	var r runs
	f, err := flow.New("slow", flow.Step("slow", func(ctx context.Context, c *fc.Context) error {
		r.add(metaID(c))
		select {
		case <-time.After(2500 * time.Millisecond): // 2.5 ack_waits
		case <-ctx.Done():
		}
		return ctx.Err()
	})).Build()
	require.NoError(t, err)
	sp := spec(srv.ClientURL())
	sp.AckWait, sp.Heartbeat = time.Second, 200*time.Millisecond
	src, err := snats.NewSource("slow", sp, t.TempDir(), quiet)
	require.NoError(t, err)
	runChannel(t, "slow", f, src, store.NewMemory())
	publish(t, js, "work.slow", "slow-1", `{}`)
	require.Eventually(t, func() bool { return src.Stats().Acked.Load() == 1 }, 20*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1, r.get("slow-1"), "never redelivered while running")
	assert.Equal(t, int64(1), src.Stats().Delivered.Load())
}

// TestMismatch: an existing stream or consumer whose settings differ
// from the declaration is an error naming the setting; nothing is
// changed on the server.
func TestMismatch(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	defer stopServer(srv)
	_, js := client(t, srv.ClientURL())
	ctx := context.Background()
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.*"}, Retention: jetstream.WorkQueuePolicy, Duplicates: 2 * time.Minute})
	require.NoError(t, err)

	run := func(sp snats.Spec) error {
		src, err := snats.NewSource("w", sp, t.TempDir(), quiet)
		require.NoError(t, err)
		return src.Run(ctx, channel.HandlerFunc(func(context.Context, *message.Message) channel.Result { return channel.Result{} }))
	}
	err = run(spec(srv.ClientURL()))
	require.ErrorIs(t, err, snats.ErrMismatch)
	var mm *snats.MismatchError
	require.ErrorAs(t, err, &mm)
	assert.Equal(t, "subjects", mm.Setting)
	assert.Contains(t, err.Error(), `stream "WORK": subjects: the server has [work.*], the configuration declares [work.>]`)

	sp := spec(srv.ClientURL())
	sp.Subjects = []string{"work.*"}
	sp.Retention = "limits"
	err = run(sp)
	require.ErrorAs(t, err, &mm)
	assert.Equal(t, "retention", mm.Setting)
	assert.Contains(t, err.Error(), "the server has workqueue, the configuration declares limits")

	_, err = js.CreateConsumer(ctx, "WORK", jetstream.ConsumerConfig{Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 10 * time.Second, MaxDeliver: 5, MaxAckPending: 1000})
	require.NoError(t, err)
	sp.Retention = "workqueue"
	err = run(sp)
	require.ErrorAs(t, err, &mm)
	assert.Equal(t, "ack_wait", mm.Setting)
	assert.Contains(t, err.Error(), `consumer "WORK/workers": ack_wait: the server has 10s, the configuration declares 30s`)

	info, err := js.Stream(ctx, "WORK")
	require.NoError(t, err)
	assert.Equal(t, []string{"work.*"}, info.CachedInfo().Config.Subjects, "the stream is left as it was")
}

// TestBadURL: a server that cannot be reached fails the start with the URL
// in the message.
func TestBadURL(t *testing.T) {
	url := "nats://127.0.0.1:" + strconv.Itoa(freePort(t))
	src, err := snats.NewSource("w", spec(url), t.TempDir(), quiet)
	require.NoError(t, err)
	err = src.Run(context.Background(), channel.HandlerFunc(func(context.Context, *message.Message) channel.Result { return channel.Result{} }))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connect "+url)

	_, err = snats.NewSource("w", spec("http://127.0.0.1:4222"), t.TempDir(), quiet)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"http://127.0.0.1:4222" is not a NATS URL`)
}

// TestServerRestart: the nats-server (file store) is restarted while
// messages are being processed; the worker reconnects and finishes them
// all: nothing is lost, and every effect recorded once per message id.
func TestServerRestart(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	srv := startServer(t, dir, port)
	url := srv.ClientURL()
	_, js := client(t, url)

	var r runs
	var effects sync.Map // id -> true: the idempotent effect
	f, err := flow.New("work", flow.Step("work", func(ctx context.Context, c *fc.Context) error {
		id := metaID(c)
		r.add(id)
		time.Sleep(time.Millisecond)
		effects.Store(id, true)
		return nil
	})).Build()
	require.NoError(t, err)
	sp := spec(url)
	sp.AckWait = 2 * time.Second
	src, err := snats.NewSource("work", sp, t.TempDir(), quiet)
	require.NoError(t, err)
	st := store.NewMemory()
	runChannel(t, "work", f, src, st)

	const total = 1000
	for i := range total / 2 {
		publish(t, js, "work.x", fmt.Sprintf("m-%04d", i), `{}`)
	}
	require.Eventually(t, func() bool { return src.Stats().Acked.Load() >= total/10 }, 20*time.Second, time.Millisecond)
	stopServer(srv) // under load
	srv = startServer(t, dir, port)
	defer stopServer(srv)
	for i := total / 2; i < total; i++ {
		publish(t, js, "work.x", fmt.Sprintf("m-%04d", i), `{}`)
	}
	require.Eventually(t, func() bool {
		cons, err := js.Consumer(context.Background(), "WORK", "workers")
		if err != nil {
			return false
		}
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	}, 60*time.Second, 20*time.Millisecond, "the stream's work is done")
	n := 0
	effects.Range(func(_, _ any) bool { n++; return true })
	assert.Equal(t, total, n, "every message's effect recorded")
	done, err := st.Count(context.Background(), store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, total, done, "every message done in the store")
	t.Logf("redelivered %d, runs beyond one per message %d", src.Stats().Redelivered.Load(), func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		extra := 0
		for _, k := range r.n {
			extra += k - 1
		}
		return extra
	}())
}

func decode(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal(b, &v))
	return v
}

func itoa(n int) string { return strconv.Itoa(n) }

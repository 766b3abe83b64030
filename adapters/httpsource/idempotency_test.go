package httpsource_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/httpsource"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// keyedChannel serves a channel over a memory store on POST /orders; its
// flow echoes "n" as "out", counts its runs and, while hold is set, waits
// for it to be closed.
func keyedChannel(t *testing.T, st store.Store, hold *atomic.Pointer[chan struct{}]) (*testServer, *atomic.Int32) {
	t.Helper()
	ts := startServer(t, httpsource.Config{})
	src, err := ts.Route("POST", "/orders")
	require.NoError(t, err)
	var runs atomic.Int32
	f := flow.New("orders", flow.Step("echo", func(ctx context.Context, c *fc.Context) error {
		runs.Add(1)
		if ch := hold.Load(); ch != nil {
			<-*ch
		}
		n, _ := c.Get("n")
		c.Set("out", n)
		return nil
	})).MustBuild()
	ch, err := channel.New(channel.Config{Name: "orders", Flow: f, Store: st, Sources: []channel.Source{src}, Logger: quietLogger()})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, ch.Stop(context.Background())) })
	ts.waitReady(t)
	return ts, &runs
}

// TestIdempotencyKeyReusedWithAnotherRequest: the same key with the same
// request is answered from the store; with another body, path, query or
// method it is refused with 422 and never shows the first answer.
func TestIdempotencyKeyReusedWithAnotherRequest(t *testing.T) {
	st := store.NewMemory()
	ts, runs := keyedChannel(t, st, new(atomic.Pointer[chan struct{}]))

	first := ts.do(t, "POST", "/orders", "application/json", `{"n": 1}`, "Idempotency-Key", "k-1")
	require.Equal(t, 200, first.status, first.raw)
	assert.EqualValues(t, 1, first.body["out"])

	again := ts.do(t, "POST", "/orders", "application/json", `{"n": 1}`, "Idempotency-Key", "k-1")
	assert.Equal(t, 200, again.status)
	assert.Equal(t, first.raw, again.raw, "a retry is answered from the store")
	assert.EqualValues(t, 1, runs.Load())

	for name, req := range map[string][2]string{
		"another body":         {"/orders", `{"n": 2}`},
		"another query":        {"/orders?x=1", `{"n": 1}`},
		"another content type": {"/orders", `{"n": 1}`},
	} {
		ct := "application/json"
		if name == "another content type" {
			ct = "application/json; charset=utf-8"
		}
		resp := ts.do(t, "POST", req[0], ct, req[1], "Idempotency-Key", "k-1")
		assert.Equal(t, http.StatusUnprocessableEntity, resp.status, name)
		assert.Equal(t, map[string]any{"id": "k-1", "error": "Idempotency-Key: reused with a different request " +
			"(method, path, query, content type or body); send a new key"}, resp.body, name)
		assert.NotContains(t, resp.raw, `"out"`, name)
	}
	assert.EqualValues(t, 1, runs.Load(), "a reused key runs nothing")

	// The hash is kept with the message.
	rec, err := st.Get(context.Background(), "k-1")
	require.NoError(t, err)
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, rec.Message.Meta[message.MetaRequestHash])

	// A request without a key carries no hash.
	resp := ts.do(t, "POST", "/orders", "application/json", `{"n": 3}`)
	rec, err = st.Get(context.Background(), resp.header.Get("X-Message-Id"))
	require.NoError(t, err)
	assert.NotContains(t, rec.Message.Meta, message.MetaRequestHash)
}

// TestIdempotencyKeyReuseSurvivesRestart: a new channel and server over
// the same store still tell a retry from a reuse.
func TestIdempotencyKeyReuseSurvivesRestart(t *testing.T) {
	st := store.NewMemory()
	ts, _ := keyedChannel(t, st, new(atomic.Pointer[chan struct{}]))
	require.Equal(t, 200, ts.do(t, "POST", "/orders", "application/json", `{"n": 1}`, "Idempotency-Key", "k-2").status)

	ts2, runs := keyedChannel(t, st, new(atomic.Pointer[chan struct{}]))
	assert.Equal(t, 422, ts2.do(t, "POST", "/orders", "application/json", `{"n": 2}`, "Idempotency-Key", "k-2").status)
	assert.Equal(t, 200, ts2.do(t, "POST", "/orders", "application/json", `{"n": 1}`, "Idempotency-Key", "k-2").status)
	assert.EqualValues(t, 0, runs.Load())
}

// TestIdempotencyKeyInProgress: while the first request with a key runs,
// another one with the same key gets 409 with Retry-After; once the first
// is answered the key answers from the store.
func TestIdempotencyKeyInProgress(t *testing.T) {
	hold := new(atomic.Pointer[chan struct{}])
	gate := make(chan struct{})
	hold.Store(&gate)
	ts, runs := keyedChannel(t, store.NewMemory(), hold)

	first := make(chan response, 1)
	go func() {
		first <- ts.do(t, "POST", "/orders", "application/json", `{"n": 1}`, "Idempotency-Key", "k-3")
	}()
	require.Eventually(t, func() bool { return runs.Load() == 1 }, 5*time.Second, time.Millisecond)
	for _, body := range []string{`{"n": 1}`, `{"n": 2}`} {
		resp := ts.do(t, "POST", "/orders", "application/json", body, "Idempotency-Key", "k-3")
		assert.Equal(t, http.StatusConflict, resp.status, body)
		assert.Equal(t, "1", resp.header.Get("Retry-After"))
		assert.Equal(t, "Idempotency-Key: a request with this key is still being processed", resp.body["error"])
	}
	// Another key is not held up.
	hold.Store(nil)
	assert.Equal(t, 200, ts.do(t, "POST", "/orders", "application/json", `{"n": 5}`, "Idempotency-Key", "k-4").status)
	close(gate)
	resp := <-first
	require.Equal(t, 200, resp.status)
	assert.Equal(t, resp.raw, ts.do(t, "POST", "/orders", "application/json", `{"n": 1}`, "Idempotency-Key", "k-3").raw)
	assert.EqualValues(t, 2, runs.Load())
}

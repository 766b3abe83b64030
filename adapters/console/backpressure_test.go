package console

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// TestHubDropsToLatest: a subscriber that does not read holds one
// snapshot, the latest; publishing never waits for it.
func TestHubDropsToLatest(t *testing.T) {
	h := newHub()
	slow, fast := h.subscribe(), h.subscribe()
	var got [][]byte
	for i := range 1000 {
		h.publish([]byte{byte(i % 256)})
		got = append(got, <-fast.ch) // the fast one reads each
	}
	assert.Len(t, got, 1000)
	assert.Len(t, slow.ch, 1)
	assert.Equal(t, []byte{byte(999 % 256)}, <-slow.ch, "the latest snapshot")
	h.mu.Lock()
	assert.Equal(t, 999, slow.dropped)
	assert.Equal(t, 0, fast.dropped)
	h.mu.Unlock()
	h.unsubscribe(slow)
	h.unsubscribe(fast)
	assert.Equal(t, 0, h.len())
}

// stuckWriter is a browser that stopped reading: every write blocks until
// released.
type stuckWriter struct {
	header  http.Header
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (w *stuckWriter) Header() http.Header { return w.header }
func (w *stuckWriter) WriteHeader(int)     {}
func (w *stuckWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.started) })
	<-w.release
	return len(p), nil
}

// TestSlowBrowserDoesNotBlock: while one event stream is stuck writing to
// a browser that does not read, the update loop goes on: another browser
// sees every change, and the stuck stream holds one update at most.
func TestSlowBrowserDoesNotBlock(t *testing.T) {
	st := store.NewMemory()
	defer st.Close()
	f := flow.New("f", flow.Step("s", func(context.Context, *fc.Context) error { return nil })).MustBuild()
	quiet := slog.New(slog.DiscardHandler)
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st, Logger: quiet})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background()))
	defer ch.Stop(context.Background())
	c := New(Options{Channels: func() []*channel.Channel { return []*channel.Channel{ch} }, Token: "t", Addr: "127.0.0.1:1",
		Interval: time.Millisecond, Logger: quiet})
	srv := httptest.NewServer(c)
	defer srv.Close()
	defer c.Close()

	stuck := &stuckWriter{header: http.Header{}, started: make(chan struct{}), release: make(chan struct{})}
	req := httptest.NewRequest("GET", "http://127.0.0.1/api/events", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.ServeHTTP(stuck, req)
	}()
	<-stuck.started // its handler is blocked in its first write
	require.Equal(t, 1, c.hub.len())
	var slow *sub
	c.hub.mu.Lock()
	for s := range c.hub.subs {
		slow = s
	}
	c.hub.mu.Unlock()

	res, err := srv.Client().Get(srv.URL + "/api/events")
	require.NoError(t, err)
	defer res.Body.Close()
	buf := make([]byte, 0, 4096)
	readUntil := func(want string) {
		t.Helper()
		for !strings.Contains(string(buf), want) {
			p := make([]byte, 4096)
			n, err := res.Body.Read(p)
			require.NoError(t, err)
			buf = append(buf, p[:n]...)
		}
	}
	readUntil("event: channels")
	const n = 50
	for i := range n {
		m := message.New("text/plain", []byte("x"), nil)
		require.NoError(t, ch.Handle(context.Background(), m).Err)
		readUntil(fmt.Sprintf(`"done":%d,"error"`, i+1)) // the stored count
	}
	assert.LessOrEqual(t, len(slow.ch), 1, "a stuck stream holds one update at most")
	c.hub.mu.Lock()
	assert.Positive(t, slow.dropped, "older updates were dropped for the stuck stream")
	c.hub.mu.Unlock()

	close(stuck.release) // the browser reads again; Close ends its stream
	c.Close()
	<-done
	_, _ = io.Copy(io.Discard, res.Body)
}

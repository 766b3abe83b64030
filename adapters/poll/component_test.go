package poll_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/poll"
)

// collect runs src until n messages were handed over, then stops it.
func collect(t *testing.T, src channel.Source, n int) []*message.Message {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	var got []*message.Message
	done := make(chan error)
	go func() {
		done <- src.Run(ctx, channel.HandlerFunc(func(_ context.Context, m *message.Message) channel.Result {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, m)
			return channel.Result{Settle: channel.Ack, State: "done", Message: m}
		}))
	}()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= n
	}, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	return got
}

func build(t *testing.T, spec poll.Spec) (channel.Source, error) {
	t.Helper()
	if spec.Every == 0 {
		spec.Every = 10 * time.Millisecond
	}
	if spec.Timeout == 0 {
		spec.Timeout = time.Second
	}
	if spec.MaxBody == 0 {
		spec.MaxBody = 1 << 20
	}
	if spec.Method == "" {
		spec.Method = "GET"
	}
	v, err := poll.Component.Build(component.Env{Name: "orders"}, spec)
	if err != nil {
		return nil, err
	}
	return v.(channel.Source), nil
}

// TestHTTPPollElements: a JSON array answers one message per element,
// with the id key as message ID; an object answers one message whose ID
// is its content's hash, the same at every poll.
func TestHTTPPollElements(t *testing.T) {
	var calls sync.Mutex
	body := `[{"order_id": 12345678901234567891, "total": 3}, {"order_id": "a-1"}]`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Lock()
		defer calls.Unlock()
		assert.Equal(t, "secret", r.Header.Get("X-Token"))
		assert.Equal(t, http.MethodGet, r.Method)
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()

	src, err := build(t, poll.Spec{URL: srv.URL, ID: "order_id", Headers: map[string]string{"X-Token": "secret"}})
	require.NoError(t, err)
	assert.Equal(t, "orders", src.Name())
	got := collect(t, src, 2)
	assert.Equal(t, "12345678901234567891", got[0].ID, "a big integer ID keeps its digits")
	assert.JSONEq(t, `{"order_id": 12345678901234567891, "total": 3}`, string(got[0].Payload))
	assert.Equal(t, "a-1", got[1].ID)
	assert.Equal(t, srv.URL, got[0].Meta["poll.url"])

	calls.Lock()
	body = `{"one": 1}`
	calls.Unlock()
	src, err = build(t, poll.Spec{URL: srv.URL, Headers: map[string]string{"X-Token": "secret"}})
	require.NoError(t, err)
	got = collect(t, src, 2)
	assert.Equal(t, got[0].ID, got[1].ID, "the same content is the same message at every poll")
	assert.NotEmpty(t, got[0].ID)
}

// TestHTTPPollFailures: a bad answer hands nothing over and the source
// keeps polling.
func TestHTTPPollFailures(t *testing.T) {
	var mu sync.Mutex
	answers := []struct {
		code int
		body string
	}{{500, `{"x": 1}`}, {200, `not json`}, {200, `"a string"`}, {200, `[{"no_id": 1}, {"id": "ok"}]`}}
	i := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		a := answers[min(i, len(answers)-1)]
		i++
		w.WriteHeader(a.code)
		_, _ = w.Write([]byte(a.body))
	}))
	defer srv.Close()
	src, err := build(t, poll.Spec{URL: srv.URL, ID: "id"})
	require.NoError(t, err)
	got := collect(t, src, 1)
	assert.Equal(t, "ok", got[0].ID, "only the element with an id, after three failed polls")
	mu.Lock()
	assert.GreaterOrEqual(t, i, 4)
	mu.Unlock()
}

func TestHTTPPollSpecErrors(t *testing.T) {
	for _, url := range []string{"ftp://x/y", "http://", "::"} {
		_, err := build(t, poll.Spec{URL: url})
		assert.ErrorIs(t, err, poll.ErrInvalid, url)
	}
	_, err := build(t, poll.Spec{URL: "http://x", Every: -time.Second})
	assert.ErrorIs(t, err, poll.ErrInvalid)

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`[{"id": "too big"}]`))
	}))
	defer srv.Close()
	src, err := build(t, poll.Spec{URL: srv.URL, MaxBody: 5})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	handed := false
	require.NoError(t, src.Run(ctx, channel.HandlerFunc(func(_ context.Context, m *message.Message) channel.Result {
		handed = true
		return channel.Result{}
	})))
	assert.False(t, handed, "an answer over max_body hands nothing over")
}

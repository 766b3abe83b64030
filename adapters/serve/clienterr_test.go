package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/serve"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const pricing = `version: 1
flows:
  price:
    input: [{name: qty, type: int}, price, {name: tier, type: string, optional: true}]
    steps:
      - stop: {if: "qty > 1000", reason: "too many"}
      - set: {total: "price * qty"}
      - fork:
          on: "tier + '-x'"
          cases: {gold-x: [{set: {discount: "0.1"}}]}
          default: [{set: {discount: "0"}}]
channels:
  price:
    from: {http: {listen: "127.0.0.1:0", path: /price}}
    flow: price
    store: memory
`

// TestClientMistakesAre422: input of a wrong declared type, and input on
// which an expression fails by its types, are rejected with 422 naming
// the key, and nothing is logged at ERROR.
func TestClientMistakesAre422(t *testing.T) {
	var logs syncBuffer
	srv, err := serve.New(load(t, pricing), serve.Options{DataDir: t.TempDir(), Admin: "off", Drain: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	base := "http://" + srv.Addrs()["http 127.0.0.1:0"]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()

	post := func(body string) (int, string) {
		r, err := http.Post(base+"/price", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer r.Body.Close()
		b, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		var out map[string]any
		require.NoError(t, json.Unmarshal(b, &out), "%s", b)
		if r.StatusCode == 200 {
			return 200, ""
		}
		s, _ := out["error"].(string)
		return r.StatusCode, s
	}
	code, msg := post(`{"qty": 2, "price": 1.5, "tier": "gold"}`)
	require.Equal(t, 200, code, msg)

	for body, want := range map[string][]string{
		`{"qty": "2", "price": 1}`:          {`input "qty": want int, got string`},
		`{"qty": 2, "price": "x"}`:          {`set "total"`, `price * qty`, `string * int`, `price: string`, `qty: number`},
		`{"qty": 2, "price": {"a": 1}}`:     {`set "total"`, `price: map`},
		`{"qty": 2, "price": null}`:         {`set "total"`, `price: null`},
		`{"qty": 2, "price": 1, "tier": 7}`: {`input "tier": want string, got`},
		`{"qty": 2000, "price": 1}`:         {`too many`},
	} {
		code, msg := post(body)
		assert.Equal(t, http.StatusUnprocessableEntity, code, body)
		for _, w := range want {
			assert.Contains(t, msg, w, body)
		}
	}
	cancel()
	require.NoError(t, <-done)
	assert.NotContains(t, logs.String(), "level=ERROR", "client mistakes are not logged as errors")
}

// TestAllowHostsOverHTTP: a channel whose http step builds its url from
// the request refuses, with 422 naming the host, a url to a host outside
// allow_hosts, and calls nothing there.
func TestAllowHostsOverHTTP(t *testing.T) {
	var reached atomic.Int32
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		_, _ = w.Write([]byte(`{"secret": 1}`))
	}))
	defer internal.Close()
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok": true}`))
	}))
	defer partner.Close()
	partnerHost := strings.TrimPrefix(partner.URL, "http://")
	cfg := load(t, `version: 1
flows:
  notify:
    input: [callback]
    steps:
      - http: {url: "{{.callback}}", allow_hosts: ["`+partnerHost+`"], into: answer}
channels:
  notify:
    from: {http: {listen: "127.0.0.1:0", path: /notify}}
    flow: notify
    store: memory
`)
	srv, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "off", Drain: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	base := "http://" + srv.Addrs()["http 127.0.0.1:0"]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	post := func(callback string) (int, map[string]any) {
		body, _ := json.Marshal(map[string]string{"callback": callback})
		r, err := http.Post(base+"/notify", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		defer r.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&out))
		return r.StatusCode, out
	}
	code, out := post(partner.URL + "/hook")
	require.Equal(t, 200, code, "%v", out)
	assert.Equal(t, map[string]any{"ok": true}, out["answer"])

	internalHost := strings.Replace(strings.TrimPrefix(internal.URL, "http://"), "127.0.0.1", "localhost", 1)
	code, out = post("http://" + internalHost + "/admin")
	assert.Equal(t, http.StatusUnprocessableEntity, code)
	assert.Contains(t, out["error"], `host "`+internalHost+`" is not in allow_hosts`)
	assert.Zero(t, reached.Load())
	cancel()
	require.NoError(t, <-done)
}

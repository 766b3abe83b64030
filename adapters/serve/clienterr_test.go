package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
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

package serve_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestChannelSemanticsInYAML: drop: steps, outcome hooks (on_ok, on_drop,
// finally) calling named flows, response: shaping with status codes per
// outcome, store: none, and a channel without a flow, all from YAML.
func TestChannelSemanticsInYAML(t *testing.T) {
	var mu sync.Mutex
	var hooks []string
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hooks = append(hooks, r.URL.Path+" "+string(b))
		mu.Unlock()
		w.WriteHeader(204)
	}))
	t.Cleanup(hookSrv.Close)

	s := startServed(t, `version: 1
vars:
  hooks: `+hookSrv.URL+`
flows:
  orders:
    input: [type, {name: items, optional: true}]
    steps:
      - drop: {if: "type != 'order'", reason: "{{.type}}: not an order"}
      - stop: {if: "items == nil || len(items) == 0", reason: no items}
      - set: {total: "sum(map(items, #.price * #.qty))"}
  notify:
    input: [outcome]
    steps:
      - http: {method: POST, url: '{{var "hooks"}}/{{.outcome.kind}}', body_template: '{"state": {{.outcome.state}}, "reason": {{.outcome.reason}}}', into: sent}
  always:
    input: [outcome]
    steps:
      - http: {method: POST, url: '{{var "hooks"}}/finally', body_template: '{"kind": {{.outcome.kind}}}', into: sent}
channels:
  intake:
    from: {http: {listen: "127.0.0.1:0", path: /orders, response: {keys: [total], status: {ok: 201, drop: 202}}}}
    flow: orders
    store: none
    on_ok: notify
    on_drop: {call: notify}
    finally: always
  raw:
    from: {http: {listen: "127.0.0.1:0", path: /raw}}
    store: memory
`)
	code, body := s.post(t, "/orders", `{"type": "order", "items": [{"price": 2, "qty": 3}]}`)
	require.Equal(t, 201, code, body)
	assert.JSONEq(t, `{"total": 6}`, body, "only the keys asked for")
	code, body = s.post(t, "/orders", `{"type": "ping"}`)
	require.Equal(t, 202, code, body)
	var dropped map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &dropped))
	assert.Equal(t, "dropped", dropped["outcome"])
	assert.Equal(t, "ping: not an order", dropped["reason"])
	code, body = s.post(t, "/orders", `{"type": "order", "items": []}`)
	require.Equal(t, 422, code, body)
	assert.NotContains(t, body, "meta")

	mu.Lock()
	assert.Equal(t, []string{
		`/ok {"state": "done", "reason": ""}`, `/finally {"kind": "ok"}`,
		`/dropped {"state": "done", "reason": "ping: not an order"}`, `/finally {"kind": "dropped"}`,
		`/finally {"kind": "stop"}`,
	}, hooks, "each settled message runs its hook, then finally, before it is answered")
	mu.Unlock()

	// A channel without a flow answers with what it was sent, without meta.
	code, body = s.post(t, "/raw", `{"a": 1}`)
	require.Equal(t, 200, code, body)
	assert.JSONEq(t, `{"a": 1}`, body)
	assert.False(t, strings.Contains(body, "meta"))
}

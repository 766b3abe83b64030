package serve_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
)

const approvals = `version: 1
flows:
  approve:
    input: [order]
    steps:
      - set: {asked: "true"}
      - wait: {signal: approved, timeout: 48h, into: approval}
      - set: {by: "approval.by"}
channels:
  approvals:
    from: {http: {listen: "127.0.0.1:0", path: /orders}}
    flow: approve
    store: "memory:"
    durable: steps
`

func TestServeDurableWaitAndSignal(t *testing.T) {
	cfg := load(t, approvals)
	srv, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "127.0.0.1:0", Drain: 5 * time.Second, AdminToken: "s3cret"})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	addrs := srv.Addrs()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	base := "http://" + addrs["http 127.0.0.1:0"]
	admin := "http://" + addrs["admin"]
	require.Eventually(t, func() bool {
		r, err := http.Get(admin + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	}, 5*time.Second, 10*time.Millisecond)

	call := func(method, url, token, body string) (int, map[string]any) {
		req, err := http.NewRequest(method, url, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		r, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		return r.StatusCode, out
	}
	code, out := call("POST", base+"/orders", "", `{"order": "o1"}`)
	require.Equal(t, http.StatusAccepted, code, "%v", out)
	assert.Equal(t, "waiting", out["state"])
	id := out["id"].(string)

	ch, ok := srv.Channel("approvals")
	require.True(t, ok)
	rec, err := ch.Store().Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, store.Waiting, rec.State)

	signal := admin + "/channels/approvals/messages/" + id + "/signals/"
	code, _ = call("POST", signal+"approved", "", `{"by": "ann"}`)
	assert.Equal(t, http.StatusUnauthorized, code, "the admin token is required")
	code, out = call("POST", signal+"rejected", "s3cret", `{"by": "ann"}`)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, out["error"], `waits for signal "approved"`)
	code, _ = call("POST", signal+"approved", "s3cret", `[1]`)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _ = call("POST", admin+"/channels/nope/messages/"+id+"/signals/approved", "s3cret", `{}`)
	assert.Equal(t, http.StatusNotFound, code)
	code, out = call("POST", signal+"approved", "s3cret", `{"by": "ann"}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	assert.Equal(t, "done", out["state"])
	assert.Equal(t, "ann", out["context"].(map[string]any)["by"])
	code, _ = call("POST", signal+"approved", "s3cret", `{"by": "bob"}`)
	assert.Equal(t, http.StatusConflict, code, "signalled once")
}

func TestServeDurableSpecErrors(t *testing.T) {
	cfg := load(t, strings.ReplaceAll(strings.ReplaceAll(approvals, "durable: steps", "durable: always\n    on_change: ignore"), "memory:", "memory:"))
	err := serve.Check(cfg, serve.Options{DataDir: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `serve.yaml:14:14: channel "approvals": durable: expected steps or effects, got "always"`)
	assert.Contains(t, err.Error(), `serve.yaml:15:16: channel "approvals": on_change: expected error or restart, got "ignore"`)
}

// plainStore is a store without a journal.
type plainStore struct{ store.Store }

func TestServeDurableNeedsAJournal(t *testing.T) {
	comps, err := component.NewRegistry(append(component.Default().All(),
		component.Store("plain", "a store without a journal", func(component.Env, struct{}) (component.StoreOpener, error) {
			return func() (store.Store, error) { return plainStore{store.NewMemory()}, nil }, nil
		}))...)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "serve.yaml")
	require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(approvals, `"memory:"`, `{plain: {}}`)), 0o644))
	cfg, err := config.Load([]string{path}, config.WithComponents(comps))
	require.NoError(t, err)
	_, err = serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "off"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `serve.yaml:14:14: channel "approvals": durable: steps: store plain keeps no journal of durable runs`)
}

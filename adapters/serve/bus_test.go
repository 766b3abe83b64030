package serve_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/bus"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
)

const services = `version: 1
flows:
  forward:
    steps:
      - submit: {to: worker}
  work:
    input: [n]
    steps:
      - set: {twice: "n * 2"}
services:
  front:
    internal: true
    actions: {Process: forward}
    from: {http: {listen: "127.0.0.1:0", path: /in}}
  worker:
    actions: {Process: work}
    store: sqlite:DATA/bus.db
`

// TestServeRunsTheServices: serve runs a configuration of services only:
// an HTTP source feeds one, which submits to another with a durable
// mailbox; readiness, metrics and a graceful stop cover them.
func TestServeRunsTheServices(t *testing.T) {
	data := t.TempDir()
	cfg := load(t, strings.ReplaceAll(services, "DATA", data))
	require.NoError(t, serve.Check(cfg, serve.Options{DataDir: data}))
	srv, err := serve.New(cfg, serve.Options{DataDir: data, Admin: "127.0.0.1:0", Drain: 5 * time.Second})
	require.NoError(t, err)
	require.NotNil(t, srv.Bus())
	require.NoError(t, srv.Listen())
	addrs := srv.Addrs()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	admin := "http://" + addrs["admin"]
	get := func(path string) (int, string) {
		r, err := http.Get(admin + path)
		if err != nil {
			return 0, ""
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	require.Eventually(t, func() bool { code, _ := get("/readyz"); return code == 200 }, 5*time.Second, 10*time.Millisecond)

	for _, n := range []string{"1", "2", "3"} {
		r, err := http.Post("http://"+addrs["http 127.0.0.1:0"]+"/in", "application/json", strings.NewReader(`{"n": `+n+`}`))
		require.NoError(t, err)
		r.Body.Close()
		assert.Equal(t, 200, r.StatusCode, "queued")
	}
	out, err := srv.Bus().Request(t.Context(), "worker", bus.Process, map[string]any{"n": 21})
	require.NoError(t, err)
	assert.EqualValues(t, 42, out["twice"])

	require.Eventually(t, srv.Bus().Idle, 5*time.Second, 5*time.Millisecond, "the forwarded messages ran")
	require.NoError(t, srv.Bus().StopService(t.Context(), "worker"))
	code, body := get("/readyz")
	assert.Equal(t, 503, code)
	assert.Contains(t, body, `"service worker"`)
	require.NoError(t, srv.Bus().StartService(t.Context(), "worker"))
	code, body = get("/metrics")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `svcflow_bus_messages_total{outcome="ok",service="worker"} 4`)
	assert.Contains(t, body, `svcflow_bus_service_up{service="front"} 1`)

	cancel()
	require.NoError(t, <-done)
	st, err := sqlite.Open(data + "/bus.db")
	require.NoError(t, err)
	defer st.Close()
	n, err := st.Count(t.Context(), store.Query{States: []store.State{store.Done}, Meta: map[string]string{bus.MetaDestination: "worker"}})
	require.NoError(t, err)
	assert.Equal(t, 4, n, "every message the worker ran is recorded done")
}

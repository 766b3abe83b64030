package serve_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/serve"
)

const productionYAML = `version: 1
flows:
  op:
    input: [n]
    steps: [{set: {twice: "n * 2"}}]
  intake:
    input: [n]
    steps: [{send: {target: Worker, into: answer}}]
production:
  Worker: {kind: operation, flow: op}
  Intake:
    kind: service
    flow: intake
    from: {http: {listen: "127.0.0.1:0", path: /in}}
`

// flowrun serve runs a production: its business service answers HTTP
// requests through the operation, its store defaults to the data folder
// like a channel's, /metrics counts its channel, /readyz covers its
// components, and a graceful stop stops it.
func TestServeRunsTheProduction(t *testing.T) {
	data := t.TempDir()
	cfg := load(t, productionYAML)
	require.NoError(t, serve.Check(cfg, serve.Options{DataDir: data}))
	srv, err := serve.New(cfg, serve.Options{DataDir: data, Admin: "127.0.0.1:0", Drain: 5 * time.Second})
	require.NoError(t, err)
	require.NotNil(t, srv.Production())
	require.NoError(t, srv.Listen())
	addrs := srv.Addrs()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	get := func(path string) (int, string) {
		r, err := http.Get("http://" + addrs["admin"] + path)
		if err != nil {
			return 0, ""
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}

	r, err := http.Post("http://"+addrs["http 127.0.0.1:0"]+"/in", "application/json", strings.NewReader(`{"n": 21}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	assert.Equal(t, 200, r.StatusCode)
	assert.Contains(t, string(body), `"twice":42`)

	code, text := get("/readyz")
	assert.Equal(t, 200, code, text)
	code, text = get("/metrics")
	assert.Equal(t, 200, code)
	assert.Contains(t, text, `svcflow_messages_total{channel="Intake",outcome="done"} 1`)
	_, ok := srv.Channel("Intake")
	require.True(t, ok, "the business service's channel is found by name")
	_, err = os.Stat(filepath.Join(data, "Intake.db"))
	assert.NoError(t, err, "the default store, as a channel's")

	cancel()
	require.NoError(t, <-done)
	assert.False(t, srv.Production().Running())
	for _, st := range srv.Production().Status() {
		assert.Equal(t, "stopped", st.State, st.Name)
	}
}

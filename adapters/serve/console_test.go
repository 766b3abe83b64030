package serve_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/serve"
)

// TestConsoleMounted: the admin address serves the console's pages and
// API; its actions take Options.AdminToken; a stop ends the event streams
// it serves (Run returns while a browser still listens).
func TestConsoleMounted(t *testing.T) {
	data := t.TempDir()
	cfg := load(t, `version: 1
flows:
  f:
    steps:
      - set: {total: "1"}
channels:
  c:
    from: {http: {listen: "127.0.0.1:0", path: /c}}
    flow: f
    store: memory:
`)
	srv, err := serve.New(cfg, serve.Options{DataDir: data, Admin: "127.0.0.1:0", Drain: 5 * time.Second, AdminToken: "tok"})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	admin := "http://" + srv.Addrs()["admin"]
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()

	// The redirect and the events stream are answered from the start.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Get(admin + "/")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusFound, res.StatusCode)
	assert.Equal(t, "/console/", res.Header.Get("Location"))
	res, err = client.Get(admin + "/console")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusFound, res.StatusCode)
	assert.Equal(t, "/console/", res.Header.Get("Location"))

	events, err := http.Get(admin + "/api/events")
	require.NoError(t, err)
	defer events.Body.Close()
	line, err := bufio.NewReader(events.Body).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "event: channels\n", line)

	var chans []map[string]any
	res, err = http.Get(admin + "/api/channels")
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(res.Body).Decode(&chans))
	res.Body.Close()
	require.Len(t, chans, 1)
	assert.Equal(t, "c", chans[0]["name"])

	res, err = http.Post(admin+"/api/channels/c/replay", "application/json", strings.NewReader(`{"state":"dead"}`))
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	req, _ := http.NewRequest("POST", admin+"/api/channels/c/replay", strings.NewReader(`{"state":"dead"}`))
	req.Header.Set("Authorization", "Bearer tok")
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)

	cancel()
	require.NoError(t, <-done)
}

package serve_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/serve"
)

// TestMetricsWithBus: /metrics joins the bus's series to the registry's,
// and the whole exposition passes promlint.
func TestMetricsWithBus(t *testing.T) {
	cfg := load(t, `version: 1
flows:
  f:
    steps:
      - set: {x: "1"}
services:
  a:
    actions: {Process: f}
`)
	srv, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "127.0.0.1:0", Drain: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	admin := "http://" + srv.Addrs()["admin"]
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	var text string
	require.Eventually(t, func() bool {
		r, err := http.Get(admin + "/metrics")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		text = string(b)
		return strings.Contains(text, `svcflow_bus_service_up{service="a"} 1`)
	}, 10*time.Second, 20*time.Millisecond, "last scrape:\n%s", text)
	assert.Contains(t, text, "# TYPE svcflow_bus_messages_total counter\n")
	assert.Contains(t, text, "# TYPE svcflow_build_info gauge\n")
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems)
	cancel()
	require.NoError(t, <-done)
}

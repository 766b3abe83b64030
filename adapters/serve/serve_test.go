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
	"go.uber.org/goleak"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
)

func TestMain(m *testing.M) {
	if kind := os.Getenv(b7Env); kind != "" {
		os.Exit(serveB7(kind)) // a child process of BenchmarkB7HTTP
	}
	goleak.VerifyTestMain(m)
}

const intake = `version: 1
flows:
  orders:
    input: [items]
    steps:
      - stop: {if: "len(items) == 0", reason: "no items"}
      - set: {total: "sum(map(items, #.price * #.qty))"}
channels:
  intake:
    from: {http: {listen: "127.0.0.1:0", path: /orders}}
    flow: orders
    store: sqlite:DATA/intake.db
  inbox:
    from:
      - files: {dir: DATA/inbox, glob: "*.json", settle: 10ms, rescan: 50ms}
    flow: orders
`

func load(t *testing.T, text string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "serve.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	cfg, err := config.Load([]string{path})
	require.NoError(t, err)
	return cfg
}

func TestServeHTTPAndFiles(t *testing.T) {
	data := t.TempDir()
	cfg := load(t, strings.ReplaceAll(intake, "DATA", data))
	srv, err := serve.New(cfg, serve.Options{DataDir: data, Admin: "127.0.0.1:0", Drain: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	addrs := srv.Addrs()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()

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

	post := func(body string) (int, map[string]any) {
		r, err := http.Post(base+"/orders", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer r.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &out)
		return r.StatusCode, out
	}
	code, out := post(`{"items": [{"price": 2, "qty": 3}]}`)
	assert.Equal(t, 200, code)
	assert.Equal(t, 6.0, out["total"])
	code, out = post(`{"items": []}`)
	assert.Equal(t, 422, code)
	assert.Equal(t, "no items", out["error"])

	// The files source makes its folder once it runs, which can be just
	// after /readyz turned 200.
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(data, "inbox"))
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, os.WriteFile(filepath.Join(data, "inbox", "a.json"), []byte(`{"items": [{"price": 1, "qty": 1}]}`), 0o644))
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(data, "inbox", "done", "a.json"))
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)

	r, err := http.Get(admin + "/metrics")
	require.NoError(t, err)
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	assert.Contains(t, string(b), `svcflow_messages_total{channel="intake",outcome="done"} 1`)
	assert.Contains(t, string(b), `svcflow_messages_total{channel="intake",outcome="rejected"} 1`)
	assert.Contains(t, string(b), `svcflow_messages_total{channel="inbox",outcome="done"} 1`)
	assert.Contains(t, string(b), `svcflow_step_duration_seconds_count{flow="orders"`)
	// Steps are labelled by a stable name, never by expression source.
	assert.Contains(t, string(b), `svcflow_step_duration_seconds_count{flow="orders",outcome="stop",step="stop(no items)"} 1`)
	assert.NotContains(t, string(b), `len(items)`)
	// HTTP answers by route and status; the route's server is the
	// configured listen address.
	assert.Contains(t, string(b), `svcflow_http_responses_total{code="200",route="POST /orders",server="127.0.0.1:0"} 1`)
	assert.Contains(t, string(b), `svcflow_http_responses_total{code="422",route="POST /orders",server="127.0.0.1:0"} 1`)
	assert.Contains(t, string(b), `svcflow_messages_owed{channel="intake"} 0`)
	problems, err := promlint.New(strings.NewReader(string(b))).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems)

	cancel()
	require.NoError(t, <-done)

	st, err := serve.OpenStore(nil, "sqlite:"+filepath.Join(data, "intake.db"))
	require.NoError(t, err)
	defer st.Close()
	n, err := st.Count(context.Background(), store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	n, err = st.Count(context.Background(), store.Query{States: []store.State{store.Rejected}})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func TestSpecErrorsHavePositions(t *testing.T) {
	cfg := load(t, `version: 1
flows:
  f:
    steps: [{set: {a: "1"}}]
channels:
  c1:
    from: {htp: {}}
    flow: nope
    store: redis://x
    retry_after: soon
    extra: 1
  c2:
    from: {http: {listen: ":1", path: "no-slash"}}
    flow: f
    restart: {initial: -1s}
  c3:
    flow: f
`)
	err := serve.Check(cfg, serve.Options{})
	require.Error(t, err)
	msg := strings.ReplaceAll(err.Error(), filepath.Dir(cfg.Files()[0])+string(filepath.Separator), "")
	assert.Equal(t, strings.Join([]string{
		`serve.yaml:7:12: channel "c1": from: unknown source "htp": expected one of cron, files, ftp, http, mllp, nats, poll (did you mean "http"?)`,
		`serve.yaml:8:11: channel "c1": unknown flow "nope": expected f`,
		`serve.yaml:9:12: channel "c1": store: unknown store "redis": expected one of file, memory, none, postgres, sqlite`,
		`serve.yaml:10:18: channel "c1": retry_after: expected a duration such as 250ms or 2s, got "soon"`,
		`serve.yaml:11:5: channel "c1": unknown key "extra": expected one of from, flow, to, store, order_by, retry_after, restart, trace, max_deliveries, max_in_flight, max_crashes, durable, on_change, redact, on_ok, on_failure, on_reject, on_drop, finally`,
		`serve.yaml:13:11: channel "c2": from: http: httpsource: route POST no-slash: invalid route: path "no-slash" must begin with /`,
		`serve.yaml:15:24: channel "c2": restart: initial: expected a positive duration, got -1s`,
		`serve.yaml:17:5: channel "c3": missing from (the sources: one {kind: spec} or a list of them)`,
	}, "\n"), msg)
}

func TestNoChannels(t *testing.T) {
	_, err := serve.New(load(t, "version: 1\nflows:\n  f:\n    steps: [{set: {a: \"1\"}}]\n"), serve.Options{})
	assert.ErrorContains(t, err, "declares no channels")
}

// TestFirstRequestsAreServed: requests sent the moment the server starts
// wait for the routes and are served; none is answered "not ready".
func TestFirstRequestsAreServed(t *testing.T) {
	for range 5 {
		cfg := load(t, strings.ReplaceAll(intake, "DATA", t.TempDir()))
		srv, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "off", Drain: 5 * time.Second})
		require.NoError(t, err)
		require.NoError(t, srv.Listen())
		base := "http://" + srv.Addrs()["http 127.0.0.1:0"]
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		codes := make(chan int, 4)
		for range 4 {
			go func() {
				r, err := http.Post(base+"/orders", "application/json", strings.NewReader(`{"items": [{"price": 1, "qty": 1}]}`))
				if err != nil {
					codes <- 0
					return
				}
				r.Body.Close()
				codes <- r.StatusCode
			}()
		}
		go func() { done <- srv.Run(ctx) }()
		for range 4 {
			assert.Equal(t, 200, <-codes)
		}
		cancel()
		require.NoError(t, <-done)
	}
}

// TestNoBoundIsMinusOne: max_in_flight and max_crashes take -1 (no bound,
// never set aside), as their docs say, and nothing below it.
func TestNoBoundIsMinusOne(t *testing.T) {
	const spec = `version: 1
flows:
  f:
    steps: [{set: {a: "1"}}]
channels:
  c:
    from: {http: {listen: "127.0.0.1:0", path: /a}}
    flow: f
    store: memory
    max_in_flight: N
    max_crashes: N
`
	require.NoError(t, serve.Check(load(t, strings.ReplaceAll(spec, "N", "-1")), serve.Options{}))
	err := serve.Check(load(t, strings.ReplaceAll(spec, "N", "-2")), serve.Options{})
	require.Error(t, err)
	msg := strings.ReplaceAll(err.Error(), filepath.Dir(err.(config.Errors)[0].File)+string(filepath.Separator), "")
	assert.Equal(t, strings.Join([]string{
		`serve.yaml:10:20: channel "c": max_in_flight: expected an integer from -1 to 9223372036854775807, got -2`,
		`serve.yaml:11:18: channel "c": max_crashes: expected an integer from -1 to 9223372036854775807, got -2`,
	}, "\n"), msg)
}

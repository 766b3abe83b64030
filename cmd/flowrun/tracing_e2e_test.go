package main_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/flow"
)

// TestServeTracing: with OTEL_EXPORTER_OTLP_ENDPOINT set, flowrun serve
// continues the trace of an incoming traceparent, sends it on with the
// http step, exports the run's and the steps' spans over OTLP/HTTP to a
// receiver started by the test (flushed at shutdown), and stores the
// trace ID with the message.
func TestServeTracing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowrun")
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	var mu sync.Mutex
	spans := map[string]string{} // span name -> trace ID
	var downstream []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &coltracepb.ExportTraceServiceRequest{}
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					spans[s.Name] = hex.EncodeToString(s.TraceId)
				}
			}
		}
		mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	defer recv.Close()
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		downstream = append(downstream, r.Header.Get("Traceparent"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"score": 7}`))
	}))
	defer svc.Close()

	dir := t.TempDir()
	addr := freeAddr(t)
	file := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte(strings.NewReplacer("ADDR", addr, "SVC", svc.URL).Replace(`version: 1
flows:
  f:
    steps:
      - http: {url: "SVC/score", into: rating}
      - set: {score: "rating.score"}
channels:
  c:
    from: {http: {listen: "ADDR", path: /in}}
    flow: f
`)), 0o644))
	cmd := exec.Command(flowrunBin(t), "serve", file, "--data", filepath.Join(dir, "data"), "--admin", "off")
	cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT="+recv.URL, "OTEL_TRACES_EXPORTER=", "OTEL_SDK_DISABLED=")
	c := &child{cmd: cmd, log: filepath.Join(dir, "serve.log"), done: make(chan error, 1)}
	f, err := os.Create(c.log)
	require.NoError(t, err)
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	require.NoError(t, cmd.Start())
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	c.listening(t, addr)

	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/in", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, out)
	assert.Equal(t, 7.0, out["score"])
	id := resp.Header.Get("X-Message-Id")
	require.NotEmpty(t, id)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, c.exit(t), c.logText())
	assert.Contains(t, c.logText(), "tracing: exporting spans with OTLP over HTTP")

	mu.Lock()
	assert.Equal(t, map[string]string{"run f": traceID, "http(rating)": traceID, "set(score)": traceID}, spans)
	require.Len(t, downstream, 1)
	assert.True(t, strings.HasPrefix(downstream[0], "00-"+traceID+"-"), downstream[0])
	mu.Unlock()

	st, err := serve.OpenStore(nil, "sqlite:"+filepath.Join(dir, "data", "c.db"))
	require.NoError(t, err)
	defer st.Close()
	rec, err := st.Get(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, store.Done, rec.State)
	var tr flow.Trace
	require.NoError(t, json.Unmarshal(rec.Message.Trace, &tr))
	assert.Equal(t, traceID, tr.TraceID)
}

// TestServeTracingRefusesUnsupported: an exporter or protocol flowrun
// does not have stops serve at once with exit 1, naming the variable.
func TestServeTracingRefusesUnsupported(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`version: 1
flows:
  f:
    steps: [{set: {y: "1"}}]
channels:
  c:
    from: {http: {listen: "127.0.0.1:0", path: /in}}
    flow: f
    store: "memory:"
`), 0o644))
	for env, want := range map[string]string{
		"OTEL_TRACES_EXPORTER=zipkin":      "flowrun serve: tracing: OTEL_TRACES_EXPORTER=zipkin: only otlp (or none) is supported",
		"OTEL_EXPORTER_OTLP_PROTOCOL=grpc": "flowrun serve: tracing: OTEL_EXPORTER_OTLP_PROTOCOL=grpc: only http/protobuf is supported",
	} {
		cmd := exec.Command(flowrunBin(t), "serve", file, "--admin", "off")
		cmd.Env = append(os.Environ(), "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1", "OTEL_SDK_DISABLED=", env)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee, "%s", out)
		assert.Equal(t, 1, ee.ExitCode())
		assert.Contains(t, string(out), want)
	}
}

package otlp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/telemetry/otlp"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEnabled(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		on   bool
		fail string
	}{
		{env: nil},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}},
		{env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, fail: "OTEL_TRACES_EXPORTER=zipkin: only otlp (or none) is supported"},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, fail: "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: only http/protobuf is supported"},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, on: true},
		{env: map[string]string{"OTEL_SERVICE_NAME": "x"}},
	} {
		on, err := otlp.Enabled(func(k string) string { return c.env[k] })
		if c.fail != "" {
			assert.EqualError(t, err, c.fail, "%v", c.env)
			continue
		}
		require.NoError(t, err, "%v", c.env)
		assert.Equal(t, c.on, on, "%v", c.env)
	}
}

// TestSetupOff: with no OTEL_* variable, tracing is off.
func TestSetupOff(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"} {
		t.Setenv(k, "")
	}
	tr, shutdown, err := otlp.Setup(t.Context(), "flowrun")
	require.NoError(t, err)
	assert.Nil(t, tr)
	assert.NoError(t, shutdown(t.Context()))
}

// TestExport: spans reach an OTLP/HTTP receiver started by the test, which
// decodes the protobuf requests, with the service name from
// OTEL_SERVICE_NAME.
func TestExport(t *testing.T) {
	var mu sync.Mutex
	var reqs []*coltracepb.ExportTraceServiceRequest
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || err != nil {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		reqs = append(reqs, req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	defer recv.Close()
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_SDK_DISABLED", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "orders-svc")
	tr, shutdown, err := otlp.Setup(t.Context(), "flowrun")
	require.NoError(t, err)
	require.NotNil(t, tr)
	f := flow.New("orders", flow.Step("price", func(ctx context.Context, c *fc.Context) error { return nil })).
		Use(tr.Middleware()).MustBuild()
	ch, err := channel.New(channel.Config{Name: "intake", Flow: f, Observer: tr})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background())) // a channel handles messages while it runs
	t.Cleanup(func() { _ = ch.Stop(context.Background()) })
	m, err := message.NewJSON(map[string]any{}, map[string]string{"http.header.traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	require.NoError(t, err)
	require.NoError(t, ch.Handle(t.Context(), m).Err)
	require.NoError(t, shutdown(context.Background()), "flushes the batch")

	mu.Lock()
	defer mu.Unlock()
	names := map[string]string{}
	var service string
	for _, req := range reqs {
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.Resource.Attributes {
				if a.Key == "service.name" {
					service = a.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names[s.Name] = string(s.TraceId)
				}
			}
		}
	}
	assert.Equal(t, "orders-svc", service)
	require.Contains(t, names, "run orders")
	require.Contains(t, names, "price")
	assert.Equal(t, "\x4b\xf9\x2f\x35\x77\xb3\x4d\xa6\xa3\xce\x92\x9d\x0e\x0e\x47\x36", names["run orders"])
}

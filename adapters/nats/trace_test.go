package nats_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/svcflow/svcflow/adapters/channel"
	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/message"
	snats "github.com/svcflow/svcflow/adapters/nats"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/telemetry"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// TestTraceContextAcrossNATS: a traced run's publish step sends its trace
// context with the message; the run of a nats source that receives it
// continues that trace, as a child of the publish step's span.
func TestTraceContextAcrossNATS(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	defer stopServer(srv)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr := telemetry.New(tp)

	// The consumer: a channel fed by the stream.
	got := make(chan map[string]any, 1)
	consumer := flow.New("consume", flow.Step("consume", func(ctx context.Context, c *fc.Context) error {
		m, _ := c.Get("meta")
		got <- m.(map[string]any)
		return nil
	})).Use(tr.Middleware()).MustBuild()
	src, err := snats.NewSource("consume", spec(srv.ClientURL()), t.TempDir(), quiet)
	require.NoError(t, err)
	ch, err := channel.New(channel.Config{Name: "consume", Flow: consumer, Sources: []channel.Source{src},
		Store: store.NewMemory(), Logger: quiet, Observer: tr})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background()))
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, ch.Stop(ctx))
	}()

	// The producer: a YAML flow whose publish step sends to the stream.
	cfg, err := config.LoadSources([]config.Source{{Name: "p.yaml", Data: []byte(`version: 1
flows:
  produce:
    steps:
      - publish: {url: "` + srv.ClientURL() + `", subject: work.traced}
`)}})
	require.NoError(t, err)
	b, ok := cfg.Builder("produce")
	require.True(t, ok)
	producer, err := b.Use(tr.Middleware()).Build()
	require.NoError(t, err)
	require.NoError(t, producer.Init(t.Context()))
	defer func() { assert.NoError(t, producer.Close(context.Background())) }()
	pch, err := channel.New(channel.Config{Name: "produce", Flow: producer, Logger: quiet, Observer: tr})
	require.NoError(t, err)
	require.NoError(t, pch.Start(context.Background())) // a channel handles messages while it runs
	t.Cleanup(func() { _ = pch.Stop(context.Background()) })
	m, err := message.NewJSON(map[string]any{"x": 1}, map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	require.NoError(t, err)
	require.NoError(t, pch.Handle(t.Context(), m).Err)

	var meta map[string]any
	select {
	case meta = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the consumer did not receive the message")
	}
	var publishSpan string
	for _, s := range rec.Ended() {
		if s.Name() == "publish(work.traced)" {
			publishSpan = s.SpanContext().SpanID().String()
		}
	}
	require.NotEmpty(t, publishSpan)
	assert.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-"+publishSpan+"-01", meta["traceparent"],
		"the delivery's meta keeps the trace context the publish step sent")
	require.NoError(t, ch.Stop(t.Context()))
	for _, s := range rec.Ended() {
		if s.Name() == "run consume" {
			assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", s.SpanContext().TraceID().String())
			assert.Equal(t, publishSpan, s.Parent().SpanID().String())
			return
		}
	}
	t.Fatal("no span for the consumer's run")
}

package telemetry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/channel"
	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/logging"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/telemetry"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	incomingTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpan  = "00f067aa0ba902b7"
	traceparent   = "00-" + incomingTrace + "-" + incomingSpan + "-01"
)

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]any {
	out := map[attribute.Key]any{}
	for _, kv := range s.Attributes() {
		out[kv.Key] = kv.Value.AsInterface()
	}
	return out
}

// TestRunAndStepSpans: a channel's run is a span continuing the trace the
// message brought (its traceparent), each step attempt a child span with
// the flow, step, attempt, outcome and message ID; the stored trace keeps
// the trace ID.
func TestRunAndStepSpans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
		tr := telemetry.New(tp)
		calls := 0
		f := flow.New("orders",
			flow.Step("flaky", func(ctx context.Context, c *fc.Context) error {
				if calls++; calls == 1 {
					return errors.Retry(errors.New("busy"))
				}
				return nil
			}),
			flow.Step("check", func(ctx context.Context, c *fc.Context) error { return nil }),
		).Retry(errors.Policy{MaxAttempts: 3, Initial: 10 * time.Millisecond}).Use(tr.Middleware()).MustBuild()
		st := store.NewMemory()
		ch, err := channel.New(channel.Config{Name: "intake", Flow: f, Store: st, Observer: tr})
		require.NoError(t, err)
		require.NoError(t, ch.Start(context.Background())) // a channel handles messages while it runs
		t.Cleanup(func() { _ = ch.Stop(context.Background()) })
		m, err := message.NewJSON(map[string]any{"x": 1}, map[string]string{"http.header.traceparent": traceparent})
		require.NoError(t, err)
		require.NoError(t, ch.Handle(t.Context(), m).Err)

		spans := rec.Ended()
		require.Len(t, spans, 4)
		run := spans[3]
		assert.Equal(t, "run orders", run.Name())
		assert.Equal(t, trace.SpanKindConsumer, run.SpanKind())
		assert.Equal(t, incomingTrace, run.SpanContext().TraceID().String())
		assert.Equal(t, incomingSpan, run.Parent().SpanID().String(), "continues the caller's span")
		assert.Equal(t, map[attribute.Key]any{telemetry.AttrChannel: "intake", telemetry.AttrFlow: "orders",
			telemetry.AttrMessageID: m.ID, telemetry.AttrOutcome: "ok"}, attrs(run))

		type seen struct {
			name    string
			attempt int64
			outcome string
			status  codes.Code
		}
		var steps []seen
		for _, s := range spans[:3] {
			assert.Equal(t, run.SpanContext().SpanID(), s.Parent().SpanID(), "%s is a child of the run", s.Name())
			assert.Equal(t, incomingTrace, s.SpanContext().TraceID().String())
			a := attrs(s)
			assert.Equal(t, "orders", a[telemetry.AttrFlow])
			assert.Equal(t, s.Name(), a[telemetry.AttrStep])
			assert.Equal(t, m.ID, a[telemetry.AttrMessageID])
			steps = append(steps, seen{s.Name(), a[telemetry.AttrAttempt].(int64), a[telemetry.AttrOutcome].(string), s.Status().Code})
		}
		assert.Equal(t, []seen{{"flaky", 1, "will-retry", codes.Error}, {"flaky", 2, "ok", codes.Unset}, {"check", 1, "ok", codes.Unset}}, steps)

		got, err := st.Get(t.Context(), m.ID)
		require.NoError(t, err)
		var stored flow.Trace
		require.NoError(t, json.Unmarshal(got.Message.Trace, &stored))
		assert.Equal(t, incomingTrace, stored.TraceID)
	})
}

// TestOutcomes: a Stop is not an error of the span; a failure is, with
// its error recorded. A message without trace context starts a trace.
func TestOutcomes(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tr := telemetry.New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	f := flow.New("f", flow.Step("judge", func(ctx context.Context, c *fc.Context) error {
		switch c.View()["x"] {
		case "stop":
			return errors.Stop("no")
		case "fail":
			return errors.New("broken")
		}
		return nil
	})).Use(tr.Middleware()).MustBuild()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Observer: tr})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background())) // a channel handles messages while it runs
	t.Cleanup(func() { _ = ch.Stop(context.Background()) })
	for _, x := range []string{"stop", "fail"} {
		m, err := message.NewJSON(map[string]any{"x": x}, nil)
		require.NoError(t, err)
		ch.Handle(t.Context(), m)
	}
	spans := rec.Ended()
	require.Len(t, spans, 4)
	assert.Equal(t, codes.Unset, spans[0].Status().Code)
	assert.Equal(t, "stop", attrs(spans[1])[telemetry.AttrOutcome])
	assert.Equal(t, codes.Unset, spans[1].Status().Code)
	assert.False(t, spans[1].Parent().IsValid(), "no incoming trace: the run starts one")
	assert.Equal(t, codes.Error, spans[2].Status().Code)
	assert.Equal(t, "failed", attrs(spans[3])[telemetry.AttrOutcome])
	assert.Equal(t, codes.Error, spans[3].Status().Code)
	require.NotEmpty(t, spans[3].Events())
	assert.Equal(t, "exception", spans[3].Events()[0].Name)
}

// TestOutsideTracedRuns: without a traced run (a flow run directly),
// the middleware makes no span and Inject writes nothing.
func TestOutsideTracedRuns(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tr := telemetry.New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	h := http.Header{}
	f := flow.New("f", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
		telemetry.InjectHTTP(ctx, h)
		return nil
	})).Use(tr.Middleware()).MustBuild()
	_, err := f.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, rec.Ended())
	assert.Empty(t, h)
}

// TestHTTPStepPropagates: the http step of a YAML flow sends the trace
// context of its span to the service it calls.
func TestHTTPStepPropagates(t *testing.T) {
	var mu sync.Mutex
	var got []string
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Traceparent"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok": true}`))
	}))
	defer svc.Close()
	cfg, err := config.LoadSources([]config.Source{{Name: "t.yaml", Data: []byte(`version: 1
flows:
  f:
    steps:
      - http: {url: "` + svc.URL + `/x", into: answer}
`)}})
	require.NoError(t, err)
	b, ok := cfg.Builder("f")
	require.True(t, ok)
	rec := tracetest.NewSpanRecorder()
	tr := telemetry.New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	f, err := b.Use(tr.Middleware()).Build()
	require.NoError(t, err)
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Observer: tr})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background())) // a channel handles messages while it runs
	t.Cleanup(func() { _ = ch.Stop(context.Background()) })
	m, err := message.NewJSON(map[string]any{}, map[string]string{"traceparent": traceparent})
	require.NoError(t, err)
	res := ch.Handle(t.Context(), m)
	require.NoError(t, res.Err)
	assert.Equal(t, map[string]any{"ok": true}, res.Message.Context["answer"])
	spans := rec.Ended()
	require.Len(t, spans, 2)
	step := spans[0]
	assert.Equal(t, "http(answer)", step.Name())
	require.Len(t, got, 1)
	assert.Equal(t, "00-"+incomingTrace+"-"+step.SpanContext().SpanID().String()+"-01", got[0],
		"the called service continues the trace under the step's span")
}

// TestInject: a step sending a message (a NATS publish) writes the trace
// context into its headers with their Set method.
func TestInject(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tr := telemetry.New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	headers := map[string]string{}
	f := flow.New("f", flow.Step("publish", func(ctx context.Context, c *fc.Context) error {
		telemetry.Inject(ctx, func(k, v string) { headers[k] = v })
		return nil
	})).Use(tr.Middleware()).MustBuild()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Observer: tr})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background())) // a channel handles messages while it runs
	t.Cleanup(func() { _ = ch.Stop(context.Background()) })
	m, err := message.NewJSON(map[string]any{}, map[string]string{"nats.header.traceparent": traceparent, "nats.header.tracestate": "k=v"})
	require.NoError(t, err)
	require.NoError(t, ch.Handle(t.Context(), m).Err)
	step := rec.Ended()[0]
	assert.Equal(t, "00-"+incomingTrace+"-"+step.SpanContext().SpanID().String()+"-01", headers["traceparent"])
	assert.Equal(t, "k=v", headers["tracestate"])
	assert.True(t, strings.HasPrefix(step.SpanContext().TraceState().String(), "k=v"))
}

func ExampleInject() {
	// In a step of a traced run, send the trace on with a message's
	// headers (here a map; a nats.Header's or http.Header's Set method).
	step := func(ctx context.Context, c *fc.Context) error {
		headers := map[string]string{}
		telemetry.Inject(ctx, func(k, v string) { headers[k] = v })
		return nil // publish the message with headers
	}
	_ = flow.Step("publish", step)
}

func ExampleNew() {
	rec := tracetest.NewSpanRecorder()
	tr := telemetry.New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	f := flow.New("orders", flow.Step("price", func(ctx context.Context, c *fc.Context) error { return nil })).
		Use(tr.Middleware()).MustBuild()
	ch, err := channel.New(channel.Config{Name: "intake", Flow: f, Observer: tr, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	if err := ch.Start(context.Background()); err != nil {
		panic(err)
	}
	defer ch.Stop(context.Background())
	m, _ := message.NewJSON(map[string]any{}, map[string]string{"http.header.traceparent": traceparent})
	ch.Handle(context.Background(), m)
	for _, s := range rec.Ended() {
		fmt.Println(s.Name(), s.SpanContext().TraceID())
	}
	// Output:
	// price 4bf92f3577b34da6a3ce929d0e0e4736
	// run orders 4bf92f3577b34da6a3ce929d0e0e4736
}

// TestLogsCarryTraceIDs: what a step logs in a traced run names the trace
// and the step's span (package logging).
func TestLogsCarryTraceIDs(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tr := telemetry.New(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	var b strings.Builder
	l, err := logging.New(&b, "json", slog.LevelInfo)
	require.NoError(t, err)
	f := flow.New("f", flow.Step("say", func(ctx context.Context, c *fc.Context) error {
		l.InfoContext(ctx, "hello")
		return nil
	})).Use(tr.Middleware()).MustBuild()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Observer: tr})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background())) // a channel handles messages while it runs
	t.Cleanup(func() { _ = ch.Stop(context.Background()) })
	m, err := message.NewJSON(map[string]any{}, map[string]string{"traceparent": traceparent})
	require.NoError(t, err)
	require.NoError(t, ch.Handle(t.Context(), m).Err)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(b.String()), &got))
	assert.Equal(t, incomingTrace, got["trace_id"])
	assert.Equal(t, rec.Ended()[0].SpanContext().SpanID().String(), got["span_id"])
	assert.Equal(t, m.ID, got["message_id"])
}

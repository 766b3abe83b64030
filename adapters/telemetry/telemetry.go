// Package telemetry traces channel runs with OpenTelemetry: a span per
// run of a message (a [channel.RunObserver]) and a span per step attempt
// (a [flow.Middleware]), and carries the W3C trace context in and out of
// the process: a run continues the trace of the request that brought its
// message (an incoming traceparent, which the HTTP source keeps in the
// message's meta as http.header.traceparent and the nats source as
// traceparent), and steps that call other services send it on with
// [Inject] (the http and publish steps do).
//
// Tracing is off unless a [Tracing] is made and given to the channels
// (flowrun serve makes one when the standard OTEL_* environment
// variables ask for an exporter, see package telemetry/otlp). Without it
// nothing here runs: Inject writes nothing outside a traced run.
//
// Span attributes, all under svcflow.: channel, flow, message_id and
// outcome (an errors.Kind) on the run's span; flow, step, path, attempt
// (1 for the first), outcome and message_id on each step attempt's span.
// A run or attempt whose outcome is not ok, stop or skipped has the error
// status and the error recorded. The trace's ID is recorded with the
// message's trace (flow.Trace.TraceID).
package telemetry

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// ScopeName is the instrumentation scope of svcflow's spans.
const ScopeName = "github.com/svcflow/svcflow"

// Attribute keys of svcflow's spans.
const (
	AttrChannel   = attribute.Key("svcflow.channel")
	AttrFlow      = attribute.Key("svcflow.flow")
	AttrStep      = attribute.Key("svcflow.step")
	AttrPath      = attribute.Key("svcflow.path")
	AttrAttempt   = attribute.Key("svcflow.attempt")
	AttrOutcome   = attribute.Key("svcflow.outcome")
	AttrMessageID = attribute.Key("svcflow.message_id")
)

// Tracing makes the spans of channel runs with a tracer provider. It is
// safe for concurrent use.
type Tracing struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// New returns a Tracing whose spans go to tp, which continues and sends
// on W3C trace context (traceparent, tracestate) and baggage.
func New(tp trace.TracerProvider) *Tracing {
	return &Tracing{
		tracer: tp.Tracer(ScopeName),
		prop:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
}

// tracingKey marks the context of a run traced by a Tracing.
type tracingKey struct{}

// BeginRun implements channel.RunObserver: it starts the run's span, a
// child of the trace context the message brought (its meta's traceparent,
// as "traceparent" or "<source>.header.traceparent"), and returns the
// trace's ID.
func (t *Tracing) BeginRun(ctx context.Context, ch, flowName string, m *message.Message) (context.Context, string, func(error)) {
	ctx = t.prop.Extract(ctx, metaCarrier(m.Meta))
	ctx, span := t.tracer.Start(ctx, "run "+flowName, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(AttrChannel.String(ch), AttrFlow.String(flowName), AttrMessageID.String(m.ID)))
	ctx = context.WithValue(ctx, tracingKey{}, t)
	id := ""
	if sc := span.SpanContext(); sc.HasTraceID() {
		id = sc.TraceID().String()
	}
	return ctx, id, func(err error) { end(span, err) }
}

// end sets the outcome of a span and ends it.
func end(span trace.Span, err error) {
	outcome := errors.KindOf(err)
	span.SetAttributes(AttrOutcome.String(outcome.String()))
	switch outcome {
	case errors.KindOK, errors.KindStop, errors.KindDropped, errors.KindSkipped:
	default:
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Middleware returns the middleware that makes a span for every step
// attempt of a run begun by t, a child of the run's span; steps of flows
// run otherwise (no channel, no Tracing) pass through untouched.
func (t *Tracing) Middleware() flow.Middleware {
	return func(next flow.Handler) flow.Handler {
		return func(ctx context.Context, s *flow.StepInfo, c *fc.Context) error {
			if ctx.Value(tracingKey{}) != t {
				return next(ctx, s, c)
			}
			attrs := []attribute.KeyValue{AttrFlow.String(s.Flow), AttrStep.String(s.Name), AttrPath.String(s.Path),
				AttrAttempt.Int(flow.Attempt(ctx, s))}
			if _, id, ok := channel.MessageFrom(ctx); ok {
				attrs = append(attrs, AttrMessageID.String(id))
			}
			ctx, span := t.tracer.Start(ctx, s.Name, trace.WithAttributes(attrs...))
			err := next(ctx, s, c)
			end(span, err)
			return err
		}
	}
}

// Inject writes the trace context of ctx (traceparent, tracestate,
// baggage) with set, when ctx belongs to a run traced by a [Tracing]
// (the context a step is called with); otherwise it writes nothing. A
// step that sends a message or calls a service sends the trace on this
// way: set is the Set method of the outgoing headers (nats.Header.Set,
// http.Header.Set).
func Inject(ctx context.Context, set func(key, value string)) {
	t, ok := ctx.Value(tracingKey{}).(*Tracing)
	if !ok {
		return
	}
	t.prop.Inject(ctx, setCarrier(set))
}

// InjectHTTP is [Inject] into the headers of an outgoing HTTP request.
func InjectHTTP(ctx context.Context, h http.Header) { Inject(ctx, h.Set) }

// setCarrier is a propagation.TextMapCarrier that only writes.
type setCarrier func(key, value string)

func (s setCarrier) Get(string) string     { return "" }
func (s setCarrier) Set(key, value string) { s(key, value) }
func (s setCarrier) Keys() []string        { return nil }

// metaCarrier reads trace context from a message's meta: the key itself
// ("traceparent"), or a header a source copied ("http.header.traceparent").
type metaCarrier map[string]string

func (m metaCarrier) Get(key string) string {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.HasSuffix(k, ".header."+key) {
			return v
		}
	}
	return ""
}

func (m metaCarrier) Set(string, string) {}

func (m metaCarrier) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

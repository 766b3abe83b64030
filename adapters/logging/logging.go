// Package logging makes the one log/slog handler a svcflow process logs
// through: text or JSON, a minimum level, durations written as strings
// ("1.5ms", never nanoseconds), and every record logged with a channel
// run's context (the `log:` step, flow.Logger, the channel's own records)
// tagged with the channel and the message ID.
//
// flowrun's --log and --log-level flags build it with [New]; a program of
// its own wraps any handler with [Handler].
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel/trace"

	"github.com/svcflow/svcflow/adapters/channel"
)

// Formats are the names [New] accepts for its format.
var Formats = []string{"text", "json"}

// ParseLevel returns the level named debug, info, warn or error (any
// case).
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("expected debug, info, warn or error, got %q", s)
}

// New returns a logger writing to w in format ("text" or "json") the
// records at level and above: a slog text or JSON handler whose durations
// are strings, wrapped by [Handler].
func New(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationString}
	switch format {
	case "text":
		return slog.New(Handler(slog.NewTextHandler(w, opts))), nil
	case "json":
		return slog.New(Handler(slog.NewJSONHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("expected text or json, got %q", format)
}

// durationString writes a duration as its string ("1.5ms"): the JSON
// handler would write nanoseconds.
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// Handler returns h tagging every record logged with the context of a
// channel's run with the attributes channel and message_id (see
// channel.MessageFrom), and, when the run is traced (package telemetry),
// trace_id and span_id: the span of the step that logs; and with the
// attributes of [WithAttrs] (a production component's run adds
// component and kind). Records logged without such a context pass
// unchanged.
func Handler(h slog.Handler) slog.Handler { return &tagging{h: h} }

type tagging struct{ h slog.Handler }

func (t *tagging) Enabled(ctx context.Context, l slog.Level) bool { return t.h.Enabled(ctx, l) }

func (t *tagging) Handle(ctx context.Context, r slog.Record) error {
	if ch, id, ok := channel.MessageFrom(ctx); ok {
		r = r.Clone()
		r.AddAttrs(slog.String("channel", ch), slog.String("message_id", id))
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	if attrs := attrsFrom(ctx); len(attrs) > 0 {
		r = r.Clone()
		r.AddAttrs(attrs...)
	}
	return t.h.Handle(ctx, r)
}

func (t *tagging) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &tagging{h: t.h.WithAttrs(attrs)}
}

func (t *tagging) WithGroup(name string) slog.Handler {
	return &tagging{h: t.h.WithGroup(name)}
}

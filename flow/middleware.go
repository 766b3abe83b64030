package flow

import (
	"context"
	"log/slog"
	"time"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// Logger returns middleware that logs every step attempt with l: the flow,
// the step, its duration and outcome. Successful steps log at Debug, Stop
// at Info, Retry at Warn, everything else at Error. A nil l uses
// slog.Default().
func Logger(l *slog.Logger) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, s *StepInfo, c *fc.Context) error {
			lg := l
			if lg == nil {
				lg = slog.Default()
			}
			start := time.Now()
			err := next(ctx, s, c)
			level := slog.LevelDebug
			switch errors.KindOf(err) {
			case errors.KindOK:
			case errors.KindStop:
				level = slog.LevelInfo
			case errors.KindRetry, errors.KindRetryExhausted:
				level = slog.LevelWarn
			default:
				level = slog.LevelError
			}
			if !lg.Enabled(ctx, level) {
				return err
			}
			attrs := []slog.Attr{
				slog.String("flow", s.Flow), slog.String("step", s.Name),
				slog.Duration("duration", time.Since(start)), slog.String("outcome", Outcome(err)),
			}
			if err != nil {
				attrs = append(attrs, slog.String("error", err.Error()))
			}
			lg.LogAttrs(ctx, level, "step", attrs...)
			return err
		}
	}
}

// Recover returns middleware that turns a panic in the middleware inside
// it into an error carrying the stack. (Panics in services themselves are
// always recovered by the engine.) Put it first in [Builder.Use].
func Recover() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, s *StepInfo, c *fc.Context) (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = errors.Recovered(v)
				}
			}()
			return next(ctx, s, c)
		}
	}
}

// Metrics receives one observation per step attempt. Implementations must
// be safe for concurrent use and fast: they run on every step.
type Metrics interface {
	ObserveStep(flow, step, outcome string, d time.Duration)
}

// NopMetrics is a [Metrics] that does nothing.
type NopMetrics struct{}

// ObserveStep implements [Metrics].
func (NopMetrics) ObserveStep(string, string, string, time.Duration) {}

// Measure returns middleware that reports every step attempt to m (nil:
// [NopMetrics], and the middleware adds nothing).
func Measure(m Metrics) Middleware {
	if m == nil {
		return func(next Handler) Handler { return next }
	}
	return func(next Handler) Handler {
		return func(ctx context.Context, s *StepInfo, c *fc.Context) error {
			start := time.Now()
			err := next(ctx, s, c)
			m.ObserveStep(s.Flow, s.Name, Outcome(err), time.Since(start))
			return err
		}
	}
}

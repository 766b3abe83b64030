package flow

import (
	"context"
	"log/slog"
	"time"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// Logger returns middleware that logs every step attempt with l: the flow,
// the step, its duration, its outcome (an errors.Kind, see [Middleware])
// and its error. Successful attempts log at Debug, Stop and Drop at Info, an
// attempt that will be retried (will-retry) at Warn, everything else
// (retry-exhausted, failed, fatal, panic, canceled) at Error. A nil l uses
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
			outcome := errors.KindOf(err)
			level := slog.LevelError
			switch outcome {
			case errors.KindOK:
				level = slog.LevelDebug
			case errors.KindStop, errors.KindDropped:
				level = slog.LevelInfo
			case errors.KindWillRetry, errors.KindRetry:
				level = slog.LevelWarn
			}
			if !lg.Enabled(ctx, level) {
				return err
			}
			attrs := []slog.Attr{
				slog.String("flow", s.Flow), slog.String("step", s.Name),
				slog.Duration("duration", time.Since(start)), slog.String("outcome", outcome.String()),
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
	// ObserveStep records one attempt of a step: its outcome (errors.KindOf
	// the attempt's error, see [Middleware]: ok, will-retry, then ok or
	// retry-exhausted for a retried step, or stop, failed, ...) and how
	// long it took.
	ObserveStep(flow, step string, outcome errors.Kind, d time.Duration)
}

// NopMetrics is a [Metrics] that does nothing.
type NopMetrics struct{}

// ObserveStep implements [Metrics].
func (NopMetrics) ObserveStep(string, string, errors.Kind, time.Duration) {}

// Measure returns middleware that reports every step attempt to m (nil:
// [NopMetrics], and the middleware adds nothing). A step that succeeds on
// its third attempt is observed three times: will-retry, will-retry, ok.
func Measure(m Metrics) Middleware {
	if m == nil {
		return func(next Handler) Handler { return next }
	}
	return func(next Handler) Handler {
		return func(ctx context.Context, s *StepInfo, c *fc.Context) error {
			start := time.Now()
			err := next(ctx, s, c)
			m.ObserveStep(s.Flow, s.Name, errors.KindOf(err), time.Since(start))
			return err
		}
	}
}

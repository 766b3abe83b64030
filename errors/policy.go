package errors

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Policy defaults, used for zero fields.
const (
	DefaultInitial     = 100 * time.Millisecond
	DefaultMultiplier  = 2.0
	DefaultMaxInterval = 10 * time.Second
	DefaultMaxAttempts = 3
)

// Policy says how Do retries a step. It is plain data; the zero value is
// usable and means DefaultPolicy. A Policy may be shared by concurrent Do
// calls: each call builds its own backoff state.
//
// Waits grow exponentially: Initial, Initial*Multiplier, ... each capped at
// MaxInterval, then randomized by ±Jitter (so with Jitter > 0 a wait may
// exceed MaxInterval by up to that factor).
type Policy struct {
	// Initial is the first wait; 0 means 100ms.
	Initial time.Duration
	// Multiplier grows the wait after each retry; 0 means 2. Must be >= 1.
	Multiplier float64
	// MaxInterval caps each wait (before jitter); 0 means 10s.
	MaxInterval time.Duration
	// MaxAttempts is the total number of attempts including the first;
	// 0 means 3, 1 means no retry.
	MaxAttempts int
	// MaxElapsed bounds the time from the start of Do to the end of the
	// next wait: a retry whose wait would end past it is not made.
	// 0 means no limit.
	MaxElapsed time.Duration
	// Jitter is the randomization factor in [0, 1]; 0 means none.
	Jitter float64
	// RetryAll also retries plain failures (KindFailure). Stop, Fatal,
	// Canceled and Panic errors are never retried. By default only Retry
	// errors are retried.
	RetryAll bool
}

// NoRetry is a Policy that makes a single attempt.
var NoRetry = Policy{MaxAttempts: 1}

// DefaultPolicy returns the Policy with every default filled in:
// Initial 100ms, Multiplier 2, MaxInterval 10s, MaxAttempts 3,
// no MaxElapsed limit, no Jitter, only Retry errors retried.
func DefaultPolicy() Policy { return Policy{}.withDefaults() }

// withDefaults fills in zero fields. Initial is capped at MaxInterval.
func (p Policy) withDefaults() Policy {
	if p.Initial == 0 {
		p.Initial = DefaultInitial
	}
	if p.Multiplier == 0 {
		p.Multiplier = DefaultMultiplier
	}
	if p.MaxInterval == 0 {
		p.MaxInterval = DefaultMaxInterval
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	p.Initial = min(p.Initial, p.MaxInterval)
	return p
}

// Validate reports every invalid field: negative durations, a Multiplier
// below 1 (when set), a Jitter outside [0, 1], or a negative MaxAttempts.
// Each problem names its field; several are joined.
func (p Policy) Validate() error {
	var errs []error
	bad := func(field string, v any, want string) {
		errs = append(errs, fmt.Errorf("errors: invalid Policy.%s %v: %s", field, v, want))
	}
	if p.Initial < 0 {
		bad("Initial", p.Initial, "must not be negative")
	}
	if p.Multiplier != 0 && !(p.Multiplier >= 1 && !math.IsInf(p.Multiplier, 1)) {
		bad("Multiplier", p.Multiplier, "must be a finite number >= 1")
	}
	if p.MaxInterval < 0 {
		bad("MaxInterval", p.MaxInterval, "must not be negative")
	}
	if p.MaxAttempts < 0 {
		bad("MaxAttempts", p.MaxAttempts, "must not be negative")
	}
	if p.MaxElapsed < 0 {
		bad("MaxElapsed", p.MaxElapsed, "must not be negative")
	}
	if !(p.Jitter >= 0 && p.Jitter <= 1) {
		bad("Jitter", p.Jitter, "must be in [0, 1]")
	}
	return Join(errs...)
}

// retryable reports whether Do may retry an error of kind k.
func (p Policy) retryable(k Kind) bool {
	return k == KindRetry || (p.RetryAll && k == KindFailure)
}

// Do calls fn until it succeeds, returns an error that is not retried, or
// the policy runs out. attempt counts from 1; attempts is how many times fn
// was called.
//
//   - nil: returned at once.
//   - Retry errors (and, with RetryAll, plain failures): fn is called again
//     after the next backoff wait, or after the error's RetryAfter hint when
//     it has one (the hint is not capped by MaxInterval; it still counts
//     against MaxElapsed, and the backoff schedule advances as usual).
//   - Stop, Fatal, Panic and Canceled errors, and plain failures without
//     RetryAll: returned at once, as-is.
//   - No attempts or elapsed budget left: a *ExhaustedError wrapping the
//     last error.
//   - ctx done before fn is first called: ctx.Err() with 0 attempts.
//   - ctx done after a retryable error or during a wait: returned at once
//     with an error wrapping both ctx.Err() and the last error, so
//     errors.Is(err, context.Canceled) holds and KindOf reports KindCanceled.
//
// An invalid Policy (see Validate) returns the validation error without
// calling fn.
//
// Do allocates nothing when fn succeeds on the first attempt: the backoff
// state is created on the first retry.
func (p Policy) Do(ctx context.Context, fn func(ctx context.Context, attempt int) error) (attempts int, err error) {
	if err := p.Validate(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p = p.withDefaults()
	var start time.Time
	if p.MaxElapsed > 0 {
		start = time.Now()
	}
	var sched intervals // created lazily on the first retry
	for attempt := 1; ; attempt++ {
		err := fn(ctx, attempt)
		if err == nil {
			return attempt, nil
		}
		if !p.retryable(KindOf(err)) {
			return attempt, err
		}
		if cerr := ctx.Err(); cerr != nil {
			return attempt, &interruptedError{ctx: cerr, last: err, attempts: attempt}
		}
		if attempt >= p.MaxAttempts {
			return attempt, &ExhaustedError{Attempts: attempt, Last: err}
		}
		if sched.b == nil {
			sched = newIntervals(p)
		}
		wait, ok := sched.next()
		if !ok {
			return attempt, &ExhaustedError{Attempts: attempt, Last: err}
		}
		if hint, ok := RetryAfterHint(err); ok {
			wait = hint
		}
		if p.MaxElapsed > 0 && time.Since(start)+wait > p.MaxElapsed {
			return attempt, &ExhaustedError{Attempts: attempt, Last: err}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, &interruptedError{ctx: ctx.Err(), last: err, attempts: attempt}
		case <-t.C:
		}
	}
}

// interruptedError is returned by Policy.Do when its context ends while a
// retry is pending. It wraps both the context error and the last error.
type interruptedError struct {
	ctx      error
	last     error
	attempts int
}

func (e *interruptedError) Error() string {
	s := "retry interrupted after " + strconv.Itoa(e.attempts) + " attempt"
	if e.attempts != 1 {
		s += "s"
	}
	return s + ": " + e.ctx.Error() + ": " + e.last.Error()
}

func (e *interruptedError) Unwrap() []error { return []error{e.ctx, e.last} }

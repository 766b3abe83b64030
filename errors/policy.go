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
	// RetryAll also retries plain failures (KindFailed). Stop, Fatal,
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

// Retryable reports whether err is retried under p: a Retry error
// (KindRetry) or, with RetryAll, a plain failure (KindFailed). An error
// whose retries already ran out (one holding an *ExhaustedError, from a
// nested execution) is not retried again: retries never multiply. Stop,
// Fatal, Canceled and Panic errors are never retried.
func (p Policy) Retryable(err error) bool {
	switch KindOf(err) {
	case KindRetry:
		return true
	case KindFailed:
		return p.RetryAll && !Is(err, ErrExhausted)
	}
	return false
}

// Do calls fn until it succeeds, returns an error that is not retried, or
// the policy runs out. attempt counts from 1; attempts is how many times fn
// was called.
//
//   - nil: returned at once.
//   - Retry errors (and, with RetryAll, plain failures; see Retryable): fn
//     is called again after the next backoff wait, or after the error's
//     RetryAfter hint when it has one (the hint is not capped by
//     MaxInterval; it still counts against MaxElapsed, and the backoff
//     schedule advances as usual).
//   - Stop, Fatal, Panic and Canceled errors, plain failures without
//     RetryAll, and errors whose retries already ran out: returned at once,
//     as-is.
//   - No attempts or elapsed budget left: a *ExhaustedError wrapping the
//     last error (KindRetryExhausted when that error is a Retry).
//   - ctx done before fn is first called: ctx.Err() with 0 attempts.
//   - ctx done after a retryable error or during a wait: returned at once
//     with an error wrapping both ctx.Err() and the last error, so
//     errors.Is(err, context.Canceled) holds and KindOf reports KindCanceled.
//
// An invalid Policy (see Validate) returns the validation error without
// calling fn.
//
// Do allocates nothing when fn succeeds on the first attempt: the retry
// state (see Retries) is created on the first retry.
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
	var r *Retries // created on the first retryable failure
	for attempt := 1; ; attempt++ {
		err := fn(ctx, attempt)
		if err == nil {
			return attempt, nil
		}
		if r == nil {
			if !p.Retryable(err) {
				return attempt, err
			}
			r = &Retries{p: p, start: start}
		}
		if retry, final := r.next(ctx, err); !retry {
			return attempt, final
		}
		if err := r.Wait(ctx); err != nil {
			return attempt, err
		}
	}
}

// Retries is the state of one execution under a Policy between its
// attempts: how many were made, when the first began, the backoff
// schedule. Policy.Do keeps one. An engine that makes the attempts itself
// gets one from Policy.Retries when an attempt first fails, calls Next
// after each failed attempt and Wait before the next one. Package flow
// does, so that an attempt's fate is decided before the attempt returns
// through the step's middleware.
//
// A Retries is not safe for concurrent use.
type Retries struct {
	p        Policy // defaults filled in
	start    time.Time
	sched    intervals // created on the first retry
	attempts int
	wait     time.Duration // decided by the last Next that retried
	last     error
}

// Retries returns the retry state of an execution under p whose first
// attempt began at start (read only when MaxElapsed is set). p must be
// valid (see Validate): Do checks it; an engine checks it once, when the
// policy is configured.
func (p Policy) Retries(start time.Time) *Retries {
	return &Retries{p: p.withDefaults(), start: start}
}

// Attempts returns the number of failed attempts counted by Next.
func (r *Retries) Attempts() int { return r.attempts }

// Next counts an attempt that failed with err and decides what follows.
// When the attempt is retried it returns a *WillRetryError (KindWillRetry)
// wrapping err: call Wait, then make the next attempt. Otherwise the
// execution ends with the error Next returns:
//
//   - err itself, when err is not retried under the policy (see
//     Policy.Retryable);
//   - an error wrapping ctx.Err() and err, when ctx is done (KindCanceled);
//   - an *ExhaustedError wrapping err, when the attempts or the elapsed
//     budget ran out (KindRetryExhausted for a Retry error).
//
// A nil err counts nothing and returns nil.
func (r *Retries) Next(ctx context.Context, err error) error {
	retry, final := r.next(ctx, err)
	if !retry {
		return final
	}
	return &WillRetryError{Attempt: r.attempts, After: r.wait, Err: err}
}

// next is Next without the *WillRetryError: retry reports that the
// attempt is retried; otherwise final ends the execution.
func (r *Retries) next(ctx context.Context, err error) (retry bool, final error) {
	if err == nil {
		return false, nil
	}
	r.attempts++
	r.last = err
	if !r.p.Retryable(err) {
		return false, err
	}
	if cerr := ctx.Err(); cerr != nil {
		return false, &interruptedError{ctx: cerr, last: err, attempts: r.attempts}
	}
	if r.attempts >= r.p.MaxAttempts {
		return false, &ExhaustedError{Attempts: r.attempts, Last: err}
	}
	if r.sched.b == nil {
		r.sched = newIntervals(r.p)
	}
	wait, ok := r.sched.next()
	if !ok {
		return false, &ExhaustedError{Attempts: r.attempts, Last: err}
	}
	if hint, ok := RetryAfterHint(err); ok {
		wait = hint
	}
	if r.p.MaxElapsed > 0 && time.Since(r.start)+wait > r.p.MaxElapsed {
		return false, &ExhaustedError{Attempts: r.attempts, Last: err}
	}
	r.wait = wait
	return true, nil
}

// Wait waits as long as the last Next that retried decided, then returns
// nil. When ctx ends first it returns at once an error wrapping both
// ctx.Err() and the last attempt's error (KindCanceled). Call it only
// after Next returned a *WillRetryError.
func (r *Retries) Wait(ctx context.Context) error {
	t := time.NewTimer(r.wait)
	select {
	case <-ctx.Done():
		t.Stop()
		return &interruptedError{ctx: ctx.Err(), last: r.last, attempts: r.attempts}
	case <-t.C:
		return nil
	}
}

// interruptedError is returned by Policy.Do and Retries when the context
// ends while a retry is pending. It wraps both the context error and the
// last error.
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

package flow

import (
	"context"
	"fmt"
	"sync"
	"time"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// StepInfo identifies a step to middleware and hooks. It is built once per
// step when the flow is built and must not be modified.
type StepInfo struct {
	Flow    string  // the flow's name
	Name    string  // the step's name (unique in the flow)
	Path    string  // where the step sits: flow/fork(tier)/gold/name
	Service Service // the service the step calls
}

// Handler runs one step. Middleware receives the next Handler and returns
// one that wraps it.
type Handler func(ctx context.Context, step *StepInfo, c *fc.Context) error

// Middleware wraps every step of a flow, in the style of net/http
// middleware: the first one given to [Builder.Use] is the outermost. It is
// applied once per step when the flow is built, so a middleware that does
// nothing per call costs one function call per step.
//
// Retries happen outside the middleware: each attempt passes through it.
// The fate of a failed attempt is decided before its error returns through
// the middleware, so errors.KindOf of that error is the attempt's outcome:
// an attempt that is retried returns an error of kind
// errors.KindWillRetry (an *errors.WillRetryError wrapping the service's
// error), the last attempt of a step whose retries ran out one of kind
// errors.KindRetryExhausted. A middleware passes the error on, or wraps it
// with %w; one that returns another error instead decides the attempt
// itself: that error is retried or not as the step's policy says.
type Middleware func(next Handler) Handler

// StepError is the error of a run that failed in a step: it names the flow
// and the step, and wraps the step's error so errors.Is and errors.As
// classify it (Stop, Retry, Fatal, a panic, a context key error, ...).
type StepError struct {
	Flow     string // the flow's name
	Step     string // the step's name
	Path     string // where the step sits in the flow
	Attempts int    // attempts made (more than 1 when the step was retried)
	Err      error  // the step's error; errors.KindOf(Err) is the step's outcome
}

// Error implements error.
func (e *StepError) Error() string {
	return fmt.Sprintf("flow %q: step %q: %v", e.Flow, e.Step, e.Err)
}

// Unwrap returns the step's error.
func (e *StepError) Unwrap() error { return e.Err }

// runner is a built node of a flow.
type runner interface {
	run(ctx context.Context, r *runState, c *fc.Context) error
}

// runState is what one run carries down the tree besides the context.
// Runs without options share plainRun, which is never modified.
type runState struct {
	trace   *tracer                   // nil when the run is not traced
	through string                    // end the run successfully after this step
	journal Journal                   // non-nil for a durable run (WithJournal)
	fps     map[string]string         // the flow's fingerprints by node path, for a durable run
	undos   map[string]CompensateFunc // the flow's undos by key, for a durable run
	mu      sync.Mutex
	from    string // skip steps until this one (guarded by mu)
	done    bool   // the through step ran: skip everything after it (guarded by mu)
}

// errThrough ends a run early after the step named by [Through]; the run
// itself returns nil.
var errThrough = errors.New("flow: stopped after the requested step")

// enter is called before a leaf runs. It reports whether the leaf must not
// run, and with which error.
func (r *runState) enter(l *leafRunner) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return true, errThrough
	}
	if r.from != "" {
		if r.from != l.info.Name {
			return true, nil // before the injection point: skipped
		}
		r.from = ""
	}
	return false, nil
}

// leave is called after a leaf succeeded.
func (r *runState) leave(l *leafRunner) error {
	if r.through != "" && r.through == l.info.Name {
		r.mu.Lock()
		r.done = true
		r.mu.Unlock()
		return errThrough
	}
	return nil
}

// leafRunner runs one service: retry outside, middleware, recover inside.
type leafRunner struct {
	info    StepInfo
	h       Handler
	policy  errors.Policy
	timeout time.Duration // per attempt; 0: none
	direct  bool          // no middleware and no timeout: call the service directly
	fn      StepFunc      // with direct, a Step's function, called without the Service indirection
	pure    bool          // the service is Pure (for a durable run's journal)
}

func newLeaf(svc Service, flowName, path string, policy errors.Policy, timeout time.Duration, mw []Middleware) *leafRunner {
	l := &leafRunner{info: StepInfo{Flow: flowName, Name: svc.Name(), Path: path, Service: svc}, policy: policy, timeout: timeout,
		pure: isPure(svc)}
	h := l.innermost()
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	l.h = h
	l.direct = len(mw) == 0 && timeout <= 0
	if st, ok := svc.(*step); ok && l.direct {
		l.fn = st.fn
	}
	return l
}

// callFunc calls a Step's function, turning a panic into an error that
// carries the stack.
func callFunc(fn StepFunc, ctx context.Context, c *fc.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = errors.Recovered(v)
		}
	}()
	return fn(ctx, c)
}

// callService calls the step's service, turning a panic into an error
// that carries the stack.
func callService(ctx context.Context, s *StepInfo, c *fc.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = errors.Recovered(v)
		}
	}()
	return s.Service.Call(ctx, c)
}

func (l *leafRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	if r == &plainRun {
		// The hot path: no options, so no tracing or injection to honour.
		if err := ctx.Err(); err != nil {
			return l.fail(err, 0)
		}
		var err error
		switch {
		case l.fn != nil:
			err = callFunc(l.fn, ctx, c)
		case l.direct:
			err = callService(ctx, &l.info, c)
		default:
			err = l.call(ctx, c)
		}
		if err == nil {
			return nil
		}
		attempts, err := l.retry(ctx, c, err)
		if err != nil {
			return l.fail(err, attempts)
		}
		return nil
	}
	if skip, err := r.enter(l); skip {
		return err
	}
	if r.journaled(ctx) {
		return l.durableLeaf(ctx, r, c)
	}
	var attempts int
	var err error
	if r.trace != nil {
		attempts, err = r.trace.leaf(ctx, l, c)
	} else {
		attempts, err = l.attempt(ctx, c)
	}
	if err != nil {
		return l.fail(err, attempts)
	}
	return r.leave(l)
}

// attempt runs the step, retrying under its policy; it returns the number
// of attempts made and the final error.
func (l *leafRunner) attempt(ctx context.Context, c *fc.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	err := l.call(ctx, c)
	if err == nil {
		return 1, nil
	}
	return l.retry(ctx, c, err)
}

// call makes one attempt through the middleware, under the step's timeout
// if it has one.
func (l *leafRunner) call(ctx context.Context, c *fc.Context) error {
	if l.timeout <= 0 {
		return l.h(ctx, &l.info, c)
	}
	tctx, cancel := context.WithTimeoutCause(ctx, l.timeout, errAttemptTimeout)
	err := l.h(tctx, &l.info, c)
	cancel()
	return err
}

// Attempt returns the number of the attempt of step s that ctx belongs
// to: 1 for the first, 2 for the first retry, ... Middleware calls it
// with the context and the StepInfo it is given (tracing records it).
func Attempt(ctx context.Context, s *StepInfo) int {
	if r, ok := ctx.Value(s).(*errors.Retries); ok {
		return r.Attempts() + 1
	}
	return 1
}

// ErrTimeout is wrapped by the error of a step attempt that ran out of the
// time given by [Timeout].
var ErrTimeout = errors.New("step timed out")

// errAttemptTimeout is the cause of an attempt's context that ran out of
// the step's time: it tells a timeout from the run's own cancellation.
var errAttemptTimeout = errors.New("step attempt timed out")

// innermost returns the innermost handler of the step, inside its
// middleware: it calls the service, turning a panic into an error that
// carries the stack, and, when the attempt failed, decides the attempt's
// fate under the step's policy before the error returns through the
// middleware (see decide). It is a closure rather than a method value,
// which would add a call per attempt.
func (l *leafRunner) innermost() Handler {
	return func(ctx context.Context, s *StepInfo, c *fc.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = errors.Recovered(v) // never retried: no decision to make
			}
		}()
		if err = s.Service.Call(ctx, c); err != nil {
			err = l.decide(ctx, err)
		}
		return err
	}
}

// decide returns the error of an attempt that failed with err, its fate
// decided: a *retrying (of kind errors.KindWillRetry) when the attempt is
// retried, which the next attempt continues; else the error that ends the
// step: err itself, an *errors.ExhaustedError when the retries ran out, or
// a cancellation.
//
// An attempt that runs out of its [Timeout] while the run's context is
// still live is a Retry error wrapping [ErrTimeout], so the policy tries
// again. The elapsed budget of the step's policy (MaxElapsed) counts from
// the end of its first attempt.
func (l *leafRunner) decide(ctx context.Context, err error) error {
	live := ctx // its end makes a retry moot
	if l.timeout > 0 && context.Cause(ctx) == errAttemptTimeout && !errors.IsStop(err) && !errors.IsFatal(err) {
		// The attempt's deadline is not the run's cancellation: keep
		// context.DeadlineExceeded out of the chain so it classifies as Retry.
		err = errors.Retry(fmt.Errorf("%w after %s (%v)", ErrTimeout, l.timeout, err))
		live = context.WithoutCancel(ctx)
	}
	if !l.retryable(err) {
		return err
	}
	r, _ := ctx.Value(&l.info).(*errors.Retries) // set from the second attempt on
	if r == nil {
		r = l.policy.Retries(time.Now())
	}
	return retried(r, r.Next(live, err))
}

// retrying is the error of a step attempt that is retried, on its way out
// through the step's middleware: a *errors.WillRetryError carrying the
// retry state of the step's execution, which the next attempt continues.
type retrying struct {
	*errors.WillRetryError
	r *errors.Retries
}

// Unwrap returns the *errors.WillRetryError.
func (e *retrying) Unwrap() error { return e.WillRetryError }

// retried returns the decision next of r, with r attached when the attempt
// is retried.
func retried(r *errors.Retries, next error) error {
	if we, ok := next.(*errors.WillRetryError); ok {
		return &retrying{WillRetryError: we, r: r}
	}
	return next
}

// retry continues a step whose first attempt failed with err: it waits and
// makes the further attempts its policy allows. It returns the attempts
// made and the final error.
//
// The fate of each failed attempt is normally decided inside it (see
// innermost), so that the middleware sees it. It is decided here when the
// step has no middleware and its first attempt called the service
// directly, or when a middleware returned an error of its own.
func (l *leafRunner) retry(ctx context.Context, c *fc.Context, err error) (int, error) {
	var (
		r    *errors.Retries
		rctx context.Context // ctx carrying r, for the attempts after the first
	)
	for attempts := 1; ; attempts++ {
		rt, decided := errors.AsType[*retrying](err)
		if decided {
			r = rt.r
		} else {
			if !l.retryable(err) {
				return attempts, err
			}
			if r == nil {
				r = l.policy.Retries(time.Now())
			}
			next := r.Next(ctx, err)
			if _, again := next.(*errors.WillRetryError); !again {
				return attempts, next
			}
		}
		if werr := r.Wait(ctx); werr != nil {
			return attempts, werr
		}
		if rctx == nil {
			rctx = context.WithValue(ctx, &l.info, r) // see Attempt
		}
		if err = l.call(rctx, c); err == nil {
			return attempts + 1, nil
		}
	}
}

// retryable reports whether err is retried under the step's policy; a
// nested flow's exhausted retries are not (retries never multiply).
func (l *leafRunner) retryable(err error) bool { return l.policy.Retryable(err) }

func (l *leafRunner) fail(err error, attempts int) error {
	return &StepError{Flow: l.info.Flow, Step: l.info.Name, Path: l.info.Path, Attempts: attempts, Err: err}
}

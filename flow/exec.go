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
type Middleware func(next Handler) Handler

// StepError is the error of a run that failed in a step: it names the flow
// and the step, and wraps the step's error so errors.Is and errors.As
// classify it (Stop, Retry, Fatal, a panic, a context key error, ...).
type StepError struct {
	Flow     string
	Step     string
	Path     string
	Attempts int // attempts made (more than 1 when the step was retried)
	Err      error
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
	trace   *tracer // nil when the run is not traced
	through string  // end the run successfully after this step
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
}

func newLeaf(svc Service, flowName, path string, policy errors.Policy, timeout time.Duration, mw []Middleware) *leafRunner {
	l := &leafRunner{info: StepInfo{Flow: flowName, Name: svc.Name(), Path: path, Service: svc}, policy: policy, timeout: timeout}
	h := callService
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

// call makes one attempt, under the step's timeout if it has one. An
// attempt that runs out of time while the run's context is still live is a
// Retry error wrapping [ErrTimeout], so the policy tries again.
func (l *leafRunner) call(ctx context.Context, c *fc.Context) error {
	if l.timeout <= 0 {
		return l.h(ctx, &l.info, c)
	}
	tctx, cancel := context.WithTimeout(ctx, l.timeout)
	err := l.h(tctx, &l.info, c)
	cancel()
	if err != nil && ctx.Err() == nil && tctx.Err() == context.DeadlineExceeded && !errors.IsStop(err) && !errors.IsFatal(err) {
		// The attempt's deadline is not the run's cancellation: keep
		// context.DeadlineExceeded out of the chain so it classifies as Retry.
		return errors.Retry(fmt.Errorf("%w after %s (%v)", ErrTimeout, l.timeout, err))
	}
	return err
}

// ErrTimeout is wrapped by the error of a step attempt that ran out of the
// time given by [Timeout].
var ErrTimeout = errors.New("step timed out")

// retry runs the step again under its policy when first (the error of the
// first attempt) asks for it. It returns the attempts made and the final
// error.
func (l *leafRunner) retry(ctx context.Context, c *fc.Context, first error) (int, error) {
	if !l.retryable(first) {
		return 1, first
	}
	return l.policy.Do(ctx, func(ctx context.Context, attempt int) error {
		if attempt == 1 {
			return first
		}
		return l.call(ctx, c)
	})
}

// retryable reports whether err is retried under the step's policy; a
// nested flow's exhausted retries are not (retries never multiply).
func (l *leafRunner) retryable(err error) bool { return l.policy.Retryable(err) }

func (l *leafRunner) fail(err error, attempts int) error {
	return &StepError{Flow: l.info.Flow, Step: l.info.Name, Path: l.info.Path, Attempts: attempts, Err: err}
}

package flow

import (
	"context"
	"fmt"

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
type runState struct {
	trace *tracer // nil when the run is not traced
}

// leafRunner runs one service: retry outside, middleware, recover inside.
type leafRunner struct {
	info   StepInfo
	h      Handler
	policy errors.Policy
}

func newLeaf(svc Service, flowName, path string, policy errors.Policy, mw []Middleware) *leafRunner {
	l := &leafRunner{info: StepInfo{Flow: flowName, Name: svc.Name(), Path: path, Service: svc}, policy: policy}
	h := callService
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	l.h = h
	return l
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
	if r.trace != nil {
		return r.trace.leaf(ctx, l, r, c)
	}
	if err := ctx.Err(); err != nil {
		return l.fail(err, 0)
	}
	err := l.h(ctx, &l.info, c)
	if err == nil {
		return nil
	}
	attempts, err := l.retry(ctx, c, err)
	if err != nil {
		return l.fail(err, attempts)
	}
	return nil
}

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
		return l.h(ctx, &l.info, c)
	})
}

func (l *leafRunner) retryable(err error) bool {
	if errors.Is(err, errors.ErrExhausted) {
		return false // a nested flow already retried: never multiply retries
	}
	switch errors.KindOf(err) {
	case errors.KindRetry:
		return true
	case errors.KindFailure:
		return l.policy.RetryAll
	}
	return false
}

func (l *leafRunner) fail(err error, attempts int) error {
	return &StepError{Flow: l.info.Flow, Step: l.info.Name, Path: l.info.Path, Attempts: attempts, Err: err}
}

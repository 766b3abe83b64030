package flow

import (
	"context"
	"fmt"
	"time"

	"github.com/svcflow/svcflow/branch"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// ---- First ----

// Candidate is one option of [First]: a guard and the steps it selects.
type Candidate struct {
	cond  string
	fn    func(*fc.Context) bool
	name  string
	steps []Service
}

// Guard returns a candidate selected when the expr condition holds.
func Guard(cond string, steps ...Service) Candidate {
	return Candidate{cond: cond, name: cond, steps: steps}
}

// GuardFunc returns a candidate selected when fn returns true; name labels
// it in errors and graphs.
func GuardFunc(name string, fn func(c *fc.Context) bool, steps ...Service) Candidate {
	return Candidate{fn: fn, name: name, steps: steps}
}

// ErrNoCandidate is returned (wrapped in a [*StepError]) when no guard of a
// [First] holds.
var ErrNoCandidate = errors.New("no candidate's guard holds")

// First evaluates the candidates' guards in order and runs the steps of the
// first one that holds; none holding is an error wrapping [ErrNoCandidate]
// that names the flow. After it, later steps know the keys provided by
// every candidate.
func First(candidates ...Candidate) Service {
	f := &first{cands: candidates}
	f.self = f
	return f
}

type first struct {
	combinator
	cands []Candidate
}

func (f *first) Name() string { return "first" }

func (f *first) build(b *builder, path string, in keys) (runner, keys, *Node) {
	p := path + "/first"
	n := &Node{Kind: KindFirst, Name: "first", Path: p}
	r := &firstRunner{flow: b.flow}
	if len(f.cands) == 0 {
		b.errorf("first", "", nil, "no candidates")
	}
	var outs []keys
	for _, cd := range f.cands {
		gname := "guard(" + cd.name + ")"
		gp := p + "/" + gname
		g := firstCase{fn: cd.fn}
		if cd.fn == nil {
			_, g.expr = b.expr(gname, cd.cond, in, true)
		}
		if len(cd.steps) == 0 {
			b.errorf(gname, "", nil, "no steps")
		}
		rs, out, nodes := b.sequence(cd.steps, gp, in.clone(), gname)
		g.body = seqRunner(rs)
		r.cases = append(r.cases, g)
		outs = append(outs, out)
		n.Children = append(n.Children, &Node{Kind: KindGuard, Name: gname, Path: gp, Label: cd.name, Children: nodes})
	}
	if in == nil {
		return r, nil, n
	}
	return r, intersect(outs), n
}

type firstCase struct {
	fn   func(*fc.Context) bool
	expr *branch.Expr
	body seqRunner
}

type firstRunner struct {
	flow  string
	cases []firstCase
}

func (f *firstRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	for _, cs := range f.cases {
		var ok bool
		switch {
		case cs.fn != nil:
			ok = cs.fn(c)
		case cs.expr != nil:
			var err error
			env := c.View()
			if ok, err = cs.expr.EvalBool(env); err != nil {
				return &StepError{Flow: f.flow, Step: "first", Err: cs.expr.DataError("condition", env, err)}
			}
		}
		if ok {
			return cs.body.run(ctx, r, c)
		}
	}
	return &StepError{Flow: f.flow, Step: "first", Err: fmt.Errorf("flow %q: %w", f.flow, ErrNoCandidate)}
}

// ---- Saga ----

// CompensateFunc undoes the effect of a step of a saga; cause is why the
// saga did not complete.
type CompensateFunc func(ctx context.Context, c *fc.Context, cause error) error

// Compensate returns step with an undo: when a [Saga] holding it does not
// complete, undo runs if step had completed. step may be any service,
// including a combinator (then the undo covers it as a whole).
func Compensate(step Service, undo CompensateFunc) Service {
	cp := &compensated{step: step, undo: undo}
	cp.self = cp
	return cp
}

type compensated struct {
	combinator
	step Service
	undo CompensateFunc
}

func (cp *compensated) Name() string {
	if isNil(cp.step) {
		return "compensate"
	}
	return cp.step.Name()
}

func (cp *compensated) build(b *builder, path string, in keys) (runner, keys, *Node) {
	if isNil(cp.step) {
		b.errorf("", "", nil, "compensate: nil step (at %s)", path)
		return seqRunner(nil), in, &Node{Kind: KindThen, Path: path}
	}
	if cp.undo == nil {
		b.errorf(cp.step.Name(), "", nil, "compensate: nil undo function")
	}
	r, out, n := b.compile(cp.step, path, in)
	return &undoRunner{runner: r, undo: cp.undo, name: cp.step.Name()}, out, n
}

// undoRunner is a saga step with its undo.
type undoRunner struct {
	runner
	name string
	undo CompensateFunc
}

// SagaGroup is the combinator returned by [Saga]. Its zero value is not
// usable: its Call returns an error wrapping [ErrNotBuilt], and a flow
// holding it does not build.
type SagaGroup struct {
	combinator
	steps   []Service
	timeout time.Duration
}

// DefaultCompensationTimeout bounds compensation that runs after the run's
// context was canceled.
const DefaultCompensationTimeout = 30 * time.Second

// Saga runs steps in sequence; when it ends without completing (a failure,
// a Stop, a Fatal, retries exhausted, cancellation) it undoes each step
// that completed, in reverse order, once, passing the cause. Steps get an
// undo from [Compensate], or by implementing [Compensator].
//
// When the run's context is canceled, compensation runs on a fresh context
// (values kept, cancellation dropped) bounded by [SagaGroup.CompensationTimeout].
// Undo errors never hide the cause: the saga returns the cause joined with
// every undo error.
func Saga(steps ...Service) *SagaGroup {
	s := &SagaGroup{steps: steps, timeout: DefaultCompensationTimeout}
	s.self = s
	return s
}

// CompensationTimeout bounds the compensation of a saga whose context was
// canceled (default [DefaultCompensationTimeout]).
func (s *SagaGroup) CompensationTimeout(d time.Duration) *SagaGroup { s.timeout = d; return s }

// Name implements Service.
func (s *SagaGroup) Name() string { return "saga" }

// Call implements Service: it runs the saga on its own, outside a flow,
// built on first use without a declared input (its keys are not checked;
// a build error is the error of the call). On a SagaGroup that [Saga] did not
// make it returns an error wrapping [ErrNotBuilt].
func (s *SagaGroup) Call(ctx context.Context, c *fc.Context) error {
	if s == nil || s.self == nil {
		return notBuilt("SagaGroup", "Saga")
	}
	return s.combinator.Call(ctx, c)
}

func (s *SagaGroup) build(b *builder, path string, in keys) (runner, keys, *Node) {
	p := path + "/saga"
	if len(s.steps) == 0 {
		b.errorf("saga", "", nil, "no steps")
	}
	if s.timeout <= 0 {
		b.errorf("saga", "", nil, "compensation timeout must be positive")
	}
	rs, out, nodes := b.sequence(s.steps, p, in, "saga")
	r := &sagaRunner{flow: b.flow, timeout: s.timeout}
	for i, x := range rs {
		st := sagaStep{runner: x}
		switch u := x.(type) {
		case *undoRunner:
			st.undo, st.name = u.undo, u.name
		case *leafRunner:
			if cp, ok := u.info.Service.(Compensator); ok {
				st.undo, st.name = cp.Compensate, u.info.Name
			}
		}
		if st.name == "" {
			st.name = nodes[i].Name
		}
		r.steps = append(r.steps, st)
	}
	return r, out, &Node{Kind: KindSaga, Name: "saga", Path: p, Children: nodes}
}

type sagaStep struct {
	runner
	name string
	undo CompensateFunc
}

type sagaRunner struct {
	flow    string
	steps   []sagaStep
	timeout time.Duration
}

func (s *sagaRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	for i, st := range s.steps {
		err := st.run(ctx, r, c)
		if err == nil {
			continue
		}
		if err == errThrough {
			return err // a test asked to stop here: not a failure
		}
		return s.compensate(ctx, c, s.steps[:i], err)
	}
	return nil
}

// compensate undoes done steps in reverse order and joins their errors to
// the cause.
func (s *sagaRunner) compensate(ctx context.Context, c *fc.Context, done []sagaStep, cause error) error {
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
	}
	errs := []error{cause}
	for i := len(done) - 1; i >= 0; i-- {
		st := done[i]
		if st.undo == nil {
			continue
		}
		if err := guard(func() error { return st.undo(ctx, c, cause) }); err != nil {
			errs = append(errs, &StepError{Flow: s.flow, Step: st.name, Err: fmt.Errorf("compensate: %w", err)})
		}
	}
	if len(errs) == 1 {
		return cause
	}
	return errors.Join(errs...)
}

// Compensate implements [Compensator] for a named service whose inner
// service can compensate.
func (n *named) Compensate(ctx context.Context, c *fc.Context, cause error) error {
	if cp, ok := n.Service.(Compensator); ok {
		return cp.Compensate(ctx, c, cause)
	}
	return nil
}

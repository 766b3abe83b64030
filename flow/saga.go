package flow

import (
	"context"
	"fmt"
	"sync"

	"github.com/svcflow/svcflow/branch"
	"sync/atomic"
	"time"

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
	at := b.fork()
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
		b.choose(at, gname)
		rs, out, nodes := b.sequence(cd.steps, gp, in.clone(), gname)
		b.unchoose()
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

// Compensate returns step with an undo: when a [Saga] enclosing it does
// not complete, undo runs if step had completed. step may be any service,
// including a combinator: then the undo covers it as a whole, and runs
// only if a step inside it ran (a [When] whose condition did not hold
// completed nothing, so it is not undone).
//
// The Compensate may sit at any depth under the saga: inside [When],
// [Unless], [Then], [Fork], [Select], [First], [Each] (one undo per
// element that completed, given the element's context), [All] (given the
// branch's context), wrapped in [Named], [Retry] or [Timeout]. A
// Compensate that no saga of the same flow encloses is a build error: it
// would never run. A flow nested in a saga's step list that has a saga of
// its own hands the steps its saga completed to the enclosing saga.
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
	name := cp.step.Name()
	if cp.undo == nil {
		b.errorf(name, "", nil, "compensate: nil undo function")
	}
	if b.sagas == 0 {
		b.errorf(name, "", nil, "compensate: no saga encloses this step (at %s), so its undo would never run; put it under flow.Saga", path)
	}
	leaf := isLeaf(cp.step)
	saved := b.undone
	if leaf {
		b.undone = true // this undo replaces a Compensator's own
	} else {
		b.scopes++
	}
	r, out, n := b.compile(cp.step, path, in)
	if leaf {
		b.undone = saved
	} else {
		b.scopes--
	}
	return &undoRunner{runner: r, undo: cp.undo, name: name, path: path + "/" + name, leaf: leaf}, out, n
}

// isLeaf reports whether svc builds as one step (not a combinator), seen
// through Named, Retry and Timeout.
func isLeaf(svc Service) bool {
	for {
		switch s := svc.(type) {
		case *setting:
			if isNil(s.step) {
				return false
			}
			svc = s.step
		case *named:
			svc = s.Service
		case node:
			return false
		default:
			return true
		}
	}
}

// compensatorOf returns the undo of a service that implements
// [Compensator] itself, seen through Named and replacement stubs.
func compensatorOf(svc Service) (CompensateFunc, bool) {
	for {
		switch s := svc.(type) {
		case *named:
			svc = s.Service
		case *stubbed:
			svc = s.Service
		case Compensator:
			return s.Compensate, true
		default:
			return nil, false
		}
	}
}

// wrapLeaf adds to the runner of a leaf step what a saga needs of it: its
// undo when the service is a [Compensator], and the mark that it ran when
// a [Compensate] of a combinator encloses it.
func (b *builder) wrapLeaf(svc Service, l *leafRunner) runner {
	var r runner = l
	if b.scopes > 0 {
		r = &markRunner{runner: r, name: l.info.Name}
	}
	if undo, ok := compensatorOf(svc); ok && !b.undone {
		r = &undoRunner{runner: r, undo: undo, name: l.info.Name, path: l.info.Path, leaf: true}
	}
	return r
}

// sagaFrame is what a saga puts in the context of the steps under it: its
// log of completed steps, and the scope of the innermost [Compensate] of a
// combinator, which learns whether any step inside it ran.
type sagaFrame struct {
	log   *sagaLog
	scope *atomic.Bool // nil outside a Compensate of a combinator
}

type sagaKey struct{}

func frameOf(ctx context.Context) *sagaFrame {
	f, _ := ctx.Value(sagaKey{}).(*sagaFrame)
	return f
}

// noSaga returns ctx without the saga frame, for what must not register
// with the saga: compensations themselves and taps.
func noSaga(ctx context.Context) context.Context {
	if frameOf(ctx) == nil {
		return ctx
	}
	return context.WithValue(ctx, sagaKey{}, (*sagaFrame)(nil))
}

// sagaLog is the record of one run of a saga: the steps with an undo that
// completed (or, with CompensateFailed, failed), in completion order.
// Steps of concurrent branches record through the same log, hence the
// lock.
type sagaLog struct {
	mu        sync.Mutex
	done      []undoEntry
	failedToo bool
	closed    bool // the saga ended: later records are refused
}

// undoEntry is one undo to run: the step, and the context it ran on (an
// element's or branch's snapshot under Each and All).
type undoEntry struct {
	name, path string
	undo       CompensateFunc
	c          *fc.Context
}

func (l *sagaLog) add(e ...undoEntry) {
	l.mu.Lock()
	if !l.closed {
		l.done = append(l.done, e...)
	}
	l.mu.Unlock()
}

// close ends the log and returns its entries.
func (l *sagaLog) close() []undoEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.done
}

// undoRunner is a step with its undo: when the step completes under a
// saga, the undo is recorded in the saga's log.
type undoRunner struct {
	runner
	name, path string
	undo       CompensateFunc
	leaf       bool // one step: it ran if it returned nil (and was not skipped)
}

func (u *undoRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	fr := frameOf(ctx)
	if fr == nil || fr.log == nil {
		return u.runner.run(ctx, r, c) // no saga: nothing to record
	}
	var ran *atomic.Bool
	skipped := false
	inner := ctx
	if u.leaf {
		skipped = r.skips(u.name)
	} else {
		ran = new(atomic.Bool)
		inner = context.WithValue(ctx, sagaKey{}, &sagaFrame{log: fr.log, scope: ran})
	}
	started := ctx.Err() == nil // a step canceled before it began did nothing
	err := u.runner.run(inner, r, c)
	completed := err == nil || err == errThrough // errThrough: it ran, the run ends after it
	switch {
	case skipped:
	case completed && (ran == nil || ran.Load()):
		fr.log.add(undoEntry{name: u.name, path: u.path, undo: u.undo, c: c})
		if fr.scope != nil {
			fr.scope.Store(true)
		}
	case !completed && fr.log.failedToo && started:
		fr.log.add(undoEntry{name: u.name, path: u.path, undo: u.undo, c: c})
	}
	return err
}

// markRunner runs a step under a [Compensate] of a combinator and tells
// that compensation the step ran.
type markRunner struct {
	runner
	name string
}

func (m *markRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	skipped := r.skips(m.name)
	err := m.runner.run(ctx, r, c)
	if (err == nil || err == errThrough) && !skipped {
		if fr := frameOf(ctx); fr != nil && fr.scope != nil {
			fr.scope.Store(true)
		}
	}
	return err
}

// skips reports whether the leaf named name will be skipped by this run
// ([From] has not reached its step yet, or [Through] ended the run).
func (r *runState) skips(name string) bool {
	if r == &plainRun {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done || (r.from != "" && r.from != name)
}

// SagaGroup is the combinator returned by [Saga]. Its zero value is not
// usable: its Call returns an error wrapping [ErrNotBuilt], and a flow
// holding it does not build.
type SagaGroup struct {
	combinator
	steps     []Service
	timeout   time.Duration
	failedToo bool
}

// DefaultCompensationTimeout bounds compensation that runs after the run's
// context was canceled.
const DefaultCompensationTimeout = 30 * time.Second

// Saga runs steps in sequence; when it ends without completing (a failure,
// a Stop, a Fatal, retries exhausted, cancellation) it undoes every step
// with an undo that completed under it, at any depth (see [Compensate]),
// in reverse completion order, each once, passing the cause. Steps get an
// undo from [Compensate], or by implementing [Compensator]. A step that
// did not run (a [When] whose condition did not hold, a case not taken) is
// never undone; neither, by default, is the step that failed (see
// [SagaGroup.CompensateFailed]). A step that completed several times (in
// [Each], [Until]) is undone once per time, each with its own context.
//
// A saga nested in another one that completes hands what it completed to
// the enclosing saga, which undoes it if it fails later; one that fails
// undoes its own steps before the error reaches the enclosing saga.
//
// In a durable run (WithJournal), a saga whose steps are journaled does not
// compensate when the run parks (waiting), or ends with a Fatal or a
// cancellation: the run resumes later after the steps it completed.
//
// When the run's context is canceled, compensation runs on a fresh context
// (values kept, cancellation dropped) bounded by [SagaGroup.CompensationTimeout].
// Undo errors never hide the cause: the saga returns the cause joined with
// every undo error. A traced run records each undo as a span named
// compensate(step).
func Saga(steps ...Service) *SagaGroup {
	s := &SagaGroup{steps: steps, timeout: DefaultCompensationTimeout}
	s.self = s
	return s
}

// CompensationTimeout bounds the compensation of a saga whose context was
// canceled (default [DefaultCompensationTimeout]).
func (s *SagaGroup) CompensationTimeout(d time.Duration) *SagaGroup { s.timeout = d; return s }

// CompensateFailed makes the saga undo the step that failed too, first,
// as the fulfillment framework's compensate(request, e) does for the
// failing transaction: a step that may have done part of its work before
// failing undoes that part itself. Every step with an undo that started
// and did not complete is undone: the failing one, and those of
// concurrent branches canceled by its failure.
func (s *SagaGroup) CompensateFailed() *SagaGroup { s.failedToo = true; return s }

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
	b.sagas++
	rs, out, nodes := b.sequence(s.steps, p, in, "saga")
	b.sagas--
	r := &sagaRunner{flow: b.flow, timeout: s.timeout, failedToo: s.failedToo, steps: seqRunner(rs)}
	return r, out, &Node{Kind: KindSaga, Name: "saga", Path: p, Children: nodes}
}

type sagaRunner struct {
	flow      string
	steps     seqRunner
	timeout   time.Duration
	failedToo bool
}

func (s *sagaRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	log := &sagaLog{failedToo: s.failedToo}
	err := s.steps.run(context.WithValue(ctx, sagaKey{}, &sagaFrame{log: log}), r, c)
	done := log.close()
	if err == nil || err == errThrough { // errThrough: a test asked to stop here, not a failure
		if fr := frameOf(ctx); fr != nil && fr.log != nil && len(done) > 0 {
			fr.log.add(done...) // an enclosing saga undoes them if it fails
			if fr.scope != nil {
				fr.scope.Store(true)
			}
		}
		return err
	}
	if r.journaled(ctx) && resumes(err) {
		// A durable run that parked, or that will run again after a
		// Fatal or a cancellation, resumes after its journaled steps:
		// they stay done.
		return err
	}
	return s.compensate(ctx, r, done, err)
}

// resumes reports whether a durable run that ended with err runs again
// from its journal: it parked (waiting), or its processor failed (fatal)
// or stopped (canceled).
func resumes(err error) bool {
	switch errors.KindOf(err) {
	case errors.KindWaiting, errors.KindFatal, errors.KindCanceled:
		return true
	}
	return false
}

// compensate undoes done steps in reverse order and joins their errors to
// the cause.
func (s *sagaRunner) compensate(ctx context.Context, r *runState, done []undoEntry, cause error) error {
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
	}
	ctx = noSaga(ctx)
	errs := []error{cause}
	for i := len(done) - 1; i >= 0; i-- {
		e := done[i]
		start := time.Now()
		err := guard(func() error { return e.undo(ctx, e.c, cause) })
		if err != nil {
			errs = append(errs, &StepError{Flow: s.flow, Step: e.name, Path: e.path, Err: fmt.Errorf("compensate: %w", err)})
		}
		if r.trace != nil {
			sp := Span{Name: "compensate(" + e.name + ")", Path: e.path + "/compensate", Start: start,
				Duration: time.Since(start), Attempts: 1, Outcome: errors.KindOf(err)}
			if err != nil {
				sp.Err = err.Error()
			}
			r.trace.add(sp)
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

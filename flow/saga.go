package flow

import (
	"context"
	"fmt"
	"strconv"
	"strings"
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
	return &undoRunner{runner: r, undo: cp.undo, name: name, path: path + "/" + name, leaf: leaf,
		key: b.undoKey(path+"/"+name, cp.undo)}, out, n
}

// undoKey registers undo under a key of its own in the flow, made of the
// step's path, by which durable runs journal it (see [Undo]).
func (b *builder) undoKey(path string, undo CompensateFunc) string {
	key := b.unique("undo:" + path)
	if b.undos == nil {
		b.undos = map[string]CompensateFunc{}
	}
	b.undos[key] = undo
	return key
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
		r = &undoRunner{runner: r, undo: undo, name: l.info.Name, path: l.info.Path, leaf: true,
			key: b.undoKey(l.info.Path, undo)}
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
	closed    bool     // the saga ended: later records are refused
	parent    *sagaLog // the log of a unit of a durable run: what it records goes to parent too
}

// undoEntry is one undo to run: the step, and the context it ran on (an
// element's or branch's snapshot under Each and All).
type undoEntry struct {
	name, path string
	key        string // the undo's key in its flow (see builder.undoKey)
	undo       CompensateFunc
	c          *fc.Context
}

func (l *sagaLog) add(e ...undoEntry) {
	l.mu.Lock()
	if !l.closed {
		l.done = append(l.done, e...)
	}
	l.mu.Unlock()
	if l.parent != nil {
		l.parent.add(e...)
	}
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
	key        string
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
		fr.log.add(undoEntry{name: u.name, path: u.path, key: u.key, undo: u.undo, c: c})
		if fr.scope != nil {
			fr.scope.Store(true)
		}
	case !completed && fr.log.failedToo && started:
		fr.log.add(undoEntry{name: u.name, path: u.path, key: u.key, undo: u.undo, c: c})
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
// cancellation: the run resumes later after the steps it completed, and
// undoes those (elements, branches and loops resumed whole included) if
// it fails then. When it compensates, it journals the plan first (the
// cause, and each undo with its context) and each undo when it ends (see
// [Unit.Undo]). A run of the message again (after a crash during the
// compensation, a redelivery, a replay that resumes) finds the plan: the
// saga's outcome is settled, so its steps do not run; the undos not
// journaled yet run (one that a crash interrupted runs again), the others
// are traced errors.KindResumed, and the saga ends with the cause rebuilt
// from the journal (a Stop with its reason; any other cause as a failure
// with its text) joined with the undo errors. Undos that a nested flow's
// saga handed up are not journaled: they run only in the run that
// compensates.
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
	p := b.unique(path + "/saga")
	if len(s.steps) == 0 {
		b.errorf("saga", "", nil, "no steps")
	}
	if s.timeout <= 0 {
		b.errorf("saga", "", nil, "compensation timeout must be positive")
	}
	b.sagas++
	rs, out, nodes := b.sequence(s.steps, p, in, "saga")
	b.sagas--
	r := &sagaRunner{flow: b.flow, path: p, timeout: s.timeout, failedToo: s.failedToo, steps: seqRunner(rs)}
	return r, out, &Node{Kind: KindSaga, Name: "saga", Path: p, Children: nodes}
}

type sagaRunner struct {
	flow      string
	path      string // the node's path: a durable run journals its compensation under it
	steps     seqRunner
	timeout   time.Duration
	failedToo bool
}

func (s *sagaRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	durable := r.journaled(ctx)
	var trk fc.Tracking
	if durable {
		// A saga that began compensating in an earlier run has its outcome
		// settled: it never runs forward again; it finishes compensating.
		plan, err := r.journal.Completed(ctx, s.planPath(ctx))
		if err != nil {
			return &StepError{Flow: s.flow, Step: "saga", Path: s.path, Err: err}
		}
		if plan != nil {
			return s.settle(ctx, r, c, plan)
		}
		trk = c.Track()
	}
	log := &sagaLog{failedToo: s.failedToo}
	err := s.steps.run(context.WithValue(ctx, sagaKey{}, &sagaFrame{log: log}), r, c)
	var keys []string
	if durable {
		keys = trk.Stop(nil)
	}
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
	if !durable {
		return s.compensate(ctx, r, done, err, "", nil)
	}
	if resumes(err) {
		// A durable run that parked, or that will run again after a
		// Fatal or a cancellation, resumes after its journaled steps:
		// they stay done.
		return err
	}
	// The plan of the compensation is journaled before the first undo:
	// a run of the message again finishes it instead of running forward.
	plan := r.unit(s.planPath(ctx), s.path, "saga", time.Now())
	plan.Duration = 0
	plan.Outcome, plan.Err = errors.KindFailed, err.Error()
	if se, ok := errors.AsType[*errors.StopError](err); ok {
		plan.Outcome, plan.Err = errors.KindStop, se.Reason
	}
	plan.Undo = undoRecords(done, c, c.View(), r.undos)
	if jerr := r.complete(ctx, plan, c, keys); jerr != nil {
		// Without its plan, a crash would leave the compensation unknown:
		// compensate now all the same, and report the journal's error.
		return errors.Join(s.compensate(ctx, r, done, err, "", nil), &StepError{Flow: s.flow, Step: "saga", Path: s.path, Err: jerr})
	}
	// An undo of another flow is not in the plan: it runs unjournaled.
	slots := make([]int, len(done))
	n := 0
	for i, e := range done {
		slots[i] = -1
		if _, ok := r.undos[e.key]; ok {
			slots[i], n = n, n+1
		}
	}
	return s.compensate(ctx, r, done, err, plan.Path, slots)
}

// planPath is the unit path of the plan of the saga's compensation in a
// durable run; the undo of entry i of the plan is journaled under
// undoPath.
func (s *sagaRunner) planPath(ctx context.Context) string {
	return qualify(ctx, s.path) + "[compensating]"
}

func undoPath(plan string, i int) string {
	return strings.TrimSuffix(plan, "[compensating]") + "[undo " + strconv.Itoa(i) + "]"
}

// settle finishes the compensation of a saga that an earlier run began
// (its plan was journaled): the saga's writes are restored, the undos
// that completed are not run again, the others run, and the saga ends
// with the cause it ended with then.
func (s *sagaRunner) settle(ctx context.Context, r *runState, c *fc.Context, plan *Unit) error {
	_ = r.resume(plan, c) // the saga's writes; its error is the cause, made below
	cause := errors.New(plan.Err)
	if plan.Outcome == errors.KindStop {
		cause = errors.Stop(plan.Err)
	}
	done, err := undoEntries(plan.Undo, c, r.undos)
	if err != nil {
		return errors.Join(cause, &StepError{Flow: s.flow, Step: "saga", Path: s.path, Err: err})
	}
	return s.compensate(ctx, r, done, cause, plan.Path, nil)
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
// the cause. With plan (the path of the journaled plan of a durable run)
// each undo is journaled when it ends, at its position in the plan
// (slots[i] for done[i], -1: not in the plan; nil slots: i), and one
// journaled by an earlier run is not run again.
func (s *sagaRunner) compensate(ctx context.Context, r *runState, done []undoEntry, cause error, plan string, slots []int) error {
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
	}
	ctx = noSaga(ctx)
	errs := []error{cause}
	undoErr := func(e undoEntry, err error) {
		errs = append(errs, &StepError{Flow: s.flow, Step: e.name, Path: e.path, Err: fmt.Errorf("compensate: %w", err)})
	}
	for i := len(done) - 1; i >= 0; i-- {
		e := done[i]
		slot := i
		if slots != nil {
			slot = slots[i]
		}
		journaled := plan != "" && slot >= 0
		if journaled {
			u, err := r.journal.Completed(ctx, undoPath(plan, slot))
			if err != nil {
				undoErr(e, fmt.Errorf("journal: %w", err))
				break // what is left is compensated when the message runs again
			}
			if u != nil {
				if u.Outcome != errors.KindOK {
					undoErr(e, errors.New(u.Err))
				}
				if r.trace != nil {
					r.trace.add(Span{Name: u.Name, Path: e.path + "/compensate", Start: u.Start, Duration: u.Duration,
						Attempts: 1, Outcome: errors.KindResumed})
				}
				continue
			}
		}
		start := time.Now()
		err := guard(func() error { return e.undo(ctx, e.c, cause) })
		if err != nil {
			undoErr(e, err)
		}
		if r.trace != nil {
			sp := Span{Name: "compensate(" + e.name + ")", Path: e.path + "/compensate", Start: start,
				Duration: time.Since(start), Attempts: 1, Outcome: errors.KindOf(err)}
			if err != nil {
				sp.Err = err.Error()
			}
			r.trace.add(sp)
		}
		if journaled {
			u := &Unit{Path: undoPath(plan, slot), Name: "compensate(" + e.name + ")", Fingerprint: r.fps[s.path],
				Start: start, Duration: time.Since(start), Attempts: 1}
			if err != nil {
				u.Outcome, u.Err = errors.KindFailed, err.Error()
			}
			if jerr := r.journal.Complete(ctx, u); jerr != nil {
				undoErr(e, fmt.Errorf("journal: %w", jerr))
				break
			}
		}
	}
	if plan != "" {
		// The last undo's record is durable before the run ends.
		if _, err := r.journal.Completed(ctx, plan); err != nil {
			errs = append(errs, &StepError{Flow: s.flow, Step: "saga", Path: s.path, Err: fmt.Errorf("journal: %w", err)})
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

package flow

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/provide"
)

// Builder collects a flow's steps and settings; [Builder.Build] checks them
// and returns the runnable [Flow]. A Builder is not safe for concurrent use.
type Builder struct {
	replace map[string]Service
	onTap   func(ctx context.Context, step string, err error)
	name    string
	steps   []Service
	input   []fc.KeyInfo
	policy  *errors.Policy
	mw      []Middleware
	// per request: middleware chosen by a selector, and providers
	sel       *mwSelect
	providers *provide.Container
}

// New starts a flow of the given steps, run in sequence.
//
//	f, err := flow.New("checkout", validate, price, notify).
//		Input(Items, Customer).
//		Build()
func New(name string, steps ...Service) *Builder {
	return &Builder{name: name, steps: steps}
}

// Input declares the keys a run's input provides. Typed keys are checked
// against what steps need when the flow is built, and converted (JSON
// numbers to int, ...) when a run starts; a required input that is missing
// or of the wrong type ends the run with a Stop error before any step.
func (b *Builder) Input(keys ...fc.Info) *Builder {
	for _, k := range keys {
		if k != nil {
			b.input = append(b.input, k.Info())
		}
	}
	return b
}

// Retry sets the default retry policy of the flow's steps (a step wrapped in
// [Retry] keeps its own). Without one, [errors.DefaultPolicy] applies.
func (b *Builder) Retry(p errors.Policy) *Builder {
	b.policy = &p
	return b
}

// Use adds middleware around every step of the flow; the first given is the
// outermost. Nested flows keep their own middleware: to their parent they
// are one step.
func (b *Builder) Use(mw ...Middleware) *Builder {
	b.mw = append(b.mw, mw...)
	return b
}

// OnTapError sets the hook that receives the errors (and recovered panics)
// of the flow's [Tap] steps, which have no caller to return them to. By
// default they are logged with slog.Default.
func (b *Builder) OnTapError(fn func(ctx context.Context, step string, err error)) *Builder {
	b.onTap = fn
	return b
}

// Replace swaps the step named name for svc when the flow is built, keeping
// the step's name and, unless svc declares its own, its contract: the way
// tests stub a step (a payment gateway, a clock) and assert on what it
// received. Replacing a name that is not a step is a build error.
func (b *Builder) Replace(name string, svc Service) *Builder {
	if b.replace == nil {
		b.replace = map[string]Service{}
	}
	b.replace[name] = svc
	return b
}

// Build checks the flow and returns it ready to run. Every problem found is
// reported, joined into one error of [*BuildError]s: empty or nil steps,
// duplicate step names, a key that a step or expression needs but that is
// neither in the Input nor provided by an earlier step on every path, a
// type disagreement between producer and consumer, a bad expression.
func (b *Builder) Build() (*Flow, error) {
	bl := &builder{flow: b.name, policy: errors.DefaultPolicy(), names: map[string]string{}, replace: b.replace,
		taps: &taps{onError: b.onTap}}
	if b.name == "" {
		bl.errorf("", "", nil, "flow has no name")
	}
	if b.policy != nil {
		if err := b.policy.Validate(); err != nil {
			bl.errorf("", "", err, "bad retry policy")
		}
		bl.policy = *b.policy
	}
	for _, m := range b.mw {
		if m == nil {
			bl.errorf("", "", nil, "nil middleware")
		}
	}
	bl.mw = b.mw
	bl.providers = b.providers
	x := b.extras(bl)
	if len(b.steps) == 0 {
		bl.errorf("", "", nil, "no steps")
	}
	in := keys{}
	for _, k := range b.input {
		if k.Name == "" {
			bl.errorf("", "", nil, "input key with an empty name")
			continue
		}
		in[k.Name] = origin{typ: k.Type, optional: k.Optional}
	}
	rs, out, nodes := bl.sequence(b.steps, b.name, in, "flow")
	for _, name := range slices.Sorted(maps.Keys(b.replace)) {
		if _, ok := bl.names[name]; !ok {
			bl.errorf(name, "", nil, "cannot replace: no step has this name")
		}
		if isNil(b.replace[name]) {
			bl.errorf(name, "", nil, "cannot replace with a nil service")
		}
	}
	if len(bl.errs) > 0 {
		return nil, errors.Join(bl.errs...)
	}
	f := &Flow{
		name:   b.name,
		root:   seqRunner(rs),
		input:  b.input,
		leaves: bl.leaves,
		names:  bl.names,
		taps:   bl.taps,
		steps:  bl.steps,
		graph:  &Node{Kind: KindFlow, Name: b.name, Path: b.name, Children: nodes},
		x:      x,
		undos:  bl.undos,
	}
	f.fps = fingerprints(f.graph)
	f.contract.Needs = append(f.contract.Needs, b.input...)
	if len(bl.diverts) > 0 && out != nil {
		// A run a Divert ended provides only what was known there.
		out = intersect(append([]keys{out}, bl.diverts...))
	}
	for _, name := range slices.Sorted(maps.Keys(out)) {
		if o := out[name]; o.by != "" {
			f.contract.Provides = append(f.contract.Provides, fc.KeyInfo{Name: name, Type: o.typ})
		}
	}
	return f, nil
}

// MustBuild is Build for flows declared at package level: it panics on a
// build error.
func (b *Builder) MustBuild() *Flow {
	f, err := b.Build()
	if err != nil {
		panic(err)
	}
	return f
}

// Flow is a built, checked flow. It is safe for concurrent use: each run
// has its own context. A Flow is itself a [Service], so flows nest; to its
// parent a nested flow is one step whose contract is its declared input
// and the keys it provides on every path.
//
// Only [Builder.Build] makes a Flow. The methods of a zero Flow (or a nil
// *Flow) run nothing: those that return an error return one wrapping
// [ErrNotBuilt], the others an empty value; a flow holding one as a step
// does not build.
type Flow struct {
	name     string
	root     seqRunner
	input    []fc.KeyInfo
	contract Contract
	leaves   []Service
	names    map[string]string
	graph    *Node
	taps     *taps
	x        *runExtras        // per-run selection and scope; nil: none
	fps      map[string]string // structural fingerprints by node path ("": the flow)
	steps    map[string]*StepInfo
	undos    map[string]CompensateFunc // the undos of its sagas by key, for durable runs
}

// ErrNotBuilt is wrapped by the errors of the methods of a value that its
// constructor did not make: a zero or nil [Flow] (made by
// [Builder.Build]), a zero [Group], [Iter], [Loop] or [SagaGroup] (made by
// [All], [Each], [Until] and [Saga]).
var ErrNotBuilt = errors.New("not built")

// errNotBuilt is the error of a method of f when f was not built, else nil.
func (f *Flow) errNotBuilt() error {
	switch {
	case f == nil:
		return fmt.Errorf("flow: %w: a nil *Flow; make one with flow.New(...).Build()", ErrNotBuilt)
	case f.taps == nil: // Build always sets it
		return fmt.Errorf("flow: %w: a zero Flow; make one with flow.New(...).Build()", ErrNotBuilt)
	}
	return nil
}

// buildErr makes a flow that was not built a build error of a flow that
// holds it as a step.
func (f *Flow) buildErr() error { return f.errNotBuilt() }

// Name returns the flow's name ("" for a Flow that was not built).
func (f *Flow) Name() string {
	if f == nil {
		return ""
	}
	return f.name
}

// Contract returns what the flow needs (its declared input) and provides
// (nothing for a Flow that was not built).
func (f *Flow) Contract() Contract {
	if f == nil {
		return Contract{}
	}
	return f.contract
}

// Graph returns the structure of the flow: its steps and branches (nil for
// a Flow that was not built; a nil *Node draws an empty graph).
func (f *Flow) Graph() *Node {
	if f == nil {
		return nil
	}
	return f.graph
}

// plainRun is the state of every run without options.
var plainRun runState

// RunOption configures one run.
type RunOption func(*runState)

// Run runs the flow on a new context holding a copy of input (nil: empty)
// and returns the context as the run left it, also when the run fails: a
// Stop returns the partial context and the Stop error.
//
// The error names the failing step ([*StepError]) and wraps the cause, so
// errors.Is(err, errors.ErrStop) and friends classify it.
func (f *Flow) Run(ctx context.Context, input map[string]any, opts ...RunOption) (*fc.Context, error) {
	c := fc.FromMap(input)
	return c, f.RunContext(ctx, c, opts...)
}

// RunContext runs the flow on c, which it reads and writes.
func (f *Flow) RunContext(ctx context.Context, c *fc.Context, opts ...RunOption) error {
	if f == nil || f.taps == nil { // checked here: errNotBuilt is not inlined
		return f.errNotBuilt()
	}
	if c == nil {
		return fmt.Errorf("flow %q: nil context", f.name)
	}
	r := &plainRun // shared and never modified: a plain run allocates nothing
	if len(opts) > 0 {
		r = &runState{}
		for _, o := range opts {
			o(r)
		}
	}
	for _, name := range []string{r.from, r.through} {
		if _, ok := f.names[name]; name != "" && !ok {
			return fmt.Errorf("flow %q: no step named %q", f.name, name)
		}
	}
	if r.journal != nil {
		r.fps, r.undos = f.fps, f.undos
	}
	if r.trace != nil {
		r.trace.begin(f)
	}
	err := f.checkInput(c)
	if err == nil && f.x != nil {
		var end func(context.Context)
		ctx, end, err = f.x.begin(ctx, r, c)
		if end != nil {
			defer end(ctx)
		}
	}
	if err == nil {
		err = f.root.run(ctx, r, c)
	}
	if err == errThrough {
		err = nil
	}
	if err == nil && r.from != "" {
		err = fmt.Errorf("flow %q: step %q was never reached", f.name, r.from)
	}
	if r.trace != nil {
		r.trace.end(err)
	}
	return err
}

// From starts the run at the named step: every step before it in execution
// order is skipped (conditions and fork keys are still evaluated on the
// context). Channels use it to inject a message at a step; tests use it to
// exercise the tail of a flow. A name that is not a step of the flow, or a
// step the run never reaches, is an error.
func From(step string) RunOption { return func(r *runState) { r.from = step } }

// Through ends the run successfully right after the named step, leaving the
// context as that step left it: build a test's context with the flow's own
// steps, then assert on it.
func Through(step string) RunOption { return func(r *runState) { r.through = step } }

// Call implements [Service]: it runs the flow on c.
func (f *Flow) Call(ctx context.Context, c *fc.Context) error { return f.RunContext(ctx, c) }

// checkInput verifies the declared input and converts typed values in
// place, so the context matches the schema the flow was checked against.
func (f *Flow) checkInput(c *fc.Context) error {
	for _, k := range f.input {
		v, ok := c.Get(k.Name)
		if !ok {
			if k.Optional {
				continue
			}
			return &StepError{Flow: f.name, Step: "input", Err: errors.Stopf("input %q: missing", k.Name)}
		}
		if k.Type == nil || (v != nil && reflect.TypeOf(v) == k.Type) {
			continue
		}
		cv, err := fc.ConvertValue(v, k.Type)
		if err != nil {
			return &StepError{Flow: f.name, Step: "input", Err: errors.Stopf("input %q: want %s, got %T: %w", k.Name, k.Type, v, err)}
		}
		c.Set(k.Name, cv.Interface())
	}
	return nil
}

// Init calls Init on every step that implements [Initializer], in order.
// On the first error it closes the steps already initialised and returns
// the error naming the step.
func (f *Flow) Init(ctx context.Context) error {
	if err := f.errNotBuilt(); err != nil {
		return err
	}
	for i, s := range f.leaves {
		in, ok := s.(Initializer)
		if !ok {
			continue
		}
		if err := in.Init(ctx); err != nil {
			closeErr := closeAll(ctx, f.leaves[:i])
			return errors.Join(&StepError{Flow: f.name, Step: s.Name(), Err: fmt.Errorf("init: %w", err)}, closeErr)
		}
	}
	return nil
}

// Close waits for running taps (see [Flow.Wait]), then calls Close on every
// step that implements [Closer], in reverse order, and returns all errors
// joined.
func (f *Flow) Close(ctx context.Context) error {
	if err := f.errNotBuilt(); err != nil {
		return err
	}
	err := f.Wait(ctx)
	return errors.Join(err, closeAll(ctx, f.leaves))
}

// Wait blocks until every [Tap] started by runs of the flow (and of flows
// nested in it) has finished, or ctx is done. Call it on shutdown, after
// the last run, so no goroutine outlives the flow.
func (f *Flow) Wait(ctx context.Context) error {
	if err := f.errNotBuilt(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		f.taps.wg.Wait()
		for _, s := range f.leaves {
			if w, ok := s.(interface{ Wait(context.Context) error }); ok {
				_ = w.Wait(ctx)
			}
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		select {
		case <-done: // finished too: no need to report the deadline
			return nil
		default:
			return fmt.Errorf("flow %q: waiting for taps: %w", f.name, ctx.Err())
		}
	}
}

func closeAll(ctx context.Context, leaves []Service) error {
	var errs []error
	for i := len(leaves) - 1; i >= 0; i-- {
		if cl, ok := leaves[i].(Closer); ok {
			if err := cl.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("step %q: close: %w", leaves[i].Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// Node kinds of [Node].
const (
	KindFlow   = "flow"
	KindStep   = "step"
	KindThen   = "then"
	KindFork   = "fork"
	KindCase   = "case"
	KindWhen   = "when"
	KindUnless = "unless"
	KindAll    = "all"    // children run concurrently
	KindTap    = "tap"    // child runs beside the flow, result discarded
	KindEach   = "each"   // children run once per element of Label's key
	KindUntil  = "until"  // children repeat until Label holds
	KindFirst  = "first"  // the first guard child whose Label holds runs
	KindGuard  = "guard"  // a candidate of first: Label is its condition
	KindSaga   = "saga"   // children compensated in reverse on failure
	KindDivert = "divert" // children run if Label holds, then the flow ends
	KindShape  = "shape"  // a combinator under Passthrough, StoreInputAs or StoreOutputAs: Name says which
)

// Node describes one element of a built flow, for graphs and tools.
type Node struct {
	Kind     string       // one of the Kind constants
	Name     string       // the step's name, or the combinator's
	Path     string       // where it sits in the flow
	Label    string       // the expression of a fork or condition, the value of a case
	Needs    []fc.KeyInfo // a step's contract
	Provides []fc.KeyInfo // a step's contract
	Removes  []string     // keys a step's contract deletes
	Children []*Node      // the steps and branches inside, in order
}

package flow

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/svcflow/svcflow/branch"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// combinator is the part every combinator shares: a name and a Call that
// builds the combinator on first use when it runs outside a flow.
type combinator struct {
	self  node
	once  sync.Once
	built runner
}

// Call runs the combinator on its own, outside a flow: it is built on first
// use without a declared input, so keys are not checked and build errors
// surface as the error of the call. Put combinators in a flow ([New]) to
// have them checked before any run.
func (cb *combinator) Call(ctx context.Context, c *fc.Context) error {
	cb.once.Do(func() {
		b := &builder{flow: cb.self.Name(), policy: errors.DefaultPolicy(), names: map[string]string{}, taps: &taps{}}
		r, _, _ := cb.self.build(b, "", nil)
		if len(b.errs) > 0 {
			cb.built = failRunner{errors.Join(b.errs...)}
			return
		}
		cb.built = r
	})
	err := cb.built.run(ctx, &runState{}, c)
	if err == errThrough { // a Divert ended it: done
		err = nil
	}
	return err
}

// notBuilt is the error of Call on a combinator of type typ that its
// constructor did not make.
func notBuilt(typ, constructor string) error {
	return fmt.Errorf("flow: %w: a zero %s; make one with %s", ErrNotBuilt, typ, constructor)
}

type failRunner struct{ err error }

func (f failRunner) run(context.Context, *runState, *fc.Context) error { return f.err }

// ---- Then ----

// Then returns the steps as one sequence: each step runs after the previous
// one succeeds and sees what earlier steps wrote. The first error ends the
// sequence.
func Then(steps ...Service) Service {
	t := &then{steps: steps}
	t.self = t
	return t
}

type then struct {
	combinator
	steps []Service
}

func (t *then) Name() string { return "then" }

func (t *then) build(b *builder, path string, in keys) (runner, keys, *Node) {
	if len(t.steps) == 0 {
		b.errorf("", "", nil, "then: no steps (at %s)", path)
	}
	rs, out, nodes := b.sequence(t.steps, path, in, "then")
	return seqRunner(rs), out, &Node{Kind: KindThen, Name: "then", Path: path, Children: nodes}
}

type seqRunner []runner

func (s seqRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	for _, x := range s {
		if err := x.run(ctx, r, c); err != nil {
			return err
		}
	}
	return nil
}

// ---- Fork ----

// Case is one branch of a [Fork]: the steps to run when the key's value
// matches. Make one with [On] or [Default].
type Case struct {
	value     string
	isDefault bool
	steps     []Service
}

// On returns the case of a [Fork] taken when the key's value, in its string
// form, equals value ("gold", "true", "3", "2.5").
func On(value string, steps ...Service) Case { return Case{value: value, steps: steps} }

// Default returns the case of a [Fork] taken when no other case matches.
func Default(steps ...Service) Case { return Case{isDefault: true, steps: steps} }

// Fork evaluates a branch key and runs the steps of the one matching case.
//
// key is a context key ("tier") or an expr expression over the context
// ("customer.tier", "total > 100 ? 'big' : 'small'"), compiled when the flow
// is built and checked to read only keys known at that point. The value is
// matched in its string form: strings as they are, booleans as
// "true"/"false", numbers in their shortest form (3, 2.5), nil as "nil".
//
// When no case matches and there is no [Default], the run ends with a Stop
// error that names the key and the value. After a fork, the keys known to
// later steps are those provided on every path through it.
func Fork(key string, cases ...Case) Service {
	f := &fork{key: key, cases: cases}
	f.self = f
	return f
}

// Select runs the steps of the case whose value pick returns: the
// fulfillment framework's transactions(request), a list of steps chosen
// per request. Every case is built and checked when the flow is, so a
// run only chooses; a value no case has, with no [Default], ends the run
// with a Stop naming it, and an error from pick (or a panic) is the error
// of the step select(name). A traced run records the choice as a span
// named select(name) whose Selected is the value.
//
//	flow.Saga(flow.Select("transactions", byProduct,
//		flow.On("new", reserve, charge, ship),
//		flow.On("renewal", charge)))
//
// After it, later steps know the keys every case provides, as after [Fork].
func Select(name string, pick func(ctx context.Context, c *fc.Context) (string, error), cases ...Case) Service {
	f := &fork{key: name, pick: pick, isSelect: true, cases: cases}
	f.self = f
	return f
}

type fork struct {
	combinator
	key      string
	pick     func(ctx context.Context, c *fc.Context) (string, error)
	isSelect bool
	cases    []Case
}

func (f *fork) Name() string {
	if f.isSelect {
		return "select(" + f.key + ")"
	}
	return "fork(" + f.key + ")"
}

func (f *fork) build(b *builder, path string, in keys) (runner, keys, *Node) {
	name := f.Name()
	p := path + "/" + name
	r := &forkRunner{flow: b.flow, name: name, path: p, key: f.key, index: map[string]int{}, pick: f.pick}
	if !f.isSelect {
		r.ident, r.expr = b.expr(name, f.key, in, false)
	} else {
		if f.key == "" {
			b.errorf(name, "", nil, "Select: no name")
		}
		if f.pick == nil {
			b.errorf(name, "", nil, "Select: nil function")
		}
	}
	n := &Node{Kind: KindFork, Name: name, Path: p, Label: f.key}
	if f.isSelect {
		n.Label = name // no expression: drawn as select(name)
	}
	var outs []keys
	hasDefault := false
	at := b.fork()
	for _, cs := range f.cases {
		label := cs.value
		if cs.isDefault {
			if hasDefault {
				b.errorf(name, "", nil, "more than one default case")
			}
			hasDefault = true
			label = "default"
		} else if _, dup := r.index[cs.value]; dup {
			b.errorf(name, "", nil, "duplicate case %q", cs.value)
		}
		if len(cs.steps) == 0 {
			b.errorf(name, "", nil, "case %q has no steps", label)
		}
		cp := p + "/" + label
		b.choose(at, label)
		rs, out, nodes := b.sequence(cs.steps, cp, in.clone(), "case "+strconv.Quote(label))
		b.unchoose()
		outs = append(outs, out)
		n.Children = append(n.Children, &Node{Kind: KindCase, Name: label, Path: cp, Label: label, Children: nodes})
		if cs.isDefault {
			r.def = seqRunner(rs)
		} else {
			r.index[cs.value] = len(r.cases)
			r.cases = append(r.cases, seqRunner(rs))
		}
	}
	if len(f.cases) == 0 {
		b.errorf(name, "", nil, "no cases")
	}
	if in == nil {
		return r, nil, n
	}
	return r, intersect(outs), n
}

// expr prepares a branch key or condition for a step: a plain identifier
// is read from the context directly; anything else is compiled against the
// known keys. in == nil means unchecked (a combinator run outside a flow).
func (b *builder) expr(step, src string, in keys, cond bool) (ident string, e *branch.Expr) {
	e, err := branch.Parse(src)
	if err != nil {
		b.errorf(step, "", err, "bad expression")
		return "", nil
	}
	if in != nil {
		unknown := false
		for _, id := range e.Idents() {
			if _, ok := in[id]; !ok {
				unknown = true
				b.errorf(step, id, nil, "read by expression %q but not provided: declare it in the flow's Input or have an earlier step provide it on every path", src)
			}
		}
		if unknown {
			return "", nil // reported; compiling would only repeat it
		}
	}
	if e.IsIdent() && !cond {
		return src, nil
	}
	var opts []branch.Option
	if cond {
		opts = append(opts, branch.AsBool())
	}
	var schema map[string]reflect.Type
	if in != nil {
		schema = in.types()
	} else { // unchecked: every key the expression reads may have any type
		schema = map[string]reflect.Type{}
		for _, id := range e.Idents() {
			schema[id] = nil
		}
	}
	if err := e.Compile(schema, opts...); err != nil {
		b.errorf(step, "", err, "bad expression")
		return "", nil
	}
	return "", e
}

type forkRunner struct {
	flow, name, key string
	path            string
	pick            func(ctx context.Context, c *fc.Context) (string, error)
	ident           string
	expr            *branch.Expr
	index           map[string]int
	cases           []seqRunner
	def             seqRunner
}

func (f *forkRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	if f.pick != nil {
		return f.selected(ctx, r, c)
	}
	var v any
	if f.expr != nil {
		var err error
		env := c.View()
		if v, err = f.expr.Eval(env); err != nil {
			return &StepError{Flow: f.flow, Step: f.name, Err: f.expr.DataError("fork key", env, err)}
		}
	} else {
		v = c.View()[f.ident]
	}
	s := caseString(v)
	if i, ok := f.index[s]; ok {
		return f.cases[i].run(ctx, r, c)
	}
	if f.def != nil {
		return f.def.run(ctx, r, c)
	}
	return &StepError{Flow: f.flow, Step: f.name,
		Err: errors.Stopf("fork on %q: no case for value %q and no default", f.key, s)}
}

// selected runs the case a Select's function picks.
func (f *forkRunner) selected(ctx context.Context, r *runState, c *fc.Context) error {
	start := time.Now()
	var s string
	err := guard(func() (err error) { s, err = f.pick(ctx, c); return err })
	body := f.def
	if i, ok := f.index[s]; ok {
		body = f.cases[i]
	}
	if err == nil && body == nil {
		err = errors.Stopf("select %q: no case %q and no default", f.key, s)
	}
	if r.trace != nil {
		sp := Span{Name: f.name, Path: f.path, Start: start, Duration: time.Since(start), Attempts: 1, Outcome: errors.KindOf(err), Selected: s}
		if err != nil {
			sp.Err = err.Error()
		}
		r.trace.add(sp)
	}
	if err != nil {
		return &StepError{Flow: f.flow, Step: f.name, Path: f.path, Err: err}
	}
	return body.run(ctx, r, c)
}

// caseString is the string form a fork matches cases against.
func caseString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case nil:
		return "nil"
	}
	return fmt.Sprint(v)
}

// ---- When / Unless ----

// When runs steps only if the expr condition holds. The condition is
// compiled when the flow is built and must yield a bool. Keys the steps
// provide are not known to later steps (the condition may be false).
func When(cond string, steps ...Service) Service {
	w := &when{cond: cond, steps: steps, want: true}
	w.self = w
	return w
}

// Unless runs steps only if the expr condition does not hold.
func Unless(cond string, steps ...Service) Service {
	w := &when{cond: cond, steps: steps, want: false}
	w.self = w
	return w
}

// WhenFunc runs steps only if fn returns true: a condition in Go, such as
// the fulfillment framework's should_execute(request). name labels it in
// errors, graphs and traces (the step is named when(name)). The build
// checks are those of [When]: a name, a function and steps are required.
// A panic in fn is an error of the run naming the step.
func WhenFunc(name string, fn func(ctx context.Context, c *fc.Context) bool, steps ...Service) Service {
	w := &when{cond: name, fn: fn, steps: steps, want: true, isFunc: true}
	w.self = w
	return w
}

type when struct {
	combinator
	cond   string
	fn     func(ctx context.Context, c *fc.Context) bool
	isFunc bool
	steps  []Service
	want   bool
}

func (w *when) Name() string {
	if w.want {
		return "when(" + w.cond + ")"
	}
	return "unless(" + w.cond + ")"
}

func (w *when) build(b *builder, path string, in keys) (runner, keys, *Node) {
	name := w.Name()
	p := path + "/" + name
	var e *branch.Expr
	if !w.isFunc {
		_, e = b.expr(name, w.cond, in, true)
	} else {
		if w.cond == "" {
			b.errorf(name, "", nil, "WhenFunc: no name")
		}
		if w.fn == nil {
			b.errorf(name, "", nil, "WhenFunc: nil function")
		}
	}
	if len(w.steps) == 0 {
		b.errorf(name, "", nil, "no steps")
	}
	kind := KindWhen
	if !w.want {
		kind = KindUnless
	}
	rs, _, nodes := b.sequence(w.steps, p, in.clone(), name)
	return &whenRunner{flow: b.flow, name: name, path: p, expr: e, fn: w.fn, want: w.want, steps: seqRunner(rs)}, in,
		&Node{Kind: kind, Name: name, Path: p, Label: w.cond, Children: nodes}
}

type whenRunner struct {
	flow, name string
	path       string
	expr       *branch.Expr
	fn         func(ctx context.Context, c *fc.Context) bool
	want       bool
	steps      seqRunner
}

func (w *whenRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	var ok bool
	switch {
	case w.fn != nil:
		if err := guard(func() error { ok = w.fn(ctx, c); return nil }); err != nil {
			return &StepError{Flow: w.flow, Step: w.name, Path: w.path, Err: err}
		}
	case w.expr == nil:
		return &StepError{Flow: w.flow, Step: w.name, Err: errors.New("condition not compiled")}
	default:
		env := c.View()
		var err error
		if ok, err = w.expr.EvalBool(env); err != nil {
			return &StepError{Flow: w.flow, Step: w.name, Err: w.expr.DataError("condition", env, err)}
		}
	}
	if ok != w.want {
		if r.trace != nil {
			r.trace.skipped(w.name, w.path)
		}
		return nil
	}
	return w.steps.run(ctx, r, c)
}

// ---- Retry and Timeout: settings for every step under them ----

// Retry runs step under policy instead of the flow's default: when the step
// (or, for a combinator, any step inside it) returns a Retry error, it runs
// again after the policy's backoff, up to its attempts and elapsed budget.
func Retry(step Service, policy errors.Policy) Service {
	return newSetting("retry", step, func(b *builder, name string) func() {
		if err := policy.Validate(); err != nil {
			b.errorf(name, "", err, "bad retry policy")
		}
		saved := b.policy
		b.policy = policy
		return func() { b.policy = saved }
	})
}

// Timeout gives each attempt of step (of every step inside it, for a
// combinator) at most d. An attempt that runs out of time is a Retry error
// wrapping [ErrTimeout], retried under the step's policy; the run's own
// cancellation is not a timeout and is never retried.
func Timeout(step Service, d time.Duration) Service {
	return newSetting("timeout", step, func(b *builder, name string) func() {
		if d <= 0 {
			b.errorf(name, "", nil, "timeout must be positive, got %s", d)
		}
		saved := b.timeout
		b.timeout = d
		return func() { b.timeout = saved }
	})
}

// setting builds its step with a builder setting changed (apply returns
// the function that restores it): the step keeps its own name.
type setting struct {
	combinator
	what  string
	step  Service
	apply func(b *builder, name string) (restore func())
}

func newSetting(what string, step Service, apply func(*builder, string) func()) Service {
	s := &setting{what: what, step: step, apply: apply}
	s.self = s
	return s
}

func (s *setting) Name() string {
	if isNil(s.step) {
		return s.what
	}
	return s.step.Name()
}

func (s *setting) build(b *builder, path string, in keys) (runner, keys, *Node) {
	if isNil(s.step) {
		b.errorf("", "", nil, "%s: nil step (at %s)", s.what, path)
		return seqRunner(nil), in, &Node{Kind: KindThen, Path: path}
	}
	defer s.apply(b, s.step.Name())()
	return b.compile(s.step, path, in)
}

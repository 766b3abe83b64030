package flow

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/svcflow/svcflow/branch"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// ---- Passthrough, StoreInputAs, StoreOutputAs ----

// Passthrough runs step and discards its writes: the steps after it see
// the context as it was before it (pypeman's passthrough node). step runs
// on a copy-on-write snapshot of the context, so it reads everything
// earlier steps wrote; its error, if any, is still the run's error. Build
// checks see through it: step's needs are checked, and it provides
// nothing (but the key of [StoreOutputAs], see there).
//
//	flow.Passthrough(audit) // audit reads the order; what it writes is dropped
//
// The wrapped step keeps its name: [Builder.Replace], [From], [Through]
// and [Flow.Lookup] find it as before.
func Passthrough(step Service) Service {
	return reshape(step, "passthrough", func(s *shaped) string {
		s.passthrough = true
		return ""
	})
}

// StoreInputAs stores the step's input under key before the step runs:
// a map[string]any holding a shallow copy of every key of the context at
// that moment (pypeman's store_input_as). The step itself, and every step
// after it, can read key. It provides key to build checks, typed
// map[string]any.
//
//	flow.StoreInputAs(normalize, "raw") // raw: the context before normalize changed it
func StoreInputAs(step Service, key string) Service {
	return reshape(step, "store_input_as", func(s *shaped) string {
		if s.inputAs != "" && s.inputAs != key {
			return fmt.Sprintf("store_input_as given twice (%q and %q)", s.inputAs, key)
		}
		s.inputAs = key
		return ""
	})
}

// StoreOutputAs stores the step's output under key after the step
// succeeds: a map[string]any of the keys the step wrote, with their
// values (a key it deleted is not in it). It provides key to build
// checks, typed map[string]any. Nothing is stored when the step fails.
//
// With [Passthrough] on the same step (in either order), the step's
// writes are discarded but key still gets them: pypeman's idiom of
// calling a service for a lookup without changing the message.
//
//	flow.Passthrough(flow.StoreOutputAs(lookupCustomer, "customer_lookup"))
func StoreOutputAs(step Service, key string) Service {
	return reshape(step, "store_output_as", func(s *shaped) string {
		if s.outputAs != "" && s.outputAs != key {
			return fmt.Sprintf("store_output_as given twice (%q and %q)", s.outputAs, key)
		}
		s.outputAs = key
		return ""
	})
}

// shaped is a step run with pypeman's node options. Wrapping a shaped
// step again sets another option of the same wrapper, so the options
// combine the same way in any order.
type shaped struct {
	combinator
	step        Service
	passthrough bool
	inputAs     string
	outputAs    string
	problems    []string
}

func reshape(step Service, what string, set func(*shaped) string) Service {
	s := &shaped{step: step}
	if prev, ok := step.(*shaped); ok {
		s.step, s.passthrough, s.inputAs, s.outputAs = prev.step, prev.passthrough, prev.inputAs, prev.outputAs
		s.problems = append(s.problems, prev.problems...)
	}
	if p := set(s); p != "" {
		s.problems = append(s.problems, p)
	}
	if what != "passthrough" {
		key := s.inputAs
		if what == "store_output_as" {
			key = s.outputAs
		}
		if key == "" {
			s.problems = append(s.problems, what+": empty key")
		}
	}
	s.self = s
	return s
}

// Name is the wrapped step's name.
func (s *shaped) Name() string {
	if isNil(s.step) {
		return "shape"
	}
	return s.step.Name()
}

// describe says which options are set: "passthrough, store_output_as: x".
func (s *shaped) describe() string {
	var parts []string
	if s.passthrough {
		parts = append(parts, "passthrough")
	}
	if s.inputAs != "" {
		parts = append(parts, "store_input_as: "+s.inputAs)
	}
	if s.outputAs != "" {
		parts = append(parts, "store_output_as: "+s.outputAs)
	}
	return strings.Join(parts, ", ")
}

var mapType = reflect.TypeFor[map[string]any]()

func (s *shaped) build(b *builder, path string, in keys) (runner, keys, *Node) {
	if isNil(s.step) {
		b.errorf("", "", nil, "%s: nil step (at %s)", s.describe(), path)
		return seqRunner(nil), in, &Node{Kind: KindThen, Path: path}
	}
	name := s.step.Name()
	for _, p := range s.problems {
		b.errorf(name, "", nil, "%s", p)
	}
	known := in.clone()
	if s.inputAs != "" && known != nil {
		known[s.inputAs] = origin{typ: mapType, by: name}
	}
	body, out, n := b.compile(s.step, path, known)
	if s.passthrough {
		out = known
	}
	if s.outputAs != "" && out != nil {
		out = out.clone()
		out[s.outputAs] = origin{typ: mapType, by: name}
	}
	r := &shapeRunner{body: body, passthrough: s.passthrough, inputAs: s.inputAs, outputAs: s.outputAs}
	desc := s.describe()
	if n.Kind == KindStep && len(n.Children) == 0 {
		c := *n
		c.Label = desc
		if s.passthrough {
			c.Provides, c.Removes = nil, nil
		}
		for _, k := range []string{s.inputAs, s.outputAs} {
			if k != "" {
				c.Provides = append(c.Provides[:len(c.Provides):len(c.Provides)], fc.KeyInfo{Name: k, Type: mapType})
			}
		}
		return r, out, &c
	}
	return r, out, &Node{Kind: KindShape, Name: desc, Path: n.Path, Label: desc, Children: []*Node{n}}
}

type shapeRunner struct {
	body              runner
	passthrough       bool
	inputAs, outputAs string
}

func (s *shapeRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	if s.inputAs != "" {
		c.Set(s.inputAs, c.Map())
	}
	target := c
	var trk fc.Tracking
	switch {
	case s.passthrough:
		target = c.Snapshot()
	case s.outputAs != "":
		trk = c.Track()
	}
	err := s.body.run(ctx, r, target)
	var wrote []string
	switch {
	case s.passthrough:
		wrote = target.Written()
	case s.outputAs != "":
		wrote = trk.Stop(nil)
	}
	if s.outputAs != "" && (err == nil || err == errThrough) {
		out := make(map[string]any, len(wrote))
		for _, k := range wrote {
			if v, ok := target.Get(k); ok {
				out[k] = v
			}
		}
		c.Set(s.outputAs, out)
	}
	return err
}

// ---- Divert ----

// Divert is pypeman's `when` on a sub-channel: when the expr condition
// holds, the run takes steps and then ends, successfully: the rest of the
// flow the divert belongs to does not run. When it does not hold, the
// flow goes on past it as if it were not there.
//
//	flow.New("orders", validate,
//		flow.Divert("total == 0", flow.Step("free", recordFree)), // ends here for free orders
//		charge, ship)
//
// "The rest of the flow" is everything after the divert in the innermost
// [Flow] that holds it, whatever combinators it is nested in (a [Fork]
// case, a [Saga], which counts as completed, an [All], whose other
// branches finish first). A flow nested in another as a step ends its
// own run: its parent goes on. A divert inside [Each], [Until] or [Tap]
// is a build error: their bodies run apart from the rest of the flow.
//
// Build checks treat it like [Fork] cases: steps are checked against the
// keys known where the divert sits; later steps know only what was known
// before it; and the flow provides (to a parent, as its contract) only
// the keys it has both at its end and where each divert ends it. A traced
// run that diverts records a span named divert(cond) whose Selected is
// "divert", after the diverted steps.
func Divert(cond string, steps ...Service) Service {
	d := &divert{cond: cond, steps: steps}
	d.self = d
	return d
}

type divert struct {
	combinator
	cond  string
	steps []Service
}

func (d *divert) Name() string { return "divert(" + d.cond + ")" }

func (d *divert) build(b *builder, path string, in keys) (runner, keys, *Node) {
	name := d.Name()
	p := b.unique(path + "/" + name)
	_, e := b.expr(name, d.cond, in, true)
	if len(d.steps) == 0 {
		b.errorf(name, "", nil, "no steps")
	}
	if b.isolated > 0 {
		b.errorf(name, "", nil, "a divert cannot sit inside each, until or tap: it would end the flow from a body that runs apart from it")
	}
	rs, out, nodes := b.sequence(d.steps, p, in.clone(), name)
	if out != nil {
		b.diverts = append(b.diverts, out)
	}
	return &divertRunner{flow: b.flow, name: name, path: p, expr: e, steps: seqRunner(rs)}, in,
		&Node{Kind: KindDivert, Name: name, Path: p, Label: d.cond, Children: nodes}
}

type divertRunner struct {
	flow, name, path string
	expr             *branch.Expr
	steps            seqRunner
}

func (d *divertRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	if d.expr == nil {
		return &StepError{Flow: d.flow, Step: d.name, Err: errors.New("condition not compiled")}
	}
	env := c.View()
	ok, err := d.expr.EvalBool(env)
	if err != nil {
		return &StepError{Flow: d.flow, Step: d.name, Err: d.expr.DataError("condition", env, err)}
	}
	if !ok {
		if r.trace != nil {
			r.trace.skipped(d.name, d.path)
		}
		return nil
	}
	start := time.Now()
	if err := d.steps.run(ctx, r, c); err != nil {
		return err
	}
	if r.trace != nil {
		r.trace.add(Span{Name: d.name, Path: d.path, Start: start, Duration: time.Since(start), Outcome: errors.KindOK, Selected: "divert"})
	}
	return errThrough // the rest of the flow does not run
}

// ---- Lookup ----

// Lookup returns the step of the flow named name (pypeman's get_node):
// its flow, name, path (flow/fork(tier)/gold/name) and the service it
// calls, which is the service given to the flow unless the build
// replaced it ([Builder.Replace]; a step that prepares itself or
// receives providers calls the service made then). Only the flow's own
// steps are found, at any depth of its combinators; a flow nested as a
// step is one step: look inside with its own Lookup. A name given to
// steps in two exclusive cases returns the first. ok is false when no
// step has that name, or f was not built.
func (f *Flow) Lookup(name string) (info StepInfo, ok bool) {
	if f == nil || f.steps == nil {
		return StepInfo{}, false
	}
	s, ok := f.steps[name]
	if !ok {
		return StepInfo{}, false
	}
	return *s, true
}

package flow

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/provide"
)

// BuildError is one problem found while building a flow. [Builder.Build]
// returns all of them, joined.
type BuildError struct {
	Flow string // the flow being built
	Step string // the step at fault ("" for the flow itself)
	Key  string // the context key involved, if any
	Msg  string // what is wrong
	Err  error  // the cause, if any (an expression error, a binding error)
}

// Error implements error: `flow "orders": step "price": key "items": ...`.
func (e *BuildError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "flow %q", e.Flow)
	if e.Step != "" {
		fmt.Fprintf(&b, ": step %q", e.Step)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": key %q", e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Err != nil {
		if e.Msg != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *BuildError) Unwrap() error { return e.Err }

// origin is what the build knows of a key at some point of a flow: its Go
// type (nil: any) and who provided it.
type origin struct {
	typ      reflect.Type
	by       string // step name, or "" for the flow input
	optional bool   // an optional input: may be absent at run time
}

// keys maps each key known at a point of the flow to its origin.
type keys map[string]origin

func (k keys) clone() keys {
	if k == nil {
		return nil // unchecked stays unchecked
	}
	out := make(keys, len(k))
	for n, o := range k {
		out[n] = o
	}
	return out
}

// types returns the schema for compiling expressions.
func (k keys) types() map[string]reflect.Type {
	out := make(map[string]reflect.Type, len(k))
	for n, o := range k {
		out[n] = o.typ
	}
	return out
}

// intersect returns the keys known on every one of the given paths.
func intersect(paths []keys) keys {
	if len(paths) == 0 {
		return keys{}
	}
	if paths[0] == nil {
		return nil
	}
	out := paths[0].clone()
	for _, p := range paths[1:] {
		for n, o := range out {
			po, ok := p[n]
			switch {
			case !ok:
				delete(out, n)
			case po.typ != o.typ:
				out[n] = origin{by: o.by}
			}
		}
	}
	return out
}

// builder holds the state of one Build: settings inherited down the tree,
// the errors found, and the step names seen.
type builder struct {
	flow      string
	mw        []Middleware
	policy    errors.Policy
	timeout   time.Duration // per attempt, for leaves under a Timeout
	taps      *taps
	errs      []error
	names     map[string]string         // step name -> path
	replace   map[string]Service        // stubs by step name
	leaves    []Service                 // every leaf, in order, for Init/Close
	sagas     int                       // sagas enclosing the step being built
	scopes    int                       // Compensates of combinators enclosing it
	undone    bool                      // the leaf being built has an explicit Compensate
	choices   []choice                  // the fork cases and first candidates enclosing it
	occurs    map[string][]occurrence   // where each step name was given
	forks     int                       // forks and firsts numbered so far
	providers *provide.Container        // what Func inputs are given
	paths     map[string]int            // combinator paths seen, for unique
	isolated  int                       // each, until and tap bodies enclosing the step being built (no Divert there)
	diverts   []keys                    // the keys known where each Divert ends the flow
	steps     map[string]*StepInfo      // each leaf by name (the first given), for Flow.Lookup
	undos     map[string]CompensateFunc // every undo by its key, for durable compensation
	parkers   int                       // leaves that may park ([Parker]) built so far
}

// choice is one case of a fork (or candidate of a first) on the path to a
// step: steps under different cases of one fork never both run.
type choice struct {
	at    int // which fork: its number in the build
	label string
}

// occurrence is where a step name was given, and under which choices.
type occurrence struct {
	path    string
	choices []choice
}

// exclusive reports whether steps under a and b can never both run: some
// fork chose differently on their paths.
func exclusive(a, b []choice) bool {
	for _, x := range a {
		for _, y := range b {
			if x.at == y.at && x.label != y.label {
				return true
			}
		}
	}
	return false
}

// fork returns a number for a new fork (or first) of the flow.
func (b *builder) fork() int { b.forks++; return b.forks }

func (b *builder) choose(at int, label string) { b.choices = append(b.choices, choice{at, label}) }
func (b *builder) unchoose()                   { b.choices = b.choices[:len(b.choices)-1] }

// claim records the step name at path; a name given twice is an error
// unless the two can never both run (mutually exclusive cases of a fork,
// candidates of a first): names are unique per path a run takes.
func (b *builder) claim(name, p string) {
	if b.occurs == nil {
		b.occurs = map[string][]occurrence{}
	}
	for _, o := range b.occurs[name] {
		if !exclusive(o.choices, b.choices) {
			b.errorf(name, "", nil, "duplicate step name (also at %s); rename one with flow.Named", o.path)
			return
		}
	}
	b.occurs[name] = append(b.occurs[name], occurrence{path: p, choices: slices.Clone(b.choices)})
	if _, ok := b.names[name]; !ok {
		b.names[name] = p
	}
}

// unique returns p, or p with "#N" added when a combinator of the flow
// has that path already (two All in a row): every node of a flow has a
// path of its own, which durable runs journal units by.
func (b *builder) unique(p string) string {
	if b.paths == nil {
		b.paths = map[string]int{}
	}
	n := b.paths[p]
	b.paths[p] = n + 1
	if n == 0 {
		return p
	}
	return p + "#" + strconv.Itoa(n+1)
}

func (b *builder) errorf(step, key string, cause error, format string, args ...any) {
	b.errs = append(b.errs, &BuildError{Flow: b.flow, Step: step, Key: key, Msg: fmt.Sprintf(format, args...), Err: cause})
}

// node is implemented by the combinators of this package: they compile
// themselves into a runner when a flow is built.
type node interface {
	Service
	build(b *builder, path string, in keys) (runner, keys, *Node)
}

// compile builds any service: a combinator builds itself; any other service
// is a leaf step.
func (b *builder) compile(svc Service, path string, in keys) (runner, keys, *Node) {
	if n, ok := svc.(node); ok {
		return n.build(b, path, in)
	}
	if nm, ok := svc.(*named); ok {
		if n, ok := nm.Service.(node); ok {
			// A renamed combinator is still built and checked in place;
			// combinators need no unique name.
			return n.build(b, path, in)
		}
	}
	return b.leaf(svc, path, in)
}

// sequence builds steps one after another, threading the known keys.
func (b *builder) sequence(steps []Service, path string, in keys, what string) ([]runner, keys, []*Node) {
	runners := make([]runner, 0, len(steps))
	nodes := make([]*Node, 0, len(steps))
	known := in
	for i, s := range steps {
		if isNil(s) {
			b.errorf("", "", nil, "%s: step %d is nil", what, i+1)
			continue
		}
		r, out, n := b.compile(s, path, known)
		runners = append(runners, r)
		nodes = append(nodes, n)
		known = out
	}
	return runners, known, nodes
}

// sameService reports whether a and b are the same service value.
func sameService(a, b Service) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	return ta == tb && ta.Comparable() && a == b
}

func isNil(s Service) bool {
	if s == nil {
		return true
	}
	v := reflect.ValueOf(s)
	switch v.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Interface, reflect.Slice, reflect.Chan:
		return v.IsNil()
	}
	return false
}

// leaf builds a service that is not a combinator: it checks its contract
// against the known keys and wraps it with retry and middleware.
func (b *builder) leaf(svc Service, path string, in keys) (runner, keys, *Node) {
	name := svc.Name()
	p := path + "/" + name
	n := &Node{Kind: KindStep, Name: name, Path: p}
	if name == "" {
		b.errorf("", "", nil, "a step has an empty name (at %s)", path)
	} else {
		b.claim(name, p)
	}
	if be, ok := svc.(buildErrer); ok {
		if err := be.buildErr(); err != nil {
			b.errorf(name, "", err, "")
		}
	}
	if in != nil {
		if ps, err := prepare(svc, in); err != nil {
			b.errorf(name, "", err, "")
		} else {
			svc = ps
		}
	}
	if is, err := b.inject(svc); err != nil {
		b.errorf(name, "", err, "")
	} else if !isNil(is) {
		svc = is
	}
	contract := contractOf(svc)
	if stub, ok := b.replace[name]; ok && !isNil(stub) {
		if _, own := stub.(Contractor); !own {
			stub = &stubbed{Service: stub, name: name, contract: contract}
		} else {
			stub = Named(name, stub)
		}
		svc = stub
		contract = contractOf(svc)
	}
	out := in
	if in != nil {
		b.checkNeeds(name, contract.Needs, in)
	}
	if in != nil && (len(contract.Provides) > 0 || len(contract.Removes) > 0) {
		out = in.clone()
		for _, k := range contract.Removes {
			delete(out, k)
		}
		for _, k := range contract.Provides {
			out[k.Name] = origin{typ: k.Type, by: name}
		}
	}
	n.Needs, n.Provides, n.Removes = contract.Needs, contract.Provides, contract.Removes
	if sub, ok := svc.(*Flow); ok && sub.graph != nil {
		// A nested flow is one step to its parent, drawn with its insides.
		n.Kind, n.Children = KindFlow, repath(sub.graph.Children, sub.name, p)
	}
	if mayPark(svc) {
		b.parkers++
	}
	if !slices.ContainsFunc(b.leaves, func(l Service) bool { return sameService(l, svc) }) {
		b.leaves = append(b.leaves, svc) // one Init and Close per service value
	}
	l := newLeaf(svc, b.flow, p, b.policy, b.timeout, b.mw)
	if b.steps == nil {
		b.steps = map[string]*StepInfo{}
	}
	if _, seen := b.steps[name]; !seen && name != "" {
		b.steps[name] = &l.info
	}
	return b.wrapLeaf(svc, l), out, n
}

// prepare returns the service a [Preparer] (or a [Named] one) makes where
// it sits, or svc itself.
func prepare(svc Service, in keys) (Service, error) {
	switch s := svc.(type) {
	case Preparer:
		ps, err := s.Prepare(in.types())
		if err != nil || isNil(ps) {
			return svc, err
		}
		return ps, nil
	case *named:
		if _, ok := s.Service.(Preparer); ok {
			ps, err := prepare(s.Service, in)
			if err != nil {
				return svc, err
			}
			return &named{name: s.name, Service: ps}, nil
		}
	}
	return svc, nil
}

// stubbed is a replacement step that keeps the original's name and contract.
type stubbed struct {
	Service
	name     string
	contract Contract
}

func (s *stubbed) Name() string       { return s.name }
func (s *stubbed) Contract() Contract { return s.contract }

// checkNeeds reports every needed key that is unknown or of another type.
func (b *builder) checkNeeds(step string, needs []fc.KeyInfo, in keys) {
	for _, k := range needs {
		o, ok := in[k.Name]
		if !ok {
			if !k.Optional {
				b.errorf(step, k.Name, nil, "needed but not provided: declare it in the flow's Input or have an earlier step provide it on every path")
			}
			continue
		}
		if !typesAgree(o.typ, k.Type) {
			from := "the flow input"
			if o.by != "" {
				from = fmt.Sprintf("step %q", o.by)
			}
			b.errorf(step, k.Name, nil, "needed as %s, but %s provides %s", k.Type, from, o.typ)
		}
	}
}

// typesAgree reports whether a value of type have can be read as want:
// assignable, or an integer read as a float (reads convert it exactly).
func typesAgree(have, want reflect.Type) bool {
	if have == nil || want == nil {
		return true
	}
	if isInt(have.Kind()) && (want.Kind() == reflect.Float64 || want.Kind() == reflect.Float32) {
		return true
	}
	return have.AssignableTo(want) || (want.Kind() == reflect.Interface && have.Implements(want))
}

func isInt(k reflect.Kind) bool { return k >= reflect.Int && k <= reflect.Uint64 }

// repath copies nodes of a nested flow, moving their paths from under the
// flow's own name to where the flow sits in its parent.
func repath(nodes []*Node, from, to string) []*Node {
	out := make([]*Node, len(nodes))
	for i, n := range nodes {
		c := *n
		if rest, ok := strings.CutPrefix(c.Path, from); ok {
			c.Path = to + rest
		}
		c.Children = repath(n.Children, from, to)
		out[i] = &c
	}
	return out
}

package config

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	fc "github.com/svcflow/svcflow/context"
	ferrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	yaml "go.yaml.in/yaml/v4"
)

// The step kinds the compiler knows itself: call and use, which name
// flows and registered Go services, and the combinators. Every other
// service kind (set, stop, log, http, ...) is a step component of the
// configuration's component registry.
var (
	structuralKinds = []string{"call", "use"}
	comboKinds      = []string{"fork", "when", "unless", "all", "each", "until", "first", "saga", "tap", "then"}
	modifiers       = []string{"name", "retry", "timeout", "compensate", "with", "passthrough", "store_input_as", "store_output_as", "record"}
)

// setKinds computes the step kinds of the load: the step components, then
// call and use, then the combinators; and the keys a step may have.
func (l *loader) setKinds() {
	l.stepKinds = append(append(l.cfg.comps.Names(component.KindStep), structuralKinds...), comboKinds...)
	l.stepKeys = append(slices.Clone(l.stepKinds), modifiers...)
}

// maxDepth bounds how deeply steps nest.
const maxDepth = 64

// flowCtx is the state of parsing the steps of one flow (or of one
// compensation, which is built as a flow of its own).
type flowCtx struct {
	def      *flowDef
	f        *srcFile
	pos      map[string]pos
	keyPos   map[string]map[string]pos
	exprAt   map[string]exprLoc
	reserved map[string]bool       // names given explicitly anywhere in the steps
	named    map[string]*yaml.Node // explicit names seen so far
	used     map[string]bool       // every name given so far
	depth    int
	walked   int            // nodes visited by reserve, bounded like the steps
	sagas    int            // sagas enclosing the steps being parsed
	next     map[string]int // the next #N to try for a generated name
}

func newFlowCtx(l *loader, def *flowDef, f *srcFile) *flowCtx {
	return &flowCtx{def: def, f: f, pos: def.pos, keyPos: def.keyPos, exprAt: def.exprAt,
		reserved: map[string]bool{DefaultsStep: true}, named: map[string]*yaml.Node{}, used: map[string]bool{}}
}

// reserve collects the explicit step names under n, so generated names
// never take them.
func (fx *flowCtx) reserve(n *yaml.Node, depth int) {
	n = deref(n)
	fx.walked++
	if n == nil || depth > maxDepth || fx.walked > 10*maxSteps {
		return
	}
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			fx.reserve(c, depth+1)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := deref(n.Content[i]), deref(n.Content[i+1])
			if k != nil && k.Value == "name" && v != nil && v.Kind == yaml.ScalarNode {
				fx.reserved[v.Value] = true
				continue
			}
			if k != nil && k.Value == "compensate" {
				continue // a flow of its own
			}
			fx.reserve(v, depth+1)
		}
	}
}

// unique returns base, or base#2, base#3 ... the first that is free.
func (fx *flowCtx) unique(base string) string {
	if fx.next == nil {
		fx.next = map[string]int{}
	}
	name := base
	i := max(fx.next[base], 2)
	for fx.used[name] || fx.reserved[name] {
		name = base + "#" + strconv.Itoa(i)
		i++
	}
	fx.next[base] = i
	fx.used[name] = true
	return name
}

// at records where the step or combinator named name is, for build errors.
func (fx *flowCtx) at(name string, n *yaml.Node) {
	if _, ok := fx.pos[name]; !ok {
		fx.pos[name] = posOf(fx.f, n)
	}
}

// steps parses a list of steps.
func (l *loader) steps(fx *flowCtx, n *yaml.Node, what string) ([]stepDef, bool) {
	items, ok := l.seq(fx.f, n, what)
	if !ok {
		return nil, false
	}
	if len(items) == 0 {
		l.at(fx.f, n, "%s: expected at least one step", what)
		return nil, false
	}
	out := make([]stepDef, 0, len(items))
	good := true
	for _, it := range items {
		s, ok := l.parseStep(fx, it, false)
		if ok {
			out = append(out, s)
		}
		good = good && ok
	}
	return out, good
}

// step parses one step and makes its service: a step standing alone, such
// as a test's stub.
func (l *loader) step(fx *flowCtx, n *yaml.Node, inSaga bool) (flow.Service, bool) {
	d, ok := l.parseStep(fx, n, inSaga)
	if !ok {
		return nil, false
	}
	return d.make(), true
}

// parseStep parses one step: a mapping with one kind key and optional
// modifiers (name, retry, timeout, compensate in a saga, with for use), or
// a bare service name (a use).
func (l *loader) parseStep(fx *flowCtx, n *yaml.Node, inSaga bool) (stepDef, bool) {
	f := fx.f
	n = f.deref(n)
	fx.def.size++
	l.budget--
	if l.budget == -1 {
		l.at(f, n, "too many steps (more than %d, aliases expanded)", maxSteps)
	}
	if l.budget < 0 {
		return stepDef{}, false
	}
	if fx.depth >= maxDepth {
		l.at(f, n, "steps nested too deeply (more than %d levels)", maxDepth)
		return stepDef{}, false
	}
	fx.depth++
	defer func() { fx.depth-- }()

	if n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		return l.useStep(fx, n, n, nil, nil)
	}
	fs, ok := l.mapping(f, n, "step", l.stepKeys)
	if !ok {
		return stepDef{}, false
	}
	var kinds []string
	for _, k := range fs.order {
		if slices.Contains(l.stepKinds, k) {
			kinds = append(kinds, k)
		}
	}
	switch len(kinds) {
	case 0:
		hint := ""
		if len(l.stepKinds) == len(structuralKinds)+len(comboKinds) {
			hint = " (no step component is registered: link the built-in ones with adapters/steps or adapters/component/all)"
		} else if len(fs.order) > 0 && slices.Contains(modifiers, fs.order[0]) {
			hint = fmt.Sprintf(" (%s: belongs to a step: write it beside the step's kind, as in {use: charge, %s: ...})", fs.order[0], fs.order[0])
		}
		l.at(f, n, "step: expected a step kind: one of %s, or a registered service name%s", strings.Join(l.stepKinds, ", "), hint)
		return stepDef{}, false
	case 1:
	default:
		second := fs.m[kinds[1]]
		l.at(f, second.key, "step: more than one step kind (%s and %s): put each in its own list item", kinds[0], kinds[1])
		return stepDef{}, false
	}
	kind := kinds[0]
	kf := fs.m[kind]
	leaf := !slices.Contains(comboKinds, kind)

	good := true
	var explicit string
	if fd, ok := fs.get("name"); ok {
		switch {
		case !leaf:
			l.at(f, fd.key, "step: name: %s is a combinator, named by the engine; name the steps inside it", kind)
			good = false
		default:
			if explicit, ok = l.name(f, fd.val, "step: name"); !ok {
				good = false
			} else if prev, dup := fx.named[explicit]; dup {
				l.at(f, fd.val, "step: duplicate step name %q (first at line %d)", explicit, prev.Line)
				good = false
			} else if explicit == DefaultsStep {
				l.at(f, fd.val, "step: the name %q is reserved", explicit)
				good = false
			} else {
				fx.named[explicit] = fd.val
			}
		}
	}
	if fd, ok := fs.get("with"); ok && kind != "use" {
		l.at(f, fd.key, "step: with: only use steps take arguments")
		good = false
	}
	var compensate field
	hasUndo := false
	if fd, ok := fs.get("compensate"); ok {
		if !inSaga && fx.sagas == 0 {
			l.at(f, fd.key, "step: compensate: only steps inside a saga have compensations")
			good = false
		} else {
			compensate, hasUndo = fd, true
		}
	}
	var timeout field
	var retry field
	hasTimeout, hasRetry := false, false
	if fd, ok := fs.get("timeout"); ok {
		timeout, hasTimeout = fd, true
	}
	if fd, ok := fs.get("retry"); ok {
		retry, hasRetry = fd, true
	}

	var svc stepDef
	var own ownModifiers // the timeout and retry of the kind's own spec
	switch {
	case kind == "use":
		var with *yaml.Node
		if fd, ok := fs.get("with"); ok {
			with = fd.val
		}
		s, ok := l.useStep(fx, kf.key, kf.val, with, &explicit)
		if !ok {
			return stepDef{}, false
		}
		svc = s
	case kind == "call":
		s, ok := l.callStep(fx, kf, explicit)
		if !ok {
			return stepDef{}, false
		}
		svc = s
	case leaf:
		s, mods, ok := l.componentStep(fx, kind, kf, explicit)
		if !ok {
			return stepDef{}, false
		}
		svc, own = s, mods
	default:
		s, ok := l.combinator(fx, kind, kf)
		if !ok {
			return stepDef{}, false
		}
		svc = s
		fx.at(svc.name, kf.key)
	}
	if !good {
		return stepDef{}, false
	}

	// Resilience: the step's keys, or the kind's own (http's timeout and
	// retry), never both.
	var d time.Duration
	var p *ferrors.Policy
	for _, m := range []struct {
		name string
		set  bool
		at   field
		own  *yaml.Node
	}{{"timeout", hasTimeout, timeout, own.timeoutKey}, {"retry", hasRetry, retry, own.retryKey}} {
		if m.set && m.own != nil {
			l.at(f, m.at.key, "step: %s: set in %s already (line %d); keep one", m.name, kind, m.own.Line)
			return stepDef{}, false
		}
	}
	if hasTimeout {
		if d, ok = l.duration(f, timeout.val, "step: timeout"); !ok {
			return stepDef{}, false
		}
	} else {
		d = own.timeout
	}
	if hasRetry {
		if p, ok = l.policy(f, retry.val, "step: retry"); !ok {
			return stepDef{}, false
		}
	} else {
		p = own.retry
	}
	var u *undoDef
	if hasUndo {
		if u, ok = l.undo(fx, svc, compensate); !ok {
			return stepDef{}, false
		}
	}
	sh, ok := l.shapeModifiers(f, fs)
	if !ok {
		return stepDef{}, false
	}
	rec, ok := l.recordModifier(f, fs)
	if !ok {
		return stepDef{}, false
	}
	if d == 0 && p == nil && u == nil && sh == (shape{}) && rec == nil {
		return svc, true
	}
	inner := svc.make
	return stepDef{name: svc.name, make: func() flow.Service { // the wrappers keep the step's name
		s := inner()
		if d > 0 {
			s = flow.Timeout(s, d)
		}
		if p != nil {
			s = flow.Retry(s, *p)
		}
		if u != nil {
			s = flow.Compensate(s, u.instance())
		}
		s = sh.apply(s)
		if rec != nil {
			s = channel.RecordOpen(rec, s)
		}
		return s
	}}, true
}

// recordModifier reads a step's record: STORE, a store component (like a
// channel's store:): nil when the step has none.
func (l *loader) recordModifier(f *srcFile, fs *fields) (component.StoreOpener, bool) {
	fd, ok := fs.get("record")
	if !ok {
		return nil, true
	}
	d := &decoder{f: f, comps: l.cfg.comps, tpl: l.tpl, out: newDecoded(f, fd.val)}
	ref, ok := d.ref(fd.val, "step: record", "", component.KindStore)
	l.errs = append(l.errs, d.errs...)
	if !ok {
		return nil, false
	}
	env := l.env
	open, err := ref.Store(env)
	if err != nil {
		l.at(f, fd.val, "step: record: %s: %v", ref.Component.Name, err)
		return nil, false
	}
	return open, true
}

// shape holds pypeman's node options of a step: passthrough: true,
// store_input_as: key, store_output_as: key (see flow.Passthrough,
// flow.StoreInputAs and flow.StoreOutputAs).
type shape struct {
	passthrough       bool
	inputAs, outputAs string
}

// apply wraps s with the options that are set.
func (sh shape) apply(s flow.Service) flow.Service {
	if sh.inputAs != "" {
		s = flow.StoreInputAs(s, sh.inputAs)
	}
	if sh.outputAs != "" {
		s = flow.StoreOutputAs(s, sh.outputAs)
	}
	if sh.passthrough {
		s = flow.Passthrough(s)
	}
	return s
}

// shapeModifiers reads a step's passthrough, store_input_as and
// store_output_as.
func (l *loader) shapeModifiers(f *srcFile, fs *fields) (shape, bool) {
	var sh shape
	good := true
	if fd, ok := fs.get("passthrough"); ok {
		sh.passthrough, ok = l.boolean(f, fd.val, "step: passthrough")
		good = good && ok
	}
	for _, m := range []struct {
		key string
		to  *string
	}{{"store_input_as", &sh.inputAs}, {"store_output_as", &sh.outputAs}} {
		if fd, ok := fs.get(m.key); ok {
			*m.to, ok = l.name(f, fd.val, "step: "+m.key)
			good = good && ok
		}
	}
	return sh, good
}

// ownModifiers are the timeout and retry policy a step kind's spec sets
// for the step (see component.Field): applied like the step's own keys.
type ownModifiers struct {
	timeout    time.Duration
	retry      *ferrors.Policy
	timeoutKey *yaml.Node // where the spec sets them; nil: not set (a default)
	retryKey   *yaml.Node
}

// componentStep makes a step of a step component: its spec decoded from
// the kind's value, its name (explicit, or what the spec says made
// unique), its service built with the constructor, and the positions of
// the keys it needs. Each further instance of the step calls the
// constructor again (see Config.Builder).
func (l *loader) componentStep(fx *flowCtx, kind string, kf field, explicit string) (stepDef, ownModifiers, bool) {
	f := fx.f
	c, _ := l.cfg.comps.Lookup(component.KindStep, kind)
	if c.Restricted != "" && !l.reg.Allowed(kind) {
		l.at(f, kf.key, "%s: %s is disabled: enable it with flowrun --allow-%s (config.Allow(%q) in Go)", kind, c.Restricted, kind, kind)
		return stepDef{}, ownModifiers{}, false
	}
	spec := c.NewSpec()
	dec, err := decodeSpec(f, kf.val, kind, spec, l.cfg.comps, l.tpl)
	if err != nil {
		if es, ok := err.(Errors); ok {
			l.errs = append(l.errs, es...)
		} else {
			l.at(f, kf.key, "%s: %v", kind, err)
		}
		return stepDef{}, ownModifiers{}, false
	}
	name := explicit
	if name == "" {
		name = fx.unique(c.StepName(spec))
	} else {
		fx.used[name] = true
	}
	env := l.env
	env.Name = name
	svc, err := c.BuildStep(env, spec)
	if err != nil {
		l.errs = append(l.errs, dec.Error(kind, err)...)
		return stepDef{}, ownModifiers{}, false
	}
	fx.at(name, kf.key)
	if ct, ok := svc.(flow.Contractor); ok {
		if needs := ct.Contract().Needs; len(needs) > 0 {
			kp := map[string]pos{}
			for _, k := range needs {
				if p, ok := dec.readPos(k.Name); ok {
					kp[k.Name] = p
				} else {
					kp[k.Name] = posOf(f, kf.key)
				}
			}
			fx.keyPos[name] = kp
		}
	}
	spare := &spareService{svc: svc}
	def := stepDef{name: name, make: func() flow.Service {
		s := spare.take()
		if s == nil {
			var err error
			if s, err = c.BuildStep(env, spec); err != nil {
				return brokenStep(name, fmt.Errorf("%s: %w", kind, err))
			}
		}
		return renamed(name, s)
	}}
	return def, ownModifiersOf(spec, dec), true
}

// ownModifiersOf reads the timeout and retry fields of a step spec.
func ownModifiersOf(spec any, dec *Decoded) ownModifiers {
	var m ownModifiers
	v := reflect.ValueOf(spec).Elem()
	for _, fd := range component.Fields(v.Type()) {
		fv := v.Field(fd.Index)
		switch {
		case fd.Name == "timeout" && fd.Type == durationType:
			m.timeout = time.Duration(fv.Int())
			if dec.Has("timeout") {
				m.timeoutKey = dec.keyNode("timeout")
			}
		case fd.Name == "retry" && fd.Type == policyType:
			if dec.Has("retry") {
				p := fv.Interface().(ferrors.Policy)
				m.retry, m.retryKey = &p, dec.keyNode("retry")
			}
		case fd.Name == "retry" && fd.Type == reflect.PointerTo(policyType):
			if !fv.IsNil() {
				m.retry = fv.Interface().(*ferrors.Policy)
			}
			if dec.Has("retry") {
				m.retryKey = dec.keyNode("retry")
			}
		}
	}
	return m
}

// callStep makes a call step: an instance of the called flow of its own
// for each instance of the step.
func (l *loader) callStep(fx *flowCtx, kf field, explicit string) (stepDef, bool) {
	f, n := fx.f, kf.val
	flowName, ok := l.name(f, n, "call")
	if !ok {
		return stepDef{}, false
	}
	target := l.target(flowName)
	fx.def.calls = append(fx.def.calls, callRef{flow: flowName, at: posOf(f, n), target: target})
	caller := fx.def
	name := explicit
	if name == "" {
		name = fx.unique("call(" + flowName + ")")
	} else {
		fx.used[name] = true
	}
	fx.at(name, kf.key)
	return stepDef{name: name, make: func() flow.Service { return target.instance(name, caller) }}, true
}

// target returns the call target of the flow named name.
func (l *loader) target(name string) *callTarget {
	if l.targets == nil {
		l.targets = map[string]*callTarget{}
	}
	t, ok := l.targets[name]
	if !ok {
		t = &callTarget{name: name}
		l.targets[name] = t
	}
	return t
}

// useStep resolves a registered service: `use: name` (with optional
// `with:` arguments for a factory), or a bare name.
func (l *loader) useStep(fx *flowCtx, at, n, with *yaml.Node, explicit *string) (stepDef, bool) {
	f := fx.f
	svcName, ok := l.name(f, n, "use")
	if !ok {
		return stepDef{}, false
	}
	reg, found := l.reg.lookup(svcName)
	if !found {
		hint := suggest(svcName, l.reg.names())
		if slices.Contains(l.stepKinds, svcName) {
			hint = fmt.Sprintf(" (%s is a step kind: write `%s: ...`)", svcName, svcName)
		}
		known := "none are registered"
		if names := l.reg.names(); len(names) > 0 {
			known = "registered: " + oneOf(names)
		}
		l.at(f, n, "use: unknown service %q (%s)%s", svcName, known, hint)
		return stepDef{}, false
	}
	name := ""
	if explicit != nil {
		name = *explicit
	}
	if name == "" {
		name = fx.unique(svcName)
	} else {
		fx.used[name] = true
	}
	var svc flow.Service // the service the step is checked with at load
	var def stepDef
	if reg.factory != nil {
		var args Args
		if with != nil {
			v, ok := l.value(f, with, "use: with")
			if !ok {
				return stepDef{}, false
			}
			m, isMap := v.(map[string]any)
			if !isMap {
				l.at(f, with, "use: with: expected a mapping of arguments, got %s", describe(with))
				return stepDef{}, false
			}
			args.m = m
		}
		s, err := safeFactory(reg.factory, name, args)
		if err != nil {
			where := n
			if with != nil {
				where = with
			}
			l.at(f, where, "use %s: %v", svcName, err)
			return stepDef{}, false
		}
		svc = s
		spare := &spareService{svc: s}
		def = stepDef{name: name, make: func() flow.Service {
			s := spare.take()
			if s == nil {
				var err error
				if s, err = safeFactory(reg.factory, name, args); err != nil {
					return brokenStep(name, fmt.Errorf("use %s: %w", svcName, err))
				}
			}
			return renamed(name, s)
		}}
	} else {
		if with != nil {
			l.at(f, with, "use %s: takes no arguments (with:); it was registered as a ready service", svcName)
			return stepDef{}, false
		}
		svc = reg.svc
		def = stepDef{name: name, make: func() flow.Service { return reg.owner(name) }}
	}
	fx.at(name, at)
	if ct, ok := svc.(flow.Contractor); ok {
		kp := map[string]pos{}
		for _, k := range ct.Contract().Needs {
			kp[k.Name] = posOf(f, n)
		}
		fx.keyPos[name] = kp
	}
	return def, true
}

// renamed returns svc under name (see flow.Named).
func renamed(name string, svc flow.Service) flow.Service {
	if svc.Name() == name {
		return svc
	}
	return flow.Named(name, svc)
}

// safeFactory calls a user factory, turning a panic or a nil service into
// an error.
func safeFactory(fn Factory, name string, args Args) (svc flow.Service, err error) {
	defer func() {
		if r := recover(); r != nil {
			svc, err = nil, fmt.Errorf("factory panicked: %v", r)
		}
	}()
	svc, err = fn(name, args)
	if err == nil && svc == nil {
		err = fmt.Errorf("factory returned no service")
	}
	return svc, err
}

// ---- combinators ----

// combinator parses a combinator step.
func (l *loader) combinator(fx *flowCtx, kind string, kf field) (stepDef, bool) {
	f, n := fx.f, kf.val
	switch kind {
	case "then":
		steps, ok := l.steps(fx, n, "then")
		return combined(func(mk maker) flow.Service { return flow.Then(mk(steps)...) }), ok
	case "tap":
		if n.Kind == yaml.SequenceNode {
			steps, ok := l.steps(fx, n, "tap")
			return combined(func(mk maker) flow.Service { return flow.Tap(flow.Then(mk(steps)...)) }), ok
		}
		s, ok := l.parseStep(fx, n, false)
		return combined(func(mk maker) flow.Service { return flow.Tap(mk([]stepDef{s})[0]) }), ok
	case "all":
		return l.all(fx, n)
	case "saga":
		return l.saga(fx, n)
	case "fork":
		return l.fork(fx, n)
	case "when", "unless":
		keys := []string{"if", "steps"}
		if kind == "when" {
			keys = append(keys, "divert")
		}
		fs, ok := l.mapping(f, n, kind, keys)
		if !ok {
			return stepDef{}, false
		}
		divert := false
		if fd, ok := fs.get("divert"); ok {
			if divert, ok = l.boolean(f, fd.val, "when: divert"); !ok {
				return stepDef{}, false
			}
		}
		cond, okCond := l.condition(fx, fs, n, kind)
		steps, okSteps := l.stepsField(fx, fs, n, kind)
		if !okCond || !okSteps {
			return stepDef{}, false
		}
		if divert { // the combinator is divert(cond): its build errors point where when(cond)'s would
			from, to := "when("+cond+")", "divert("+cond+")"
			if kp, ok := fx.keyPos[from]; ok && fx.keyPos[to] == nil {
				fx.keyPos[to] = kp
			}
			if at, ok := fx.exprAt[from]; ok {
				if _, set := fx.exprAt[to]; !set {
					fx.exprAt[to] = at
				}
			}
			return combined(func(mk maker) flow.Service { return flow.Divert(cond, mk(steps)...) }), true
		}
		if kind == "when" {
			return combined(func(mk maker) flow.Service { return flow.When(cond, mk(steps)...) }), true
		}
		return combined(func(mk maker) flow.Service { return flow.Unless(cond, mk(steps)...) }), true
	case "until":
		fs, ok := l.mapping(f, n, kind, []string{"if", "max_loops", "steps"})
		if !ok {
			return stepDef{}, false
		}
		cond, okCond := l.condition(fx, fs, n, kind)
		steps, okSteps := l.stepsField(fx, fs, n, kind)
		good := okCond && okSteps
		maxLoops := 0
		if fd, ok := fs.get("max_loops"); ok {
			maxLoops, ok = l.integer(f, fd.val, "until: max_loops", 1, 1<<30)
			good = good && ok
		}
		return combined(func(mk maker) flow.Service {
			loop := flow.Until(cond, mk(steps)...)
			if maxLoops > 0 {
				loop.MaxLoops(maxLoops)
			}
			return loop
		}), good
	case "each":
		return l.each(fx, n)
	case "first":
		return l.first(fx, n)
	}
	l.at(f, kf.key, "step: unknown kind %q", kind)
	return stepDef{}, false
}

// condition reads the if: expression of a combinator.
func (l *loader) condition(fx *flowCtx, fs *fields, n *yaml.Node, what string) (string, bool) {
	fd, ok := fs.get("if")
	if !ok {
		l.at(fx.f, n, "%s: missing key \"if\" (the condition)", what)
		return "", false
	}
	e, ok := l.compileExpr(fx.f, fd.val, what+": if", true)
	if !ok {
		return "", false
	}
	name := what + "(" + e.Source() + ")"
	if what == "first" {
		name = "guard(" + e.Source() + ")"
	}
	fx.recordExprKeys(name, fd.val, e.Keys())
	if _, ok := fx.exprAt[name]; !ok {
		fx.exprAt[name] = exprLoc{f: fx.f, n: fd.val}
	}
	return e.Source(), true
}

// recordExprKeys remembers where a combinator's expression reads each key.
func (fx *flowCtx) recordExprKeys(step string, n *yaml.Node, keys []string) {
	if len(keys) == 0 {
		return
	}
	kp := fx.keyPos[step]
	if kp == nil {
		kp = map[string]pos{}
		fx.keyPos[step] = kp
	}
	for _, k := range keys {
		if _, ok := kp[k]; !ok {
			line, col := identPos(fx.f, n, k)
			kp[k] = posIn(fx.f, n, line, col)
		}
	}
}

// stepsField reads the steps: list of a combinator.
func (l *loader) stepsField(fx *flowCtx, fs *fields, n *yaml.Node, what string) ([]stepDef, bool) {
	fd, ok := fs.get("steps")
	if !ok {
		l.at(fx.f, n, "%s: missing key \"steps\"", what)
		return nil, false
	}
	return l.steps(fx, fd.val, what+": steps")
}

// all: [steps] or {steps: [...], limit: n}.
func (l *loader) all(fx *flowCtx, n *yaml.Node) (stepDef, bool) {
	if n.Kind == yaml.SequenceNode {
		steps, ok := l.steps(fx, n, "all")
		if !ok {
			return stepDef{}, false
		}
		return combined(func(mk maker) flow.Service { return flow.All(mk(steps)...) }), true
	}
	fs, ok := l.mapping(fx.f, n, "all", []string{"steps", "limit"})
	if !ok {
		return stepDef{}, false
	}
	steps, good := l.stepsField(fx, fs, n, "all")
	limit := 0
	if fd, ok := fs.get("limit"); ok {
		limit, ok = l.integer(fx.f, fd.val, "all: limit", 1, 1<<20)
		good = good && ok
	}
	return combined(func(mk maker) flow.Service {
		g := flow.All(mk(steps)...)
		if limit > 0 {
			g.Limit(limit)
		}
		return g
	}), good
}

// saga: [steps] or {steps: [...], compensation_timeout: 10s}; each step
// under it, at any depth, may carry compensate: a step or a list of steps.
func (l *loader) saga(fx *flowCtx, n *yaml.Node) (stepDef, bool) {
	stepsNode := n
	var fs *fields
	if n.Kind != yaml.SequenceNode {
		var ok bool
		if fs, ok = l.mapping(fx.f, n, "saga", []string{"steps", "compensation_timeout"}); !ok {
			return stepDef{}, false
		}
		fd, ok := fs.get("steps")
		if !ok {
			l.at(fx.f, n, "saga: missing key \"steps\"")
			return stepDef{}, false
		}
		stepsNode = fd.val
	}
	items, ok := l.seq(fx.f, stepsNode, "saga: steps")
	if !ok {
		return stepDef{}, false
	}
	if len(items) == 0 {
		l.at(fx.f, stepsNode, "saga: expected at least one step")
		return stepDef{}, false
	}
	var steps []stepDef
	good := true
	fx.sagas++ // compensate: anywhere under it
	for _, it := range items {
		s, ok := l.parseStep(fx, it, true)
		if ok {
			steps = append(steps, s)
		}
		good = good && ok
	}
	fx.sagas--
	var timeout time.Duration
	if fs != nil {
		if fd, ok := fs.get("compensation_timeout"); ok {
			timeout, ok = l.duration(fx.f, fd.val, "saga: compensation_timeout")
			good = good && ok
		}
	}
	return combined(func(mk maker) flow.Service {
		s := flow.Saga(mk(steps)...)
		if timeout > 0 {
			s.CompensationTimeout(timeout)
		}
		return s
	}), good
}

// fork: {on: expr, cases: {value: [steps]}, default: [steps]}.
func (l *loader) fork(fx *flowCtx, n *yaml.Node) (stepDef, bool) {
	f := fx.f
	fs, ok := l.mapping(f, n, "fork", []string{"on", "cases", "default"})
	if !ok {
		return stepDef{}, false
	}
	good := true
	var on string
	if fd, ok := fs.get("on"); ok {
		e, ok := l.compileExpr(f, fd.val, "fork: on", false)
		if ok {
			on = e.Source()
			fx.recordExprKeys("fork("+on+")", fd.val, e.Keys())
			if _, ok := fx.exprAt["fork("+on+")"]; !ok {
				fx.exprAt["fork("+on+")"] = exprLoc{f: f, n: fd.val}
			}
		}
		good = good && ok
	} else {
		l.at(f, n, "fork: missing key \"on\" (the key or expression to branch on)")
		good = false
	}
	type forkCase struct {
		value string
		steps []stepDef
	}
	var cases []forkCase
	if fd, ok := fs.get("cases"); ok {
		cs, ok := l.mapping(f, fd.val, "fork: cases", nil)
		good = good && ok
		if ok {
			for _, v := range cs.order {
				steps, ok := l.steps(fx, cs.m[v].val, fmt.Sprintf("fork: case %q", v))
				good = good && ok
				cases = append(cases, forkCase{value: v, steps: steps})
			}
		}
	}
	var deflt []stepDef
	hasDefault := false
	if fd, ok := fs.get("default"); ok {
		var ok bool
		deflt, ok = l.steps(fx, fd.val, "fork: default")
		good = good && ok
		hasDefault = true
	}
	if !fs.has("cases") && !fs.has("default") {
		l.at(f, n, "fork: expected cases (and optionally a default)")
		good = false
	}
	return combined(func(mk maker) flow.Service {
		fcs := make([]flow.Case, 0, len(cases)+1)
		for _, c := range cases {
			fcs = append(fcs, flow.On(c.value, mk(c.steps)...))
		}
		if hasDefault {
			fcs = append(fcs, flow.Default(mk(deflt)...))
		}
		return flow.Fork(on, fcs...)
	}), good
}

var eachKeys = []string{"over", "as", "index", "concurrency", "collect", "steps"}

// each: {over: key, as: item, index: index, concurrency: n,
// collect: {from: key, into: key}, steps: [...]}.
func (l *loader) each(fx *flowCtx, n *yaml.Node) (stepDef, bool) {
	f := fx.f
	fs, ok := l.mapping(f, n, "each", eachKeys)
	if !ok {
		return stepDef{}, false
	}
	good := true
	var over string
	if fd, ok := fs.get("over"); ok {
		over, ok = l.name(f, fd.val, "each: over")
		good = good && ok
		fx.recordExprKeys("each("+over+")", fd.val, []string{over})
	} else {
		l.at(f, n, "each: missing key \"over\" (the key holding the list)")
		good = false
	}
	steps, ok := l.stepsField(fx, fs, n, "each")
	good = good && ok
	var opts []func(*flow.Iter)
	if fd, ok := fs.get("as"); ok {
		v, ok := l.name(f, fd.val, "each: as")
		good = good && ok
		opts = append(opts, func(it *flow.Iter) { it.As(v) })
	}
	if fd, ok := fs.get("index"); ok {
		v, ok := l.name(f, fd.val, "each: index")
		good = good && ok
		opts = append(opts, func(it *flow.Iter) { it.Index(v) })
	}
	if fd, ok := fs.get("concurrency"); ok {
		v, ok := l.integer(f, fd.val, "each: concurrency", 1, 1<<16)
		good = good && ok
		opts = append(opts, func(it *flow.Iter) { it.Concurrency(v) })
	}
	if fd, ok := fs.get("collect"); ok {
		cs, ok := l.mapping(f, fd.val, "each: collect", []string{"from", "into"})
		good = good && ok
		if ok {
			from, okFrom := fs2name(l, f, cs, fd.val, "each: collect", "from")
			into, okInto := fs2name(l, f, cs, fd.val, "each: collect", "into")
			good = good && okFrom && okInto
			opts = append(opts, func(it *flow.Iter) { it.Collect(from, into) })
		}
	}
	return combined(func(mk maker) flow.Service {
		it := flow.Each(over, mk(steps)...)
		for _, o := range opts {
			o(it)
		}
		return it
	}), good
}

// fs2name reads a required name field of a mapping.
func fs2name(l *loader, f *srcFile, fs *fields, n *yaml.Node, what, key string) (string, bool) {
	fd, ok := fs.get(key)
	if !ok {
		l.at(f, n, "%s: missing key %q", what, key)
		return "", false
	}
	return l.name(f, fd.val, what+": "+key)
}

// first: [{if: cond, steps: [...]}, ...].
func (l *loader) first(fx *flowCtx, n *yaml.Node) (stepDef, bool) {
	items, ok := l.seq(fx.f, n, "first")
	if !ok {
		return stepDef{}, false
	}
	if len(items) == 0 {
		l.at(fx.f, n, "first: expected at least one {if, steps} candidate")
		return stepDef{}, false
	}
	good := true
	type candidate struct {
		cond  string
		steps []stepDef
	}
	var cands []candidate
	for _, it := range items {
		fs, ok := l.mapping(fx.f, it, "first", []string{"if", "steps"})
		if !ok {
			good = false
			continue
		}
		cond, okCond := l.condition(fx, fs, it, "first")
		steps, okSteps := l.stepsField(fx, fs, it, "first")
		good = good && okCond && okSteps
		if okCond {
			fx.at("guard("+cond+")", it)
		}
		cands = append(cands, candidate{cond: cond, steps: steps})
	}
	return combined(func(mk maker) flow.Service {
		gs := make([]flow.Candidate, len(cands))
		for i, c := range cands {
			gs[i] = flow.Guard(c.cond, mk(c.steps)...)
		}
		return flow.First(gs...)
	}), good
}

// ---- compensation ----

// undoDef is the compensation of a saga step, built as a flow of its own
// for each instance of the flow holding it, once that flow is built.
type undoDef struct {
	name   string
	at     pos
	steps  []stepDef
	pos    map[string]pos
	keyPos map[string]map[string]pos
	exprAt map[string]exprLoc
	// input is what the compensation may read, known once the flow holding
	// it is built (ready); the instances made before wait in pending.
	input   []fc.Info
	ready   bool
	pending []*undoRun
}

// undoRun is the compensation of one instance of a saga step.
type undoRun struct {
	name string
	f    *flow.Flow
	err  error
}

func (r *undoRun) run(ctx context.Context, c *fc.Context, cause error) error {
	if r.f == nil {
		return fmt.Errorf("%s: not built: %w", r.name, r.err)
	}
	return r.f.RunContext(ctx, c)
}

// instance returns the compensation of a new instance of the step.
func (u *undoDef) instance() flow.CompensateFunc {
	r := &undoRun{name: u.name, err: errors.New("the flow holding it is not built")}
	if u.ready {
		r.f, r.err = u.build()
	} else {
		u.pending = append(u.pending, r)
	}
	return r.run
}

// build builds an instance of the compensation.
func (u *undoDef) build() (*flow.Flow, error) {
	return flow.New(u.name, makeAll(u.steps)...).Input(u.input...).Build()
}

func (l *loader) undo(fx *flowCtx, step stepDef, fd field) (*undoDef, bool) {
	u := &undoDef{name: fx.def.name + ".compensate(" + step.name + ")", at: posOf(fx.f, fd.key),
		pos: map[string]pos{}, keyPos: map[string]map[string]pos{}, exprAt: map[string]exprLoc{}}
	ux := &flowCtx{def: fx.def, f: fx.f, pos: u.pos, keyPos: u.keyPos, exprAt: u.exprAt,
		reserved: map[string]bool{}, named: map[string]*yaml.Node{}, used: map[string]bool{}, depth: fx.depth}
	ux.reserve(fd.val, 0)
	var ok bool
	if fd.val.Kind == yaml.SequenceNode {
		u.steps, ok = l.steps(ux, fd.val, "compensate")
	} else {
		var s stepDef
		if s, ok = l.parseStep(ux, fd.val, false); ok {
			u.steps = []stepDef{s}
		}
	}
	if !ok {
		return nil, false
	}
	fx.def.undos = append(fx.def.undos, u)
	return u, true
}

// buildUndo builds a compensation once its flow is built (as f): it may
// read the flow's input and any key a step of the flow provides. The
// instances of the compensation made so far are built too.
func (l *loader) buildUndo(def *flowDef, built *flow.Flow, u *undoDef) {
	known := map[string]bool{}
	var input []fc.Info
	add := func(k fc.KeyInfo) {
		if !known[k.Name] {
			known[k.Name] = true
			input = append(input, fc.KeyInfo{Name: k.Name, Optional: true})
		}
	}
	for _, k := range def.input {
		add(k)
	}
	var walk func(n *flow.Node)
	walk = func(n *flow.Node) {
		for _, k := range n.Provides {
			add(k)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(built.Graph())
	u.input, u.ready = input, true
	runs := u.pending
	u.pending = nil
	if len(runs) == 0 {
		runs = []*undoRun{{name: u.name}}
	}
	for i, r := range runs {
		r.f, r.err = u.build()
		if i == 0 && r.err != nil {
			l.buildErrors(u.at, u.pos, u.keyPos, u.exprAt, r.err, nil)
		}
	}
}

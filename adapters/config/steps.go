package config

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
	yaml "go.yaml.in/yaml/v4"
)

// The step kinds of the format: services, then combinators.
var (
	leafKinds  = []string{"set", "stop", "log", "http", "template", "sleep", "call", "shell", "use"}
	comboKinds = []string{"fork", "when", "unless", "all", "each", "until", "first", "saga", "tap", "then"}
	modifiers  = []string{"name", "retry", "timeout", "compensate", "with"}
	stepKinds  = append(slices.Clone(leafKinds), comboKinds...)
	stepKeys   = append(slices.Clone(stepKinds), modifiers...)
)

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
func (l *loader) steps(fx *flowCtx, n *yaml.Node, what string) ([]flow.Service, bool) {
	items, ok := l.seq(fx.f, n, what)
	if !ok {
		return nil, false
	}
	if len(items) == 0 {
		l.at(fx.f, n, "%s: expected at least one step", what)
		return nil, false
	}
	out := make([]flow.Service, 0, len(items))
	good := true
	for _, it := range items {
		s, ok := l.step(fx, it, false)
		if ok {
			out = append(out, s)
		}
		good = good && ok
	}
	return out, good
}

// step parses one step: a mapping with one kind key and optional
// modifiers (name, retry, timeout, compensate in a saga, with for use), or
// a bare service name (a use).
func (l *loader) step(fx *flowCtx, n *yaml.Node, inSaga bool) (flow.Service, bool) {
	f := fx.f
	n = f.deref(n)
	l.budget--
	if l.budget == -1 {
		l.at(f, n, "too many steps (more than %d, aliases expanded)", maxSteps)
	}
	if l.budget < 0 {
		return nil, false
	}
	if fx.depth >= maxDepth {
		l.at(f, n, "steps nested too deeply (more than %d levels)", maxDepth)
		return nil, false
	}
	fx.depth++
	defer func() { fx.depth-- }()

	if n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		return l.useStep(fx, n, n, nil, nil)
	}
	fs, ok := l.mapping(f, n, "step", stepKeys)
	if !ok {
		return nil, false
	}
	var kinds []string
	for _, k := range fs.order {
		if slices.Contains(stepKinds, k) {
			kinds = append(kinds, k)
		}
	}
	switch len(kinds) {
	case 0:
		l.at(f, n, "step: expected a step kind: one of %s, or a registered service name", joinKinds())
		return nil, false
	case 1:
	default:
		second := fs.m[kinds[1]]
		l.at(f, second.key, "step: more than one step kind (%s and %s): put each in its own list item", kinds[0], kinds[1])
		return nil, false
	}
	kind := kinds[0]
	kf := fs.m[kind]
	leaf := slices.Contains(leafKinds, kind)

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
		if !inSaga {
			l.at(f, fd.key, "step: compensate: only steps directly inside a saga have compensations")
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

	var svc flow.Service
	var spec *leafSpec
	if leaf {
		if kind == "use" {
			var with *yaml.Node
			if fd, ok := fs.get("with"); ok {
				with = fd.val
			}
			s, ok := l.useStep(fx, kf.key, kf.val, with, &explicit)
			if !ok {
				return nil, false
			}
			svc = s
		} else {
			spec, ok = l.leaf(fx, kind, kf)
			if !ok || !good {
				return nil, false
			}
			name := explicit
			if name == "" {
				name = fx.unique(spec.defName)
			} else {
				fx.used[name] = true
			}
			svc = spec.make(name)
			fx.at(name, kf.key)
			if len(spec.keyPos) > 0 {
				kp := map[string]pos{}
				for k, kn := range spec.keyPos {
					line, col := identPos(f, kn, k)
					kp[k] = posIn(f, kn, line, col)
				}
				fx.keyPos[name] = kp
			}
		}
	} else {
		s, ok := l.combinator(fx, kind, kf)
		if !ok {
			return nil, false
		}
		svc = s
		fx.at(svc.Name(), kf.key)
	}
	if !good {
		return nil, false
	}

	// Resilience: a step-level key, or the kind's own (http).
	if spec != nil && spec.policy != nil && hasRetry {
		l.at(f, retry.key, "step: retry: set in %s already (line %d); keep one", kind, spec.policyNode.Line)
		return nil, false
	}
	if hasTimeout {
		d, ok := l.duration(f, timeout.val, "step: timeout")
		if !ok {
			return nil, false
		}
		svc = flow.Timeout(svc, d)
	} else if spec != nil && spec.timeout > 0 {
		svc = flow.Timeout(svc, spec.timeout)
	}
	if hasRetry {
		p, ok := l.policy(f, retry.val, "step: retry")
		if !ok {
			return nil, false
		}
		svc = flow.Retry(svc, *p)
	} else if spec != nil && spec.policy != nil {
		svc = flow.Retry(svc, *spec.policy)
	}
	if hasUndo {
		undo, ok := l.undo(fx, svc.Name(), compensate)
		if !ok {
			return nil, false
		}
		svc = flow.Compensate(svc, undo)
	}
	return svc, true
}

func joinKinds() string {
	s := ""
	for i, k := range stepKinds {
		if i > 0 {
			s += ", "
		}
		s += k
	}
	return s
}

// leaf parses a built-in service step.
func (l *loader) leaf(fx *flowCtx, kind string, kf field) (*leafSpec, bool) {
	f, n := fx.f, kf.val
	switch kind {
	case "set":
		return l.parseSet(f, n)
	case "stop":
		return l.parseStop(f, n)
	case "log":
		return l.parseLog(f, n)
	case "http":
		return l.parseHTTP(f, n)
	case "template":
		return l.parseTemplateStep(f, n)
	case "sleep":
		return l.parseSleep(f, n)
	case "shell":
		return l.parseShell(f, kf.key, n)
	case "call":
		name, ok := l.name(f, n, "call")
		if !ok {
			return nil, false
		}
		target := l.target(name)
		fx.def.calls = append(fx.def.calls, callRef{flow: name, at: posOf(f, n), target: target})
		caller := fx.def
		return &leafSpec{defName: "call(" + name + ")", make: func(step string) flow.Service {
			return &callService{name: step, target: target, caller: caller}
		}}, true
	}
	l.at(f, kf.key, "step: unknown kind %q", kind)
	return nil, false
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
func (l *loader) useStep(fx *flowCtx, at, n, with *yaml.Node, explicit *string) (flow.Service, bool) {
	f := fx.f
	svcName, ok := l.name(f, n, "use")
	if !ok {
		return nil, false
	}
	reg, found := l.reg.lookup(svcName)
	if !found {
		hint := suggest(svcName, l.reg.names())
		if slices.Contains(stepKinds, svcName) {
			hint = fmt.Sprintf(" (%s is a step kind: write `%s: ...`)", svcName, svcName)
		}
		known := "none are registered"
		if names := l.reg.names(); len(names) > 0 {
			known = "registered: " + oneOf(names)
		}
		l.at(f, n, "use: unknown service %q (%s)%s", svcName, known, hint)
		return nil, false
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
	var svc flow.Service
	if reg.factory != nil {
		var args Args
		if with != nil {
			v, ok := l.value(f, with, "use: with")
			if !ok {
				return nil, false
			}
			m, isMap := v.(map[string]any)
			if !isMap {
				l.at(f, with, "use: with: expected a mapping of arguments, got %s", describe(with))
				return nil, false
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
			return nil, false
		}
		svc = s
	} else {
		if with != nil {
			l.at(f, with, "use %s: takes no arguments (with:); it was registered as a ready service", svcName)
			return nil, false
		}
		svc = reg.svc
	}
	if svc.Name() != name {
		svc = flow.Named(name, svc)
	}
	fx.at(name, at)
	if ct, ok := svc.(flow.Contractor); ok {
		kp := map[string]pos{}
		for _, k := range ct.Contract().Needs {
			kp[k.Name] = posOf(f, n)
		}
		fx.keyPos[name] = kp
	}
	return svc, true
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

func (l *loader) combinator(fx *flowCtx, kind string, kf field) (flow.Service, bool) {
	f, n := fx.f, kf.val
	switch kind {
	case "then":
		steps, ok := l.steps(fx, n, "then")
		if !ok {
			return nil, false
		}
		return flow.Then(steps...), true
	case "tap":
		if n.Kind == yaml.SequenceNode {
			steps, ok := l.steps(fx, n, "tap")
			if !ok {
				return nil, false
			}
			return flow.Tap(flow.Then(steps...)), true
		}
		s, ok := l.step(fx, n, false)
		if !ok {
			return nil, false
		}
		return flow.Tap(s), true
	case "all":
		return l.all(fx, n)
	case "saga":
		return l.saga(fx, n)
	case "fork":
		return l.fork(fx, n)
	case "when", "unless":
		fs, ok := l.mapping(f, n, kind, []string{"if", "steps"})
		if !ok {
			return nil, false
		}
		cond, okCond := l.condition(fx, fs, n, kind)
		steps, okSteps := l.stepsField(fx, fs, n, kind)
		if !okCond || !okSteps {
			return nil, false
		}
		if kind == "when" {
			return flow.When(cond, steps...), true
		}
		return flow.Unless(cond, steps...), true
	case "until":
		fs, ok := l.mapping(f, n, kind, []string{"if", "max_loops", "steps"})
		if !ok {
			return nil, false
		}
		cond, okCond := l.condition(fx, fs, n, kind)
		steps, okSteps := l.stepsField(fx, fs, n, kind)
		loop := flow.Until(cond, steps...)
		good := okCond && okSteps
		if fd, ok := fs.get("max_loops"); ok {
			m, ok := l.integer(f, fd.val, "until: max_loops", 1, 1<<30)
			good = good && ok
			loop.MaxLoops(m)
		}
		return loop, good
	case "each":
		return l.each(fx, n)
	case "first":
		return l.first(fx, n)
	}
	l.at(f, kf.key, "step: unknown kind %q", kind)
	return nil, false
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
	fx.recordExprKeys(name, fd.val, e.Idents())
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
func (l *loader) stepsField(fx *flowCtx, fs *fields, n *yaml.Node, what string) ([]flow.Service, bool) {
	fd, ok := fs.get("steps")
	if !ok {
		l.at(fx.f, n, "%s: missing key \"steps\"", what)
		return nil, false
	}
	return l.steps(fx, fd.val, what+": steps")
}

// all: [steps] or {steps: [...], limit: n}.
func (l *loader) all(fx *flowCtx, n *yaml.Node) (flow.Service, bool) {
	if n.Kind == yaml.SequenceNode {
		steps, ok := l.steps(fx, n, "all")
		if !ok {
			return nil, false
		}
		return flow.All(steps...), true
	}
	fs, ok := l.mapping(fx.f, n, "all", []string{"steps", "limit"})
	if !ok {
		return nil, false
	}
	steps, good := l.stepsField(fx, fs, n, "all")
	g := flow.All(steps...)
	if fd, ok := fs.get("limit"); ok {
		lim, ok := l.integer(fx.f, fd.val, "all: limit", 1, 1<<20)
		good = good && ok
		g.Limit(lim)
	}
	return g, good
}

// saga: [steps] or {steps: [...], compensation_timeout: 10s}; each step
// may carry compensate: a step or a list of steps.
func (l *loader) saga(fx *flowCtx, n *yaml.Node) (flow.Service, bool) {
	stepsNode := n
	var fs *fields
	if n.Kind != yaml.SequenceNode {
		var ok bool
		if fs, ok = l.mapping(fx.f, n, "saga", []string{"steps", "compensation_timeout"}); !ok {
			return nil, false
		}
		fd, ok := fs.get("steps")
		if !ok {
			l.at(fx.f, n, "saga: missing key \"steps\"")
			return nil, false
		}
		stepsNode = fd.val
	}
	items, ok := l.seq(fx.f, stepsNode, "saga: steps")
	if !ok {
		return nil, false
	}
	if len(items) == 0 {
		l.at(fx.f, stepsNode, "saga: expected at least one step")
		return nil, false
	}
	var steps []flow.Service
	good := true
	for _, it := range items {
		s, ok := l.step(fx, it, true)
		if ok {
			steps = append(steps, s)
		}
		good = good && ok
	}
	s := flow.Saga(steps...)
	if fs != nil {
		if fd, ok := fs.get("compensation_timeout"); ok {
			d, ok := l.duration(fx.f, fd.val, "saga: compensation_timeout")
			good = good && ok
			s.CompensationTimeout(d)
		}
	}
	return s, good
}

// fork: {on: expr, cases: {value: [steps]}, default: [steps]}.
func (l *loader) fork(fx *flowCtx, n *yaml.Node) (flow.Service, bool) {
	f := fx.f
	fs, ok := l.mapping(f, n, "fork", []string{"on", "cases", "default"})
	if !ok {
		return nil, false
	}
	good := true
	var on string
	if fd, ok := fs.get("on"); ok {
		e, ok := l.compileExpr(f, fd.val, "fork: on", false)
		if ok {
			on = e.Source()
			fx.recordExprKeys("fork("+on+")", fd.val, e.Idents())
			if _, ok := fx.exprAt["fork("+on+")"]; !ok {
				fx.exprAt["fork("+on+")"] = exprLoc{f: f, n: fd.val}
			}
		}
		good = good && ok
	} else {
		l.at(f, n, "fork: missing key \"on\" (the key or expression to branch on)")
		good = false
	}
	var cases []flow.Case
	if fd, ok := fs.get("cases"); ok {
		cs, ok := l.mapping(f, fd.val, "fork: cases", nil)
		good = good && ok
		if ok {
			for _, v := range cs.order {
				steps, ok := l.steps(fx, cs.m[v].val, fmt.Sprintf("fork: case %q", v))
				good = good && ok
				cases = append(cases, flow.On(v, steps...))
			}
		}
	}
	if fd, ok := fs.get("default"); ok {
		steps, ok := l.steps(fx, fd.val, "fork: default")
		good = good && ok
		cases = append(cases, flow.Default(steps...))
	}
	if !fs.has("cases") && !fs.has("default") {
		l.at(f, n, "fork: expected cases (and optionally a default)")
		good = false
	}
	return flow.Fork(on, cases...), good
}

var eachKeys = []string{"over", "as", "index", "concurrency", "collect", "steps"}

// each: {over: key, as: item, index: index, concurrency: n,
// collect: {from: key, into: key}, steps: [...]}.
func (l *loader) each(fx *flowCtx, n *yaml.Node) (flow.Service, bool) {
	f := fx.f
	fs, ok := l.mapping(f, n, "each", eachKeys)
	if !ok {
		return nil, false
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
	it := flow.Each(over, steps...)
	if fd, ok := fs.get("as"); ok {
		v, ok := l.name(f, fd.val, "each: as")
		good = good && ok
		it.As(v)
	}
	if fd, ok := fs.get("index"); ok {
		v, ok := l.name(f, fd.val, "each: index")
		good = good && ok
		it.Index(v)
	}
	if fd, ok := fs.get("concurrency"); ok {
		v, ok := l.integer(f, fd.val, "each: concurrency", 1, 1<<16)
		good = good && ok
		it.Concurrency(v)
	}
	if fd, ok := fs.get("collect"); ok {
		cs, ok := l.mapping(f, fd.val, "each: collect", []string{"from", "into"})
		good = good && ok
		if ok {
			from, okFrom := fs2name(l, f, cs, fd.val, "each: collect", "from")
			into, okInto := fs2name(l, f, cs, fd.val, "each: collect", "into")
			good = good && okFrom && okInto
			it.Collect(from, into)
		}
	}
	return it, good
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
func (l *loader) first(fx *flowCtx, n *yaml.Node) (flow.Service, bool) {
	items, ok := l.seq(fx.f, n, "first")
	if !ok {
		return nil, false
	}
	if len(items) == 0 {
		l.at(fx.f, n, "first: expected at least one {if, steps} candidate")
		return nil, false
	}
	good := true
	var cands []flow.Candidate
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
		cands = append(cands, flow.Guard(cond, steps...))
	}
	return flow.First(cands...), good
}

// ---- compensation ----

// undoDef is the compensation of a saga step, built as a flow of its own
// once the flow holding it is built.
type undoDef struct {
	name   string
	at     pos
	steps  []flow.Service
	pos    map[string]pos
	keyPos map[string]map[string]pos
	exprAt map[string]exprLoc
	built  *flow.Flow
}

func (l *loader) undo(fx *flowCtx, step string, fd field) (flow.CompensateFunc, bool) {
	u := &undoDef{name: fx.def.name + ".compensate(" + step + ")", at: posOf(fx.f, fd.key),
		pos: map[string]pos{}, keyPos: map[string]map[string]pos{}, exprAt: map[string]exprLoc{}}
	ux := &flowCtx{def: fx.def, f: fx.f, pos: u.pos, keyPos: u.keyPos, exprAt: u.exprAt,
		reserved: map[string]bool{}, named: map[string]*yaml.Node{}, used: map[string]bool{}, depth: fx.depth}
	ux.reserve(fd.val, 0)
	var ok bool
	if fd.val.Kind == yaml.SequenceNode {
		u.steps, ok = l.steps(ux, fd.val, "compensate")
	} else {
		var s flow.Service
		if s, ok = l.step(ux, fd.val, false); ok {
			u.steps = []flow.Service{s}
		}
	}
	if !ok {
		return nil, false
	}
	fx.def.undos = append(fx.def.undos, u)
	return func(ctx context.Context, c *fc.Context, cause error) error {
		if u.built == nil {
			return fmt.Errorf("%s: not built", u.name)
		}
		return u.built.RunContext(ctx, c)
	}, true
}

// buildUndo builds a compensation once its flow is built (as f): it may
// read the flow's input and any key a step of the flow provides.
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
	f, err := flow.New(u.name, u.steps...).Input(input...).Build()
	if err != nil {
		l.buildErrors(u.at, u.pos, u.keyPos, u.exprAt, err, nil)
		return
	}
	u.built = f
}

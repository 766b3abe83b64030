package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/branch"
	fc "github.com/svcflow/svcflow/context"
	ferrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/provide"
	yaml "go.yaml.in/yaml/v4"
)

// Version is the only version of the format this package reads.
const Version = 1

// Source is one configuration file's name (used in error positions) and
// content.
type Source struct {
	Name string
	Data []byte
}

// Option configures loading.
type Option func(*options)

type options struct {
	reg       *Registry
	comps     *component.Registry
	sets      []string
	lookupEnv func(string) (string, bool)
	dataDir   string
}

// WithRegistry loads with the services of r (default: a new registry with
// the built-ins only).
func WithRegistry(r *Registry) Option { return func(o *options) { o.reg = r } }

// WithComponents reads the components that configurations name from r:
// the step kinds of flows (set, stop, http, ...: adapters/steps registers
// the shipped ones) and the sources and stores of channels (default:
// [component.Default], where component packages register themselves).
func WithComponents(r *component.Registry) Option { return func(o *options) { o.comps = r } }

// WithDataDir is the folder where the components of the providers:
// section keep their files by default (a cache's SQLite file); default:
// the working directory.
func WithDataDir(dir string) Option { return func(o *options) { o.dataDir = dir } }

// WithSet overrides values of the loaded YAML before it is read, each
// given as "path=value": path is dotted mapping keys and list indexes
// (vars.api_url, flows.orders.retry.max_attempts, flows.orders.steps.0.name),
// value is YAML (5, true, "text", {a: 1}). The value replaces the node at
// path, or adds the last key to an existing mapping.
func WithSet(sets ...string) Option { return func(o *options) { o.sets = append(o.sets, sets...) } }

// Config is a loaded configuration: its flows built and checked, its tests,
// its vars and the channel sections kept for the channel adapters.
type Config struct {
	reg        *Registry
	comps      *component.Registry
	files      []*srcFile
	vars       map[string]any
	flows      map[string]*flowDef
	order      []string
	suites     []*Suite
	channels   []Section
	services   []Section // see services.go
	production []Section // see production.go
	bus        []Section // see services.go
	providers  *provide.Container
	sets       []string // WithSet's overrides (see normal.go)
	lookupEnv  func(string) (string, bool)
	dataDir    string
}

// Load reads and checks the YAML files at paths. The error, if any, is
// [Errors]: every problem of every file, each at file:line:col.
func Load(paths []string, opts ...Option) (*Config, error) {
	var srcs []Source
	var errs Errors
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: fmt.Sprintf("cannot read: %v", err), Err: err})
			continue
		}
		srcs = append(srcs, Source{Name: p, Data: data})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return LoadSources(srcs, opts...)
}

// LoadSources is [Load] for files already in memory (embedded examples,
// tests).
func LoadSources(srcs []Source, opts ...Option) (*Config, error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.reg == nil {
		o.reg = NewRegistry()
	}
	if o.comps == nil {
		o.comps = component.Default()
	}
	if o.lookupEnv == nil {
		o.lookupEnv = os.LookupEnv
	}
	l := &loader{lookupEnv: o.lookupEnv, reg: o.reg, vars: map[string]any{}, cfg: &Config{reg: o.reg, comps: o.comps, flows: map[string]*flowDef{}, providers: provide.New()}, dataDir: o.dataDir}
	l.overrides = &varOverrides{}
	l.tpl = &tplEnv{funcs: templateFuncs(l.vars, l.overrides), vars: l.vars}
	l.env = o.reg.stepEnv()
	l.setKinds()
	l.cfg.sets, l.cfg.lookupEnv, l.cfg.dataDir = slices.Clone(o.sets), o.lookupEnv, o.dataDir
	l.load(srcs, o.sets)
	if len(l.errs) > 0 {
		l.errs = l.setErrors(o.sets)
		order := map[string]int{}
		for i, s := range srcs {
			if _, ok := order[s.Name]; !ok {
				order[s.Name] = i + 1
			}
		}
		return nil, l.errs.sort(order)
	}
	return l.cfg, nil
}

// loader is the state of one load.
type loader struct {
	sink
	reg       *Registry
	cfg       *Config
	vars      map[string]any
	tpl       *tplEnv       // what templates are parsed with
	env       component.Env // what step components are built with (but their names)
	stepKinds []string      // the step kinds: step components, call and use, combinators
	stepKeys  []string      // the keys of a step: its kinds and modifiers
	budget    int           // steps left to parse: aliases cannot blow up a load
	targets   map[string]*callTarget
	lookupEnv func(string) (string, bool)
	overrides *varOverrides          // vars replaced while a test case runs
	providers map[string]providerDef // the providers: entries, by name
	dataDir   string                 // where providers keep files (WithDataDir)
}

// maxSteps bounds the steps a configuration may hold, aliases expanded.
const maxSteps = 20_000

var topKeys = []string{"version", "vars", "providers", "flows", "channels", "services", "bus", "production", "tests"}

func (l *loader) load(srcs []Source, sets []string) {
	l.budget = maxSteps
	for _, s := range srcs {
		if f := l.parseFile(s); f != nil {
			l.interpolate(f, l.lookupEnv)
			l.cfg.files = append(l.cfg.files, f)
		}
	}
	l.applySets(sets)
	// Top level of each file; vars first, since templates read them.
	tops := make([]*fields, len(l.cfg.files))
	for i, f := range l.cfg.files {
		fs, ok := l.mapping(f, f.root, "top level", topKeys)
		if !ok {
			continue
		}
		tops[i] = fs
		if fd, ok := fs.get("version"); ok {
			if v, ok := l.integer(f, fd.val, "version", 0, 1<<30); ok && v != Version {
				l.at(f, fd.val, "version: expected %d, got %d", Version, v)
			}
		}
		if fd, ok := fs.get("vars"); ok {
			l.parseVars(f, fd.val)
		}
	}
	for i, f := range l.cfg.files {
		if fs := tops[i]; fs != nil {
			if fd, ok := fs.get("providers"); ok {
				l.parseProviders(f, fd.val)
			}
		}
	}
	l.aliasProviders()
	for i, f := range l.cfg.files {
		fs := tops[i]
		if fs == nil {
			continue
		}
		if fd, ok := fs.get("flows"); ok {
			l.parseFlows(f, fd.val)
		}
		if fd, ok := fs.get("channels"); ok {
			if cs, ok := l.mapping(f, fd.val, "channels", nil); ok {
				for _, name := range cs.order {
					c := cs.m[name]
					l.cfg.channels = append(l.cfg.channels, Section{File: f.name, Name: name, section: "channels", file: f, key: c.key, node: c.val, comps: l.cfg.comps, tpl: l.tpl})
				}
			}
		}
		l.parseServices(f, fs)
		l.parseBus(f, fs)
		l.parseProduction(f, fs)
		if !fs.has("flows") && !fs.has("channels") && !fs.has("services") && !fs.has("bus") && !fs.has("production") && !fs.has("tests") && fs.unknown == 0 {
			l.at(f, f.root, "top level: expected flows (and optionally vars, tests, channels)")
		}
	}
	l.cfg.vars = l.vars
	l.buildFlows()
	for i, f := range l.cfg.files {
		if fs := tops[i]; fs != nil {
			if fd, ok := fs.get("tests"); ok {
				l.parseTests(f, fd.val)
			}
		}
	}
}

// parseFile decodes a file into nodes, reporting syntax errors with their
// position.
func (l *loader) parseFile(s Source) (f *srcFile) {
	f = &srcFile{name: s.Name, src: s.Data, lines: strings.Split(string(s.Data), "\n")}
	if len(bytes.TrimSpace(stripComments(s.Data))) == 0 {
		l.atPos(f, 1, 1, nil, "empty file: expected a mapping with version and flows")
		return nil
	}
	var doc yaml.Node
	if err := parseLenient(s.Data, &doc); err != nil {
		var le *yaml.LoadError
		switch {
		case errors.As(err, &le) && le.Mark.Line > 0 && tabIndent(f, le.Mark.Line) > 0:
			l.atPos(f, le.Mark.Line, tabIndent(f, le.Mark.Line), err, "bad YAML: indentation needs spaces, not tabs (a tab indents this line)")
		case errors.As(err, &le) && le.Mark.Line > 0:
			msg := le.Message
			if le.ContextMsg != "" {
				msg = le.ContextMsg + ": " + msg
				if le.ContextMark.Line > 0 && le.ContextMark.Line != le.Mark.Line {
					msg += fmt.Sprintf(" (started at line %d)", le.ContextMark.Line)
				}
			}
			if le.Message == "mapping values are not allowed in this context" {
				msg += ` (quote a value with ": " in it: reason: "late: out of stock")`
			}
			l.atPos(f, le.Mark.Line, le.Mark.Column, err, "bad YAML: %s", msg)
		case strings.Contains(err.Error(), "multiple"):
			line := 1
			for i, ln := range f.lines {
				if i > 0 && strings.HasPrefix(ln, "---") {
					line = i + 1
					break
				}
			}
			l.atPos(f, line, 1, err, "bad YAML: expected one document per file, found several (split them into files)")
		default:
			l.atPos(f, 1, 1, err, "bad YAML: %v", err)
		}
		return nil
	}
	if len(doc.Content) == 0 {
		l.atPos(f, 1, 1, nil, "empty file: expected a mapping with version and flows")
		return nil
	}
	f.root = doc.Content[0]
	return f
}

// endsInColon matches a line whose value is one word ending in a colon
// ("store: memory:"), which YAML refuses ("mapping values are not
// allowed"): such a value is read as the string "memory:".
var endsInColon = regexp.MustCompile(`^(\s*(?:- )?[A-Za-z_][\w.-]*:[ \t]+)([A-Za-z_][\w-]*:)([ \t]*(?:#.*)?)$`)

// parseLenient decodes data into a node as safeYAML does, but reads a
// value that is one word ending in a colon (store: memory:) as that text,
// as if it were quoted. Positions are unchanged: the quote takes the
// column of the word.
func parseLenient(data []byte, n *yaml.Node) error {
	err := safeYAML(data, n)
	for range 100 {
		var le *yaml.LoadError
		if err == nil || !errors.As(err, &le) || le.Message != "mapping values are not allowed in this context" || le.Mark.Line < 1 {
			return err
		}
		lines := bytes.Split(data, []byte("\n"))
		i := le.Mark.Line - 1
		if i >= len(lines) {
			return err
		}
		m := endsInColon.FindSubmatch(bytes.TrimSuffix(lines[i], []byte("\r")))
		if m == nil {
			return err
		}
		lines[i] = []byte(string(m[1]) + `"` + string(m[2]) + `"` + string(m[3]))
		data = bytes.Join(lines, []byte("\n"))
		*n = yaml.Node{}
		err = safeYAML(data, n)
	}
	return err
}

// tabIndent returns the 1-based column of the first tab in the
// indentation of a 1-based line of f, or 0 when its indentation has none.
func tabIndent(f *srcFile, line int) int {
	if line < 1 || line > len(f.lines) {
		return 0
	}
	for i, c := range []byte(f.lines[line-1]) {
		if c == '\t' {
			return i + 1
		}
		if c != ' ' {
			return 0
		}
	}
	return 0
}

// safeYAML decodes data into a node; a panic in the decoder on odd input
// becomes an error.
func safeYAML(data []byte, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder failed: %v", r)
		}
	}()
	return yaml.Load(data, n)
}

// stripComments blanks YAML comment lines, to tell an empty file.
func stripComments(data []byte) []byte {
	var out []byte
	for _, ln := range bytes.Split(data, []byte("\n")) {
		if t := bytes.TrimSpace(ln); len(t) > 0 && t[0] != '#' {
			out = append(out, t...)
		}
	}
	return out
}

// parseVars reads the vars section: constants templates read with var.
func (l *loader) parseVars(f *srcFile, n *yaml.Node) {
	fs, ok := l.mapping(f, n, "vars", nil)
	if !ok {
		return
	}
	for _, k := range fs.order {
		fd := fs.m[k]
		if _, dup := l.vars[k]; dup {
			l.at(f, fd.key, "vars: %q is declared in two files", k)
			continue
		}
		if v, ok := l.value(f, fd.val, "vars: "+k); ok {
			l.vars[k] = v
		}
	}
}

// ---- flows ----

// exprLoc is the scalar holding an expression.
type exprLoc struct {
	f *srcFile
	n *yaml.Node
}

// pos is a position in a file. For a node reached through an alias it is
// the alias, and note says where in the anchored value the node is.
type pos struct {
	file      *srcFile
	line, col int
	note      string
}

// posOf returns the position of node n.
func posOf(f *srcFile, n *yaml.Node) pos { return posIn(f, n, n.Line, n.Column) }

// posIn returns the position of line and col inside the text of node n.
func posIn(f *srcFile, n *yaml.Node, line, col int) pos {
	p := pos{file: f}
	p.line, p.col, p.note = f.place(n, line, col)
	return p
}

// flowDef is a flow as declared in YAML, then built.
type flowDef struct {
	name        string
	file        *srcFile
	keyNode     *yaml.Node
	description string
	input       []fc.KeyInfo
	defaults    []defaultValue
	policy      *ferrors.Policy
	sample      map[string]any
	hasSample   bool
	steps       []stepDef
	size        int  // steps parsed, aliases expanded
	total       int  // size, and the sizes of the flows it calls (see buildFlows)
	broken      bool // YAML errors: not built
	firstErr    int  // line of the first YAML error in the flow, if broken
	calls       []callRef
	target      *callTarget
	built       *flow.Flow                // the instance the configuration owns (Config.Flow)
	pos         map[string]pos            // step name -> position (first wins)
	keyPos      map[string]map[string]pos // step -> key -> where it is read
	exprAt      map[string]exprLoc        // combinator -> its expression's scalar
	undos       []*undoDef
	open        []fc.KeyInfo // see openKeys
	providers   *provide.Container
}

type defaultValue struct {
	key string
	v   any
}

type callRef struct {
	flow   string
	at     pos
	target *callTarget
}

var flowKeys = []string{"description", "input", "retry", "sample", "steps"}

func (l *loader) parseFlows(f *srcFile, n *yaml.Node) {
	fs, ok := l.mapping(f, n, "flows", nil)
	if !ok {
		return
	}
	for _, name := range fs.order {
		fd := fs.m[name]
		if prev, dup := l.cfg.flows[name]; dup {
			l.at(f, fd.key, "flow %q is declared twice (first at %s:%d)", name, prev.file.name, prev.keyNode.Line)
			continue
		}
		def := &flowDef{name: name, file: f, keyNode: fd.key, providers: l.cfg.providers, pos: map[string]pos{}, keyPos: map[string]map[string]pos{}, exprAt: map[string]exprLoc{}}
		def.target = l.target(name)
		def.target.def = def
		l.cfg.flows[name] = def
		l.cfg.order = append(l.cfg.order, name)
		l.parseFlow(def, fd.val)
	}
}

func (l *loader) parseFlow(def *flowDef, n *yaml.Node) {
	f := def.file
	before := len(l.errs)
	what := fmt.Sprintf("flow %q", def.name)
	fs, ok := l.mapping(f, n, what, flowKeys)
	if !ok {
		def.broken = true
		return
	}
	if fd, ok := fs.get("description"); ok {
		def.description, _ = l.str(f, fd.val, what+": description")
	}
	if fd, ok := fs.get("input"); ok {
		l.parseInput(def, fd.val)
	}
	def.target.input = def.input
	if fd, ok := fs.get("retry"); ok {
		def.policy, _ = l.policy(f, fd.val, what+": retry")
	}
	if fd, ok := fs.get("sample"); ok {
		if v, ok := l.value(f, fd.val, what+": sample"); ok {
			if m, isMap := v.(map[string]any); isMap {
				def.sample, def.hasSample = m, true
			} else {
				l.at(f, fd.val, "%s: sample: expected a mapping (the input of a run), got %s", what, describe(fd.val))
			}
		}
	}
	fd, ok := fs.get("steps")
	if !ok {
		l.at(f, n, "%s: missing key \"steps\"", what)
	} else {
		fx := newFlowCtx(l, def, f)
		fx.reserve(fd.val, 0)
		def.steps, _ = l.steps(fx, fd.val, what+": steps")
		if len(def.defaults) > 0 {
			defaults := def.defaults
			def.steps = append([]stepDef{{name: DefaultsStep, make: func() flow.Service { return defaultsStep(defaults) }}}, def.steps...)
		}
	}
	def.broken = len(l.errs) > before
	for _, e := range l.errs[before:] {
		if e.File == f.name && e.Line > 0 && (def.firstErr == 0 || e.Line < def.firstErr) {
			def.firstErr = e.Line
		}
	}
}

// DefaultsStep is the name of the step that fills in the defaults of
// optional inputs, first in a flow that declares any.
const DefaultsStep = "input.defaults"

// defaultsStep sets the defaults of optional inputs that a run's input
// lacks.
func defaultsStep(defs []defaultValue) flow.Service {
	var provides []fc.Info
	for _, d := range defs {
		provides = append(provides, fc.Any(d.key))
	}
	return flow.Step(DefaultsStep, func(_ context.Context, c *fc.Context) error {
		for _, d := range defs {
			if !c.Has(d.key) {
				c.Set(d.key, d.v)
			}
		}
		return nil
	}, flow.Provides(provides...))
}

var inputKeys = []string{"name", "type", "optional", "default"}

// parseInput reads `input: [a, {name: b, type: int, optional: true}]`.
func (l *loader) parseInput(def *flowDef, n *yaml.Node) {
	f := def.file
	what := fmt.Sprintf("flow %q: input", def.name)
	items, ok := l.seq(f, n, what)
	if !ok {
		return
	}
	seen := map[string]*yaml.Node{}
	for _, it := range items {
		var ki fc.KeyInfo
		var at *yaml.Node
		if it.Kind == yaml.ScalarNode {
			name, ok := l.name(f, it, what)
			if !ok {
				continue
			}
			ki, at = fc.Any(name), it
		} else {
			fs, ok := l.mapping(f, it, what, inputKeys)
			if !ok {
				continue
			}
			fd, ok := fs.get("name")
			if !ok {
				l.at(f, it, "%s: missing key \"name\"", what)
				continue
			}
			name, ok := l.name(f, fd.val, what+": name")
			if !ok {
				continue
			}
			ki, at = fc.Any(name), fd.val
			if fd, ok := fs.get("type"); ok {
				tn, ok := l.str(f, fd.val, what+": type")
				if ok {
					t, known := l.reg.lookupType(tn)
					if !known {
						l.at(f, fd.val, "%s: type: unknown type %q: expected %s%s", what, tn, oneOf(l.reg.typeNames()), suggest(tn, l.reg.typeNames()))
					}
					ki.Type = t
				}
			}
			if fd, ok := fs.get("optional"); ok {
				ki.Optional, _ = l.boolean(f, fd.val, what+": optional")
			}
			if fd, ok := fs.get("default"); ok {
				v, ok := l.value(f, fd.val, what+": default")
				if ok && ki.Type != nil {
					cv, err := fc.ConvertValue(v, ki.Type)
					if err != nil {
						l.at(f, fd.val, "%s: default: expected a value of type %s, got %s", what, ki.Type, describe(fd.val))
						ok = false
					} else {
						v = cv.Interface()
					}
				}
				if ok {
					ki.Optional = true
					def.defaults = append(def.defaults, defaultValue{key: ki.Name, v: v})
				}
			}
		}
		if prev, dup := seen[ki.Name]; dup {
			l.at(f, at, "%s: key %q is declared twice (first at line %d)", what, ki.Name, prev.Line)
			continue
		}
		seen[ki.Name] = at
		def.input = append(def.input, ki)
	}
}

var policyKeys = []string{"initial", "multiplier", "max", "max_interval", "max_attempts", "max_elapsed", "jitter", "retry_all"}

// policy reads a retry policy: {max_attempts: 5, initial: 100ms, max: 2s}.
func (l *sink) policy(f *srcFile, n *yaml.Node, what string) (*ferrors.Policy, bool) {
	fs, ok := l.mapping(f, n, what, policyKeys)
	if !ok {
		return nil, false
	}
	p := &ferrors.Policy{}
	good := true
	check := func(ok bool) { good = good && ok }
	if fd, ok := fs.get("initial"); ok {
		p.Initial, ok = l.duration(f, fd.val, what+": initial")
		check(ok)
	}
	if fd, ok := fs.get("multiplier"); ok {
		p.Multiplier, ok = l.number(f, fd.val, what+": multiplier", 1, 1000)
		check(ok)
	}
	_, hasMax := fs.get("max")
	if fd, ok := fs.get("max_interval"); ok && hasMax {
		l.at(f, fd.key, "%s: set max or max_interval (the same thing), not both", what)
		good = false
	}
	for _, k := range []string{"max", "max_interval"} {
		if fd, ok := fs.get(k); ok {
			p.MaxInterval, ok = l.duration(f, fd.val, what+": "+k)
			check(ok)
		}
	}
	if fd, ok := fs.get("max_attempts"); ok {
		p.MaxAttempts, ok = l.integer(f, fd.val, what+": max_attempts", 1, 1000)
		check(ok)
	}
	if fd, ok := fs.get("max_elapsed"); ok {
		p.MaxElapsed, ok = l.duration(f, fd.val, what+": max_elapsed")
		check(ok)
	}
	if fd, ok := fs.get("jitter"); ok {
		p.Jitter, ok = l.number(f, fd.val, what+": jitter", 0, 1)
		check(ok)
	}
	if fd, ok := fs.get("retry_all"); ok {
		p.RetryAll, ok = l.boolean(f, fd.val, what+": retry_all")
		check(ok)
	}
	if good {
		if err := p.Validate(); err != nil {
			l.at(f, n, "%s: %v", what, err)
			good = false
		}
	}
	return p, good
}

// ---- building ----

// buildFlows builds every flow that parsed cleanly, called flows first.
// Each call step builds an instance of the called flow of its own, so a
// flow's size is counted with those of the flows it calls, and bounded
// like the steps of the file.
func (l *loader) buildFlows() {
	state := map[string]int{} // 0 new, 1 in progress, 2 done
	var visit func(def *flowDef, stack []string) bool
	visit = func(def *flowDef, stack []string) bool {
		switch state[def.name] {
		case 1:
			return false
		case 2:
			return def.built != nil
		}
		state[def.name] = 1
		ok := !def.broken
		def.total = def.size
		for _, c := range def.calls {
			callee, exists := l.cfg.flows[c.flow]
			if !exists {
				l.atPosOf(c.at, nil, "call: unknown flow %q: expected %s%s", c.flow,
					oneOf(l.cfg.order), suggest(c.flow, l.cfg.order))
				ok = false
				continue
			}
			if state[c.flow] == 1 {
				cycle := append(slices.Clone(stack), def.name, c.flow)
				i := slices.Index(cycle, c.flow)
				l.atPosOf(c.at, nil, "call: flows call each other in a loop: %s", strings.Join(cycle[i:], " -> "))
				ok = false
				continue
			}
			if !visit(callee, append(stack, def.name)) {
				ok = false // the callee's own errors are reported
				continue
			}
			def.total = min(def.total+callee.total, maxSteps+1)
		}
		tooBig := def.total > maxSteps
		if tooBig {
			l.at(def.file, def.keyNode, "flow %q: too many steps with those of the flows it calls (more than %d): each call runs an instance of the called flow of its own", def.name, maxSteps)
		}
		switch {
		case tooBig:
		case ok:
			l.build(def)
		case def.broken:
			if len(def.steps) > 0 {
				l.checkBefore(def)
			}
		default:
			l.check(def) // a callee is missing: report the flow's own errors
		}
		state[def.name] = 2
		return def.built != nil
	}
	for _, name := range l.cfg.order {
		visit(l.cfg.flows[name], nil)
	}
}

// builder returns the builder of a new instance of the flow (see
// stepDef), with its settings and stubs.
func (def *flowDef) builder(stubs map[string]flow.Service) *flow.Builder {
	b := flow.New(def.name, makeAll(def.steps)...).Input(infos(def.input)...).Provide(def.providers)
	if def.policy != nil {
		b.Retry(*def.policy)
	}
	for name, s := range stubs {
		b.Replace(name, s)
	}
	return b
}

func infos(keys []fc.KeyInfo) []fc.Info {
	out := make([]fc.Info, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out
}

// build builds def and reports its build errors at the positions of the
// steps they name.
func (l *loader) build(def *flowDef) {
	f, err := def.builder(nil).Build()
	if err != nil {
		l.buildErrors(posOf(def.file, def.keyNode), def.pos, def.keyPos, def.exprAt, err, nil)
		return
	}
	def.built = f
	def.target.f = f
	for _, u := range def.undos {
		l.buildUndo(def, f, u)
	}
}

// check builds a flow whose YAML is right but that calls a flow that is
// missing (unknown, broken, or in a loop of calls), and reports its build
// errors and those of its compensations. The flow is not kept: a call of
// a missing flow stands in for it, needing what its declared input says
// and providing, untyped, every key the calling flow reads, so that only
// the errors that no called flow could fix are reported.
func (l *loader) check(def *flowDef) {
	f, err := def.builder(nil).Build()
	if err != nil {
		l.buildErrors(posOf(def.file, def.keyNode), def.pos, def.keyPos, def.exprAt, err, nil)
		return
	}
	for _, u := range def.undos {
		l.buildUndo(def, f, u)
	}
}

// openKeys returns every key the steps of def read, and those the flows
// it calls read, untyped: what a call of a missing flow provides while
// the flow is checked (see check).
func (def *flowDef) openKeys() []fc.KeyInfo {
	if def.open != nil {
		return def.open
	}
	seen := map[string]bool{}
	for _, kp := range def.keyPos {
		for k := range kp {
			seen[k] = true
		}
	}
	for _, c := range def.calls {
		for _, k := range c.target.input {
			seen[k.Name] = true
		}
	}
	def.open = []fc.KeyInfo{}
	for _, k := range slices.Sorted(maps.Keys(seen)) {
		def.open = append(def.open, fc.Any(k))
	}
	return def.open
}

// checkBefore builds a flow that has YAML errors from the steps that
// parsed, and reports the build errors positioned before its first YAML
// error: those cannot come from a step that was left out, since a step
// only depends on the steps before it. A call of a missing flow stands in
// for it as in check.
func (l *loader) checkBefore(def *flowDef) {
	if def.firstErr == 0 {
		return
	}
	_, err := def.builder(nil).Build()
	if err == nil {
		return
	}
	var sub sink
	saved := l.sink
	l.sink = sub
	l.buildErrors(posOf(def.file, def.keyNode), def.pos, def.keyPos, def.exprAt, err, nil)
	found := l.errs
	l.sink = saved
	for _, e := range found {
		if e.File == def.file.name && e.Line > 0 && e.Line < def.firstErr {
			l.add(e)
		}
	}
}

// buildErrors reports the *flow.BuildErrors joined in err. stubPos maps
// stubbed step names to the stub's position, for errors about them.
func (l *loader) buildErrors(fallback pos, stepPos map[string]pos, keyPos map[string]map[string]pos, exprAt map[string]exprLoc, err error, stubPos map[string]pos) {
	for _, e := range flatten(err) {
		at := fallback
		var be *flow.BuildError
		msg := e.Error()
		if errors.As(e, &be) {
			var bre *branch.Error
			if p, ok := stubPos[be.Step]; ok {
				at = p
			} else if p, ok := stepPos[be.Step]; ok {
				at = p
				if kp, ok := keyPos[be.Step][be.Key]; ok && be.Key != "" {
					at = kp
				} else if loc, ok := exprAt[be.Step]; ok && be.Key == "" && errors.As(be.Err, &bre) {
					line, col := textPos(loc.f, loc.n, bre.Line, bre.Column)
					at = posIn(loc.f, loc.n, line, col)
				}
			}
		}
		l.atPosOf(at, e, "%s", msg)
	}
}

// flatten returns the errors joined in err.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// ---- Config ----

// Flows returns the names of the flows, in the order they are declared.
func (c *Config) Flows() []string { return slices.Clone(c.order) }

// Flow returns the built flow named name: the instance the configuration
// made of it when it was loaded, the same at each call. Its services are
// its own, as those of an instance from [Config.Builder] are, and
// whoever calls its Init calls its Close.
func (c *Config) Flow(name string) (*flow.Flow, bool) {
	def, ok := c.flows[name]
	if !ok || def.built == nil {
		return nil, false
	}
	return def.built, true
}

// Build builds a new instance of the flow named name (see
// [Config.Builder]) with the named steps replaced by stubs (see
// flow.Builder.Replace): what `flowrun test` does for a case with stubs.
func (c *Config) Build(name string, stubs map[string]flow.Service) (*flow.Flow, error) {
	def, ok := c.flows[name]
	if !ok {
		return nil, fmt.Errorf("no flow named %q", name)
	}
	f, err := def.builder(stubs).Build()
	if err != nil {
		return nil, fmt.Errorf("flow %q: %w", name, err)
	}
	return f, nil
}

// Description returns the description declared for a flow.
func (c *Config) Description(name string) string {
	if def, ok := c.flows[name]; ok {
		return def.description
	}
	return ""
}

// Sample returns the sample input declared for a flow (`sample:`), the
// input `flowrun run` uses when given none. The map is a copy.
func (c *Config) Sample(name string) (map[string]any, bool) {
	def, ok := c.flows[name]
	if !ok || !def.hasSample {
		return nil, false
	}
	return cloneValue(def.sample).(map[string]any), true
}

// Input returns the declared input keys of a flow.
func (c *Config) Input(name string) []fc.KeyInfo {
	if def, ok := c.flows[name]; ok {
		return slices.Clone(def.input)
	}
	return nil
}

// Vars returns the vars section (merged over all files).
func (c *Config) Vars() map[string]any { return cloneValue(c.varsOrEmpty()).(map[string]any) }

func (c *Config) varsOrEmpty() map[string]any {
	if c.vars == nil {
		return map[string]any{}
	}
	return c.vars
}

// Files returns the names of the loaded files.
func (c *Config) Files() []string {
	out := make([]string, len(c.files))
	for i, f := range c.files {
		out[i] = f.name
	}
	return out
}

// Channels returns the entries of the channels sections, unread: the
// channel adapters read them.
func (c *Config) Channels() []Section { return slices.Clone(c.channels) }

// Components returns the component registry the configuration was loaded
// with.
func (c *Config) Components() *component.Registry { return c.comps }

// Registry returns the registry the configuration was loaded with.
func (c *Config) Registry() *Registry { return c.reg }

// cloneValue deep-copies a JSON-like value.
func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = cloneValue(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = cloneValue(e)
		}
		return l
	}
	return v
}

package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/svcflow/svcflow/branch"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	yaml "go.yaml.in/yaml/v4"
)

// leafSpec is a parsed service step, waiting for its final name.
type leafSpec struct {
	defName string                         // the readable name used when the step sets none
	make    func(name string) flow.Service // builds the service under its name
	keyPos  map[string]*yaml.Node          // key read -> the scalar reading it
	// Resilience the step kind configures itself (http): applied like the
	// step-level timeout and retry keys.
	timeout    time.Duration
	policy     *errors.Policy
	policyNode *yaml.Node
}

// needsOf lists keys as untyped required needs, in order, skipping those in
// skip (keys the step itself wrote before reading them).
func needsOf(keys []string, skip map[string]bool) []fc.KeyInfo {
	var out []fc.KeyInfo
	seen := map[string]bool{}
	for _, k := range keys {
		if skip[k] || seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, fc.Any(k))
	}
	return out
}

// shortName is a readable step name part: the text, cut to a length.
func shortName(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 32 {
		return string(r[:31]) + "…"
	}
	return s
}

// keysName is "a,b" for a few keys, "a,b,c,…" for more.
func keysName(keys []string) string {
	if len(keys) > 3 {
		return strings.Join(keys[:3], ",") + ",…"
	}
	return strings.Join(keys, ",")
}

// ---- set ----

type assign struct {
	key     string
	expr    *branch.Expr
	konst   any
	isConst bool
}

// setService assigns keys from compiled expressions, in order.
type setService struct {
	name     string
	assigns  []assign
	contract flow.Contract
	prep     *prepared // of the step's definition
}

func (s *setService) Name() string            { return s.name }
func (s *setService) Contract() flow.Contract { return s.contract }

func (s *setService) Call(_ context.Context, c *fc.Context) error {
	for i := range s.assigns {
		a := &s.assigns[i]
		if a.isConst {
			c.Set(a.key, a.konst)
			continue
		}
		v, err := a.expr.Eval(c.View())
		if err != nil {
			return fmt.Errorf("set %q: %w", a.key, err)
		}
		c.Set(a.key, v)
	}
	return nil
}

// Prepare compiles the step's expressions against the Go types of the keys
// known where the step sits, so a type mistake is a build error, and gives
// each assigned key the type its expression yields (nil when only known at
// run time). An assignment sees the keys assigned before it in the step.
func (s *setService) Prepare(known map[string]reflect.Type) (flow.Service, error) {
	out, err := s.prep.do(known, func() (flow.Service, error) { return s.prepare(known) })
	if err != nil {
		return nil, err
	}
	cp := *out.(*setService)
	return &cp, nil
}

func (s *setService) prepare(known map[string]reflect.Type) (flow.Service, error) {
	schema := maps.Clone(known)
	out := &setService{name: s.name, assigns: make([]assign, len(s.assigns)), contract: flow.Contract{Needs: s.contract.Needs}}
	for i, a := range s.assigns {
		var t reflect.Type
		if a.isConst {
			t = reflect.TypeOf(a.konst)
		} else {
			e, err := recompile(a.expr, schema, false)
			if err != nil {
				return nil, fmt.Errorf("set %q: %w", a.key, err)
			}
			a.expr, t = e, e.Type()
		}
		out.assigns[i] = a
		schema[a.key] = t
		out.contract.Provides = append(out.contract.Provides, fc.KeyInfo{Name: a.key, Type: t})
	}
	return out, nil
}

// recompile compiles a fresh copy of e against the key types of schema;
// keys it reads that schema lacks (reported by the flow's checks) are any.
func recompile(e *branch.Expr, schema map[string]reflect.Type, cond bool) (*branch.Expr, error) {
	ne, err := branch.Parse(e.Source())
	if err != nil {
		return nil, err
	}
	sch, cloned := schema, false
	for _, id := range ne.Idents() {
		if _, ok := sch[id]; !ok {
			if !cloned {
				sch, cloned = maps.Clone(schema), true
				if sch == nil {
					sch = map[string]reflect.Type{}
				}
			}
			sch[id] = nil
		}
	}
	var opts []branch.Option
	if cond {
		opts = append(opts, branch.AsBool())
	}
	if err := ne.Compile(sch, opts...); err != nil {
		return nil, err
	}
	return ne, nil
}

func (l *loader) parseSet(f *srcFile, n *yaml.Node) (*leafSpec, bool) {
	fs, ok := l.mapping(f, n, "set", nil)
	if !ok {
		return nil, false
	}
	if len(fs.order) == 0 {
		l.at(f, n, "set: expected at least one key: expression")
		return nil, false
	}
	spec := &leafSpec{keyPos: map[string]*yaml.Node{}}
	var assigns []assign
	var reads []string
	written := map[string]bool{}
	good := true
	for _, k := range fs.order {
		fd := fs.m[k]
		e, ok := l.compileExpr(f, fd.val, fmt.Sprintf("set %q", k), false)
		if !ok {
			good = false
			continue
		}
		for _, id := range e.Idents() {
			if written[id] {
				continue // assigned before in this step: not a need
			}
			reads = append(reads, id)
			if _, seen := spec.keyPos[id]; !seen {
				spec.keyPos[id] = fd.val
			}
		}
		written[k] = true
		a := assign{key: k, expr: e}
		a.konst, a.isConst = constantValue(e)
		assigns = append(assigns, a)
	}
	if !good {
		return nil, false
	}
	var contract flow.Contract
	contract.Needs = needsOf(reads, nil)
	for _, k := range fs.order {
		contract.Provides = append(contract.Provides, fc.Any(k))
	}
	spec.defName = "set(" + keysName(fs.order) + ")"
	prep := &prepared{}
	spec.make = func(name string) flow.Service {
		return &setService{name: name, assigns: assigns, contract: contract, prep: prep}
	}
	return spec, true
}

// ---- stop ----

// stopService ends the run with a Stop error when its condition holds.
type stopService struct {
	name     string
	cond     *branch.Expr // nil: always
	reason   *tmpl
	contract flow.Contract
	prep     *prepared // of the step's definition
}

func (s *stopService) Name() string            { return s.name }
func (s *stopService) Contract() flow.Contract { return s.contract }

func (s *stopService) Call(_ context.Context, c *fc.Context) error {
	if s.cond != nil {
		ok, err := s.cond.EvalBool(c.View())
		if err != nil {
			return fmt.Errorf("stop condition: %w", err)
		}
		if !ok {
			return nil
		}
	}
	reason, err := s.reason.exec(c.View())
	if err != nil {
		return fmt.Errorf("stop reason: %w", err)
	}
	return errors.Stop(reason)
}

// Prepare compiles the condition against the Go types of the keys known
// where the step sits, so a type mistake is a build error.
func (s *stopService) Prepare(known map[string]reflect.Type) (flow.Service, error) {
	if s.cond == nil {
		return s, nil
	}
	out, err := s.prep.do(known, func() (flow.Service, error) {
		e, err := recompile(s.cond, known, true)
		if err != nil {
			return nil, fmt.Errorf("stop condition: %w", err)
		}
		out := *s
		out.cond, out.prep = e, nil
		return &out, nil
	})
	if err != nil {
		return nil, err
	}
	cp := *out.(*stopService)
	return &cp, nil
}

// prepared remembers what the Prepare of a step's service made for the
// keys known where the step sits, for the services of one step definition:
// every instance of a flow puts the step in the same place, so its
// expressions are compiled once, not once per instance (compiled
// expressions never change; instances share them).
type prepared struct {
	mu    sync.Mutex
	known map[string]reflect.Type
	svc   flow.Service
	err   error
}

// do returns what prepare returns for known, or returned for the same
// known types last time.
func (p *prepared) do(known map[string]reflect.Type, prepare func() (flow.Service, error)) (flow.Service, error) {
	if p == nil {
		return prepare()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.known == nil || !maps.Equal(p.known, known) {
		p.svc, p.err = prepare()
		p.known = known
	}
	return p.svc, p.err
}

func (l *loader) parseStop(f *srcFile, n *yaml.Node) (*leafSpec, bool) {
	spec := &leafSpec{keyPos: map[string]*yaml.Node{}}
	var cond *branch.Expr
	var reasonNode *yaml.Node
	if n.Kind == yaml.ScalarNode {
		reasonNode = n // stop: "reason": always stops
	} else {
		fs, ok := l.mapping(f, n, "stop", []string{"if", "reason"})
		if !ok {
			return nil, false
		}
		if fd, ok := fs.get("if"); ok {
			if cond, ok = l.compileExpr(f, fd.val, "stop: if", true); !ok {
				return nil, false
			}
			for _, id := range cond.Idents() {
				spec.keyPos[id] = fd.val
			}
		}
		if fd, ok := fs.get("reason"); ok {
			reasonNode = fd.val
		}
	}
	reasonSrc := "stopped"
	if cond != nil {
		reasonSrc = "stopped: " + cond.Source()
	}
	if reasonNode != nil {
		var ok bool
		if reasonSrc, ok = l.str(f, reasonNode, "stop: reason"); !ok {
			return nil, false
		}
	}
	reason, ok := l.template(f, reasonNode, "stop: reason", reasonSrc)
	if !ok {
		return nil, false
	}
	var reads []string
	if cond != nil {
		reads = cond.Idents()
	}
	for _, id := range reason.idents {
		reads = append(reads, id)
		if _, seen := spec.keyPos[id]; !seen {
			spec.keyPos[id] = reasonNode
		}
	}
	contract := flow.Contract{Needs: needsOf(reads, nil)}
	spec.defName = "stop"
	if cond != nil {
		spec.defName = "stop(" + shortName(cond.Source()) + ")"
	}
	prep := &prepared{}
	spec.make = func(name string) flow.Service {
		return &stopService{name: name, cond: cond, reason: reason, contract: contract, prep: prep}
	}
	return spec, true
}

// template parses src (the text of node n, or a default when n is nil) as
// a template, reporting errors at n and checking the vars it reads.
func (l *loader) template(f *srcFile, n *yaml.Node, what, src string) (*tmpl, bool) {
	t, err := parseTemplate(what, src, l.funcs)
	if err != nil {
		if n != nil {
			l.at(f, n, "%s: %v", what, err)
		} else {
			l.add(&Error{File: f.name, Msg: fmt.Sprintf("%s: %v", what, err), Err: err})
		}
		return nil, false
	}
	for _, v := range t.vars {
		if _, ok := l.vars[v]; !ok {
			if n == nil {
				l.atPos(f, 0, 0, nil, "%s: unknown var %q: declare it under vars:%s", what, v, suggest(v, l.varNames()))
				return nil, false
			}
			line, col := identPos(f, n, v)
			l.atIn(f, n, line, col, nil, "%s: unknown var %q: declare it under vars:%s", what, v, suggest(v, l.varNames()))
			return nil, false
		}
	}
	return t, true
}

// ---- template ----

type render struct {
	key string
	t   *tmpl
}

// templateService renders templates into keys.
type templateService struct {
	name     string
	renders  []render
	contract flow.Contract
}

func (s *templateService) Name() string            { return s.name }
func (s *templateService) Contract() flow.Contract { return s.contract }

func (s *templateService) Call(_ context.Context, c *fc.Context) error {
	for _, r := range s.renders {
		out, err := r.t.exec(c.View())
		if err != nil {
			return fmt.Errorf("template %q: %w", r.key, err)
		}
		c.Set(r.key, out)
	}
	return nil
}

func (l *loader) parseTemplateStep(f *srcFile, n *yaml.Node) (*leafSpec, bool) {
	fs, ok := l.mapping(f, n, "template", nil)
	if !ok {
		return nil, false
	}
	if len(fs.order) == 0 {
		l.at(f, n, "template: expected at least one key: template")
		return nil, false
	}
	spec := &leafSpec{keyPos: map[string]*yaml.Node{}}
	var renders []render
	var reads []string
	written := map[string]bool{}
	good := true
	for _, k := range fs.order {
		fd := fs.m[k]
		src, ok := l.str(f, fd.val, fmt.Sprintf("template %q", k))
		if !ok {
			good = false
			continue
		}
		t, ok := l.template(f, fd.val, fmt.Sprintf("template %q", k), src)
		if !ok {
			good = false
			continue
		}
		for _, id := range t.idents {
			if !written[id] {
				reads = append(reads, id)
				if _, seen := spec.keyPos[id]; !seen {
					spec.keyPos[id] = fd.val
				}
			}
		}
		written[k] = true
		renders = append(renders, render{key: k, t: t})
	}
	if !good {
		return nil, false
	}
	contract := flow.Contract{Needs: needsOf(reads, nil)}
	for _, k := range fs.order {
		contract.Provides = append(contract.Provides, fc.Key[string](k).Info())
	}
	spec.defName = "template(" + keysName(fs.order) + ")"
	spec.make = func(name string) flow.Service {
		return &templateService{name: name, renders: renders, contract: contract}
	}
	return spec, true
}

// ---- log ----

// logService logs a message with keys as attributes.
type logService struct {
	name     string
	logger   *slog.Logger
	level    slog.Level
	msg      *tmpl
	keys     []string
	contract flow.Contract
}

func (s *logService) Name() string            { return s.name }
func (s *logService) Contract() flow.Contract { return s.contract }

func (s *logService) Call(ctx context.Context, c *fc.Context) error {
	if !s.logger.Enabled(ctx, s.level) {
		return nil
	}
	msg, err := s.msg.exec(c.View())
	if err != nil {
		return fmt.Errorf("log message: %w", err)
	}
	attrs := make([]slog.Attr, 0, len(s.keys)+1)
	attrs = append(attrs, slog.String("step", s.name))
	for _, k := range s.keys {
		v, _ := c.Get(k)
		attrs = append(attrs, slog.Any(k, v))
	}
	s.logger.LogAttrs(ctx, s.level, msg, attrs...)
	return nil
}

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}

func (l *loader) parseLog(f *srcFile, n *yaml.Node) (*leafSpec, bool) {
	spec := &leafSpec{keyPos: map[string]*yaml.Node{}}
	msgNode := n
	level := slog.LevelInfo
	var keys []string
	if n.Kind != yaml.ScalarNode {
		fs, ok := l.mapping(f, n, "log", []string{"message", "level", "keys"})
		if !ok {
			return nil, false
		}
		fd, ok := fs.get("message")
		if !ok {
			l.at(f, n, "log: missing key \"message\"")
			return nil, false
		}
		msgNode = fd.val
		if fd, ok := fs.get("level"); ok {
			s, ok := l.str(f, fd.val, "log: level")
			if !ok {
				return nil, false
			}
			if level, ok = logLevels[s]; !ok {
				l.at(f, fd.val, "log: level: expected debug, info, warn or error, got %q", s)
				return nil, false
			}
		}
		if fd, ok := fs.get("keys"); ok {
			items, ok := l.seq(f, fd.val, "log: keys")
			if !ok {
				return nil, false
			}
			for _, it := range items {
				k, ok := l.name(f, it, "log: keys")
				if !ok {
					return nil, false
				}
				keys = append(keys, k)
				spec.keyPos[k] = it
			}
		}
	}
	src, ok := l.str(f, msgNode, "log: message")
	if !ok {
		return nil, false
	}
	msg, ok := l.template(f, msgNode, "log: message", src)
	if !ok {
		return nil, false
	}
	for _, id := range msg.idents {
		if _, seen := spec.keyPos[id]; !seen {
			spec.keyPos[id] = msgNode
		}
	}
	contract := flow.Contract{Needs: needsOf(append(slices.Clone(msg.idents), keys...), nil)}
	logger := l.reg.log()
	spec.defName = "log"
	spec.make = func(name string) flow.Service {
		return &logService{name: name, logger: logger, level: level, msg: msg, keys: keys, contract: contract}
	}
	return spec, true
}

// ---- sleep ----

// sleepService waits, ending early when the run is canceled.
type sleepService struct {
	name string
	d    time.Duration
}

func (s *sleepService) Name() string { return s.name }

func (s *sleepService) Call(ctx context.Context, _ *fc.Context) error {
	t := time.NewTimer(s.d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sleep: %w", ctx.Err())
	}
}

func (l *loader) parseSleep(f *srcFile, n *yaml.Node) (*leafSpec, bool) {
	d, ok := l.duration(f, n, "sleep")
	if !ok {
		return nil, false
	}
	return &leafSpec{defName: "sleep(" + d.String() + ")", make: func(name string) flow.Service {
		return &sleepService{name: name, d: d}
	}}, true
}

// ---- call ----

// callTarget is a flow of the configuration that call steps run: its
// definition, and the instance the configuration owns once it is built,
// before the flows that call it.
type callTarget struct {
	name  string
	def   *flowDef // nil while no flow of the name is declared
	input []fc.KeyInfo
	f     *flow.Flow
}

// callService runs its own instance of another flow on the caller's
// context; the instance's lifecycle is the step's.
type callService struct {
	name   string
	f      *flow.Flow // nil: a stand-in for a missing flow (see loader.check)
	target *callTarget
	caller *flowDef // the flow holding a stand-in
}

func (s *callService) Name() string { return s.name }

func (s *callService) Call(ctx context.Context, c *fc.Context) error {
	if s.f == nil {
		return fmt.Errorf("call %q: flow not built", s.target.name)
	}
	return s.f.RunContext(ctx, c)
}

// Contract is the called flow's. A stand-in for a missing flow (unknown,
// broken, or in a loop of calls) needs its declared input and provides,
// untyped, every key the calling flow reads (see loader.check).
func (s *callService) Contract() flow.Contract {
	if s.f == nil {
		return flow.Contract{Needs: s.target.input, Provides: s.caller.openKeys()}
	}
	return s.f.Contract()
}

// Init implements flow.Initializer for the called flow's services.
func (s *callService) Init(ctx context.Context) error {
	if s.f == nil {
		return nil
	}
	return s.f.Init(ctx)
}

// Close implements flow.Closer for the called flow's services.
func (s *callService) Close(ctx context.Context) error {
	if s.f == nil {
		return nil
	}
	return s.f.Close(ctx)
}

// Wait waits for the taps of the called flow.
func (s *callService) Wait(ctx context.Context) error {
	if s.f == nil {
		return nil
	}
	return s.f.Wait(ctx)
}

// ---- shell ----

// shellService runs a command.
type shellService struct {
	name     string
	argv     []*tmpl
	stdin    string
	into     string
	asJSON   bool
	contract flow.Contract
}

func (s *shellService) Name() string            { return s.name }
func (s *shellService) Contract() flow.Contract { return s.contract }

func (s *shellService) Call(ctx context.Context, c *fc.Context) error {
	args := make([]string, len(s.argv))
	for i, t := range s.argv {
		a, err := t.exec(c.View())
		if err != nil {
			return fmt.Errorf("shell argument %d: %w", i+1, err)
		}
		args[i] = a
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	if s.stdin != "" {
		v, _ := c.Get(s.stdin)
		switch x := v.(type) {
		case string:
			cmd.Stdin = strings.NewReader(x)
		case []byte:
			cmd.Stdin = bytes.NewReader(x)
		default:
			b, err := json.Marshal(x)
			if err != nil {
				return fmt.Errorf("shell stdin %q: %w", s.stdin, err)
			}
			cmd.Stdin = bytes.NewReader(b)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("shell %s: %w", args[0], ctx.Err())
		}
		return fmt.Errorf("shell %s: %w: %s", args[0], err, shortName(stderr.String()))
	}
	if s.asJSON {
		var v any
		if err := json.Unmarshal(stdout.Bytes(), &v); err != nil {
			return fmt.Errorf("shell %s: stdout is not JSON: %w", args[0], err)
		}
		c.Set(s.into, v)
		return nil
	}
	c.Set(s.into, strings.TrimRight(stdout.String(), "\n"))
	return nil
}

func (l *loader) parseShell(f *srcFile, kind *yaml.Node, n *yaml.Node) (*leafSpec, bool) {
	if !l.reg.allowShell {
		l.at(f, kind, "shell: running commands is disabled: enable it with flowrun --allow-shell (config.AllowShell() in Go)")
		return nil, false
	}
	fs, ok := l.mapping(f, n, "shell", []string{"command", "stdin", "into", "json"})
	if !ok {
		return nil, false
	}
	spec := &leafSpec{keyPos: map[string]*yaml.Node{}}
	fd, ok := fs.get("command")
	if !ok {
		l.at(f, n, "shell: missing key \"command\"")
		return nil, false
	}
	var argNodes []*yaml.Node
	if fd.val.Kind == yaml.ScalarNode {
		argNodes = []*yaml.Node{{Kind: yaml.ScalarNode, Value: "sh"}, {Kind: yaml.ScalarNode, Value: "-c"}, fd.val}
	} else if argNodes, ok = l.seq(f, fd.val, "shell: command"); !ok {
		return nil, false
	}
	if len(argNodes) == 0 {
		l.at(f, fd.val, "shell: command: expected a command and its arguments")
		return nil, false
	}
	s := &shellService{into: "stdout"}
	var reads []string
	for _, an := range argNodes {
		src, ok := l.str(f, an, "shell: command")
		if !ok {
			return nil, false
		}
		t, ok := l.template(f, an, "shell: command", src)
		if !ok {
			return nil, false
		}
		for _, id := range t.idents {
			reads = append(reads, id)
			spec.keyPos[id] = an
		}
		s.argv = append(s.argv, t)
	}
	if fd, ok := fs.get("stdin"); ok {
		if s.stdin, ok = l.name(f, fd.val, "shell: stdin"); !ok {
			return nil, false
		}
		reads = append(reads, s.stdin)
		spec.keyPos[s.stdin] = fd.val
	}
	if fd, ok := fs.get("into"); ok {
		if s.into, ok = l.name(f, fd.val, "shell: into"); !ok {
			return nil, false
		}
	}
	if fd, ok := fs.get("json"); ok {
		if s.asJSON, ok = l.boolean(f, fd.val, "shell: json"); !ok {
			return nil, false
		}
	}
	s.contract = flow.Contract{Needs: needsOf(reads, nil), Provides: []fc.KeyInfo{fc.Any(s.into)}}
	spec.defName = "shell(" + s.into + ")"
	spec.make = func(name string) flow.Service {
		cp := *s
		cp.name = name
		return &cp
	}
	return spec, true
}

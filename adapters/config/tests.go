package config

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/internal/compare"
	yaml "go.yaml.in/yaml/v4"
)

// Suite is one entry of the tests section: table-driven cases of a flow.
type Suite struct {
	Flow  string  // the flow under test
	File  string  // the file declaring the suite
	Line  int     // the line of the suite in File
	Cases []*Case // in declaration order
	// HTTPServiceVar names the var whose URL the suite's http_service
	// replaces while each case runs; empty when the suite declares none.
	HTTPServiceVar string
}

// Case is one test case: an input, the expected subset of the output or
// the expected kind of error, and stubs for named steps.
type Case struct {
	Name          string         // the case's name (case_N when none is given)
	File          string         // the file declaring the case
	Line, Column  int            // the case's position in File
	Input         map[string]any // the run's input
	Want          map[string]any // expected subset of the output
	Error         errors.Kind    // expected outcome (error:); KindOK expects success
	AnyError      bool           // error: any, or error_contains alone: an error of any kind
	ErrorContains string         // text the error must contain
	From, Through string         // run options (flow.From, flow.Through)
	Stubs         []string       // the names of the stubbed steps

	flow     *flow.Flow   // built with the stubs
	service  *httpService // the suite's http_service, nil when none
	wantPos  map[string]pos
	errorPos pos
}

// ErrorKinds are the values of a case's error: key: the names of the
// errors.Kind a run may end with (see errors.Kind.String), and "any".
// "retry" also matches a run whose retries ran out (retry-exhausted).
// "failure", the former name of "failed", is still accepted.
var ErrorKinds = append(kindNames(compare.ErrorKinds), "any")

// stubKinds are the kinds of error a stub can return (its error: key).
var stubKinds = []errors.Kind{errors.KindStop, errors.KindDropped, errors.KindRetry, errors.KindFatal, errors.KindFailed}

// kindNames returns the names of kinds.
func kindNames(kinds []errors.Kind) []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = k.String()
	}
	return out
}

// parseKind returns the kind named s if it is one of kinds ("failure"
// names errors.KindFailed).
func parseKind(s string, kinds []errors.Kind) (errors.Kind, bool) {
	k, err := errors.ParseKind(s)
	return k, err == nil && slices.Contains(kinds, k)
}

// Tests returns the test suites, in the order they are declared.
func (c *Config) Tests() []*Suite { return slices.Clone(c.suites) }

var (
	suiteKeys = []string{"flow", "stubs", "http_service", "cases"}
	caseKeys  = []string{"name", "input", "want", "error", "error_contains", "stubs", "from", "through"}
)

func (l *loader) parseTests(f *srcFile, n *yaml.Node) {
	items, ok := l.seq(f, n, "tests")
	if !ok {
		return
	}
	for _, it := range items {
		l.parseSuite(f, it)
	}
}

func (l *loader) parseSuite(f *srcFile, n *yaml.Node) {
	fs, ok := l.mapping(f, n, "tests", suiteKeys)
	if !ok {
		return
	}
	s := &Suite{File: f.name, Line: n.Line}
	fd, ok := fs.get("flow")
	if !ok {
		l.at(f, n, "tests: missing key \"flow\"")
		return
	}
	if s.Flow, ok = l.name(f, fd.val, "tests: flow"); !ok {
		return
	}
	def, exists := l.cfg.flows[s.Flow]
	if !exists {
		l.at(f, fd.val, "tests: unknown flow %q: expected %s%s", s.Flow, oneOf(l.cfg.order), suggest(s.Flow, l.cfg.order))
		return
	}
	var suiteStubs map[string]stub
	if fd, ok := fs.get("stubs"); ok {
		suiteStubs, _ = l.parseStubs(f, def, fd.val)
	}
	var svc *httpService
	if fd, ok := fs.get("http_service"); ok {
		if svc, ok = l.parseHTTPService(f, fd.val); ok {
			s.HTTPServiceVar = svc.Var
		} else {
			svc = nil
		}
	}
	cd, ok := fs.get("cases")
	if !ok {
		l.at(f, n, "tests: missing key \"cases\"")
		return
	}
	cases, ok := l.seq(f, cd.val, "tests: cases")
	if !ok {
		return
	}
	names := map[string]int{}
	for i, cn := range cases {
		tc := l.parseCase(f, def, cn, i, suiteStubs)
		if tc == nil {
			continue
		}
		if prev, dup := names[tc.Name]; dup {
			l.at(f, cn, "tests: duplicate case name %q (first at line %d)", tc.Name, prev)
			continue
		}
		names[tc.Name] = cn.Line
		tc.service = svc
		s.Cases = append(s.Cases, tc)
	}
	l.cfg.suites = append(l.cfg.suites, s)
}

func (l *loader) parseCase(f *srcFile, def *flowDef, n *yaml.Node, i int, suiteStubs map[string]stub) *Case {
	fs, ok := l.mapping(f, n, "case", caseKeys)
	if !ok {
		return nil
	}
	tc := &Case{Name: fmt.Sprintf("case_%d", i+1), File: f.name, Line: n.Line, Column: n.Column, wantPos: map[string]pos{}}
	good := true
	if fd, ok := fs.get("name"); ok {
		tc.Name, ok = l.str(f, fd.val, "case: name")
		good = good && ok
	}
	if fd, ok := fs.get("input"); ok {
		v, ok := l.value(f, fd.val, "case: input")
		m, isMap := v.(map[string]any)
		switch {
		case !ok:
			good = false
		case v != nil && !isMap:
			l.at(f, fd.val, "case: input: expected a mapping, got %s", describe(fd.val))
			good = false
		default:
			tc.Input = m
		}
	}
	if fd, ok := fs.get("want"); ok {
		wf, ok := l.mapping(f, fd.val, "case: want", nil)
		if ok {
			tc.Want = map[string]any{}
			for _, k := range wf.order {
				v, ok := l.value(f, wf.m[k].val, "case: want: "+k)
				good = good && ok
				tc.Want[k] = v
				tc.wantPos[k] = posOf(f, wf.m[k].key)
			}
		}
		good = good && ok
	}
	if fd, ok := fs.get("error"); ok {
		name, ok := l.str(f, fd.val, "case: error")
		kind, known := parseKind(name, compare.ErrorKinds)
		switch {
		case !ok:
			good = false
		case name == "any":
			tc.AnyError = true
			tc.errorPos = posOf(f, fd.val)
		case !known:
			l.at(f, fd.val, "case: error: expected an error kind: %s%s", oneOf(ErrorKinds), suggest(name, ErrorKinds))
			good = false
		default:
			tc.Error = kind
			tc.errorPos = posOf(f, fd.val)
		}
	}
	if fd, ok := fs.get("error_contains"); ok {
		tc.ErrorContains, ok = l.str(f, fd.val, "case: error_contains")
		good = good && ok
		if tc.Error == errors.KindOK && !tc.AnyError {
			tc.AnyError = true
			tc.errorPos = posOf(f, fd.val)
		}
	}
	for _, k := range []string{"from", "through"} {
		if fd, ok := fs.get(k); ok {
			v, ok := l.name(f, fd.val, "case: "+k)
			if !ok {
				good = false
				continue
			}
			if steps := def.stepNames(); def.built != nil && !slices.Contains(steps, v) {
				l.at(f, fd.val, "case: %s: flow %q has no step named %q%s", k, def.name, v, suggest(v, steps))
				good = false
			}
			if k == "from" {
				tc.From = v
			} else {
				tc.Through = v
			}
		}
	}
	stubs := maps.Clone(suiteStubs)
	if fd, ok := fs.get("stubs"); ok {
		cs, ok := l.parseStubs(f, def, fd.val)
		good = good && ok
		if stubs == nil {
			stubs = map[string]stub{}
		}
		maps.Copy(stubs, cs)
	}
	if !good {
		return nil
	}
	tc.Stubs = slices.Sorted(maps.Keys(stubs))
	if def.built == nil {
		return tc // the flow's own errors are reported
	}
	tc.flow = def.built
	if len(stubs) > 0 {
		svcs := map[string]flow.Service{}
		inputs := map[string]map[string]any{}
		at := map[string]pos{}
		for name, s := range stubs {
			if s.input != nil {
				if _, ok := def.built.Lookup(name); !ok {
					l.atPos(f, s.at.line, s.at.col, nil, "stubs: %q: input: not a step of flow %q itself (a step of a called flow takes a stub of its own flow's tests)", name, def.name)
					return nil
				}
				inputs[name] = s.input
				continue
			}
			svcs[name] = s.svc
			at[name] = s.at
		}
		b := def.builder(svcs)
		if len(inputs) > 0 {
			b.Use(mockInputs(inputs))
		}
		built, err := b.Build()
		if err != nil {
			l.buildErrors(posOf(f, n), def.pos, def.keyPos, def.exprAt, err, at)
			return nil
		}
		tc.flow = built
	}
	return tc
}

// stub is a replacement for a named step in a test, or, with input, a
// mock of its input: the keys written over the context the real step
// receives.
type stub struct {
	svc   flow.Service
	input map[string]any
	at    pos
}

// mockInputs is the middleware of a case's input mocks: before each
// attempt of a step named in inputs, it writes that step's keys over the
// context (pypeman's mock(input=...)).
func mockInputs(inputs map[string]map[string]any) flow.Middleware {
	return func(next flow.Handler) flow.Handler {
		return func(ctx context.Context, step *flow.StepInfo, c *fc.Context) error {
			if keys, ok := inputs[step.Name]; ok {
				for _, k := range slices.Sorted(maps.Keys(keys)) {
					c.Set(k, cloneValue(keys[k]))
				}
			}
			return next(ctx, step, c)
		}
	}
}

// parseStubs reads stubs: {step: {output: {...}} | {error: kind,
// message: text} | any step}.
func (l *loader) parseStubs(f *srcFile, def *flowDef, n *yaml.Node) (map[string]stub, bool) {
	fs, ok := l.mapping(f, n, "stubs", nil)
	if !ok {
		return nil, false
	}
	out := map[string]stub{}
	good := true
	steps := def.stepNames()
	for _, name := range fs.order {
		fd := fs.m[name]
		if def.built != nil && !slices.Contains(steps, name) {
			l.at(f, fd.key, "stubs: flow %q has no step named %q%s", def.name, name, suggest(name, steps))
			good = false
			continue
		}
		if in, isInput, ok := l.parseInputMock(f, name, fd.val); isInput {
			if ok {
				out[name] = stub{input: in, at: posOf(f, fd.key)}
			}
			good = good && ok
			continue
		}
		s, ok := l.parseStub(f, def, name, fd.val)
		if !ok {
			good = false
			continue
		}
		out[name] = stub{svc: s, at: posOf(f, fd.key)}
	}
	return out, good
}

// parseInputMock reads a stub {input: {key: value}}: the real step runs,
// on its context with these keys written over it. isInput is false when
// n is another kind of stub.
func (l *loader) parseInputMock(f *srcFile, name string, n *yaml.Node) (in map[string]any, isInput, ok bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, false, false
	}
	for i := 0; i < len(n.Content); i += 2 {
		if k := deref(n.Content[i]); k != nil && k.Value == "input" {
			isInput = true
		}
	}
	if !isInput {
		return nil, false, false
	}
	what := fmt.Sprintf("stub %q", name)
	fs, ok := l.mapping(f, n, what, []string{"input", "output", "error", "message"})
	if !ok {
		return nil, true, false
	}
	for _, k := range []string{"output", "error", "message"} {
		if fd, ok := fs.get(k); ok {
			l.at(f, fd.key, "%s: %s: set input (the step runs, on this input) or output/error (the step does not run), not both", what, k)
			return nil, true, false
		}
	}
	fd, _ := fs.get("input")
	v, ok := l.value(f, fd.val, what+": input")
	m, isMap := v.(map[string]any)
	if !ok || !isMap || len(m) == 0 {
		if ok {
			l.at(f, fd.val, "%s: input: expected a mapping of keys to values, got %s", what, describe(fd.val))
		}
		return nil, true, false
	}
	return m, true, true
}

func (l *loader) parseStub(f *srcFile, def *flowDef, name string, n *yaml.Node) (flow.Service, bool) {
	what := fmt.Sprintf("stub %q", name)
	if n.Kind == yaml.MappingNode {
		isData := false
		for i := 0; i < len(n.Content); i += 2 {
			if k := deref(n.Content[i]); k != nil && (k.Value == "output" || k.Value == "error") {
				isData = true
			}
		}
		if isData {
			fs, ok := l.mapping(f, n, what, []string{"output", "error", "message"})
			if !ok {
				return nil, false
			}
			s := &stubService{name: name}
			if fd, ok := fs.get("output"); ok {
				v, ok := l.value(f, fd.val, what+": output")
				m, isMap := v.(map[string]any)
				if !ok || !isMap {
					if ok {
						l.at(f, fd.val, "%s: output: expected a mapping of keys to values, got %s", what, describe(fd.val))
					}
					return nil, false
				}
				s.output = m
			}
			if fd, ok := fs.get("error"); ok {
				name, ok := l.str(f, fd.val, what+": error")
				kind, known := parseKind(name, stubKinds)
				if !ok || !known {
					if ok {
						kinds := kindNames(stubKinds)
						l.at(f, fd.val, "%s: error: expected %s%s", what, oneOf(kinds), suggest(name, kinds))
					}
					return nil, false
				}
				s.kind = kind
				if s.output != nil {
					l.at(f, fd.key, "%s: set output or error, not both", what)
					return nil, false
				}
			}
			if s.kind != errors.KindOK {
				s.message = "stubbed " + s.kind.String()
			}
			if fd, ok := fs.get("message"); ok {
				if s.message, ok = l.str(f, fd.val, what+": message"); !ok {
					return nil, false
				}
			}
			return s, true
		}
	}
	// Any step form: parsed as a step of a scratch flow.
	scratch := &flowDef{name: def.name, file: f, keyNode: n, providers: def.providers, pos: map[string]pos{}, keyPos: map[string]map[string]pos{}, exprAt: map[string]exprLoc{}}
	fx := newFlowCtx(l, scratch, f)
	s, ok := l.step(fx, n, false)
	if !ok {
		return nil, false
	}
	for _, c := range scratch.calls {
		if t := l.target(c.flow); t.f == nil {
			l.atPos(f, c.at.line, c.at.col, nil, "call: unknown or broken flow %q", c.flow)
			return nil, false
		}
	}
	return s, true
}

// stubService writes fixed output or returns an error of a kind (one of
// stubKinds; KindOK: no error). It declares no contract, so it keeps the
// contract of the step it replaces.
type stubService struct {
	name    string
	output  map[string]any
	kind    errors.Kind
	message string
}

func (s *stubService) Name() string { return s.name }

func (s *stubService) Call(_ context.Context, c *fc.Context) error {
	switch s.kind {
	case errors.KindStop:
		return errors.Stop(s.message)
	case errors.KindDropped:
		return errors.Drop(s.message)
	case errors.KindRetry:
		return errors.Retry(errors.New(s.message))
	case errors.KindFatal:
		return errors.Fatal(errors.New(s.message))
	case errors.KindFailed:
		return errors.New(s.message)
	}
	for _, k := range slices.Sorted(maps.Keys(s.output)) {
		c.Set(k, cloneValue(s.output[k]))
	}
	return nil
}

// Result is the outcome of one test case.
type Result struct {
	Case     *Case          // the case run
	Failures []string       // each "file:line:col: what differs"
	Output   map[string]any // the output context, as JSON values
	Err      error          // the run's error
	Duration time.Duration  // how long the run took, Init and Close included
}

// Passed reports whether the case passed.
func (r *Result) Passed() bool { return len(r.Failures) == 0 }

// Run runs the case: its flow (built with its stubs) on its input, between
// the flow's Init and Close, then checks the error kind and the expected
// subset of the output. Values compare as in package flowtest: by their
// JSON form, numbers that are not integers within a relative 1e-9, nested
// maps as subsets, lists element by element.
//
// A case of a suite with an http_service starts that service first, on a
// free loopback port, and stops it when the run ends; meanwhile the
// service's var holds its URL for every flow of the configuration, so
// such cases must not run concurrently with other runs of it (flowrun
// test runs cases one at a time).
func (tc *Case) Run(ctx context.Context) *Result {
	r := &Result{Case: tc}
	if tc.flow == nil {
		r.Failures = append(r.Failures, tc.at(pos{}, "the flow did not build"))
		return r
	}
	if tc.service != nil {
		stop, err := tc.service.start()
		if err != nil {
			r.Failures = append(r.Failures, tc.at(pos{}, "%v", err))
			return r
		}
		defer stop()
	}
	var opts []flow.RunOption
	if tc.From != "" {
		opts = append(opts, flow.From(tc.From))
	}
	if tc.Through != "" {
		opts = append(opts, flow.Through(tc.Through))
	}
	start := time.Now()
	if err := tc.flow.Init(ctx); err != nil {
		r.Failures = append(r.Failures, tc.at(pos{}, "init: %v", err))
		return r
	}
	out, err := tc.flow.Run(ctx, cloneValue(mapOrEmpty(tc.Input)).(map[string]any), opts...)
	if cerr := tc.flow.Close(context.WithoutCancel(ctx)); cerr != nil {
		r.Failures = append(r.Failures, tc.at(pos{}, "close: %v", cerr))
	}
	r.Duration = time.Since(start)
	r.Err = err
	if out != nil {
		r.Output = jsonMap(out)
	}
	kind := errors.KindOf(err)
	wantErr := tc.Error != errors.KindOK || tc.AnyError
	switch {
	case !wantErr && err != nil:
		r.Failures = append(r.Failures, tc.at(pos{}, "unexpected error (%s): %v", kind, err))
	case wantErr && err == nil && tc.Error == errors.KindOK:
		r.Failures = append(r.Failures, tc.at(tc.errorPos, "want an error, got none"))
	case wantErr && err == nil:
		r.Failures = append(r.Failures, tc.at(tc.errorPos, "want error %s, got none", tc.Error))
	case tc.Error != errors.KindOK && !compare.Kind(tc.Error, kind):
		r.Failures = append(r.Failures, tc.at(tc.errorPos, "want error %s, got %s: %v", tc.Error, kind, err))
	}
	if tc.ErrorContains != "" && err != nil && !strings.Contains(err.Error(), tc.ErrorContains) {
		r.Failures = append(r.Failures, tc.at(tc.errorPos, "want an error containing %q, got: %v", tc.ErrorContains, err))
	}
	for _, k := range slices.Sorted(maps.Keys(tc.Want)) {
		want := tc.Want[k]
		got, ok := r.Output[k]
		switch {
		case !ok:
			r.Failures = append(r.Failures, tc.at(tc.wantPos[k], "key %q: want %s, but the output has no such key", k, jsonText(want)))
		case !compare.Match(want, got):
			r.Failures = append(r.Failures, tc.at(tc.wantPos[k], "key %q: want %s, got %s", k, jsonText(want), jsonText(got)))
		}
	}
	return r
}

// at formats a failure at p, or at the case when p is unknown.
func (tc *Case) at(p pos, format string, args ...any) string {
	line, col := p.line, p.col
	if line == 0 {
		line, col = tc.Line, tc.Column
	}
	return fmt.Sprintf("%s:%d:%d: %s", tc.File, line, col, fmt.Sprintf(format, args...))
}

func mapOrEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// jsonMap returns the context's data as JSON would give it back.
func jsonMap(c *fc.Context) map[string]any {
	b, err := c.MarshalJSON()
	if err != nil {
		return c.Map()
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return c.Map()
	}
	return m
}

// jsonText renders a value for a failure message, cut when long.
func jsonText(v any) string {
	t := compare.Text(v)
	if len(t) > 200 {
		return t[:197] + "..."
	}
	return t
}

// stepNames returns the names of the flow's service steps (those a stub
// can replace).
func (def *flowDef) stepNames() []string {
	var out []string
	if def.built == nil {
		return nil
	}
	var walk func(n *flow.Node)
	walk = func(n *flow.Node) {
		if n.Kind == flow.KindStep {
			out = append(out, n.Name)
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(def.built.Graph())
	return out
}

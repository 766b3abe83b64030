package flowtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/internal/compare"
)

// Case is one row of a table: an input context, and what the run must
// leave in it and return.
type Case struct {
	// Name names the subtest (t.Run).
	Name string
	// Input is the context the run starts with (nil: empty). A flow gets a
	// copy; a service gets a context made with fc.FromMap.
	Input map[string]any
	// Want lists keys the output context must hold, with their values.
	// Other keys of the output are ignored (a subset match). Values are
	// compared in their JSON form by the rule YAML test tables use too:
	// 3, 3.0 and int64(3) are equal; numbers that are not integers are
	// equal within a relative 1e-9 (0.1+0.2 equals 0.3); a struct equals
	// the map[string]any that encodes alike; a nested map matches when it
	// holds the wanted keys (a subset, at every depth); lists match
	// element by element. A value JSON cannot encode (a func, a channel) is
	// compared with reflect.DeepEqual.
	Want map[string]any
	// Absent lists keys the output context must not hold.
	Absent []string
	// Err is the outcome the run must end with, errors.KindOf its error:
	// errors.KindOK (the zero value) for success, or KindStop, KindRetry
	// (which a run whose retries ran out matches too), KindRetryExhausted,
	// KindFatal, KindFailed, KindPanic or KindCanceled.
	Err errors.Kind
	// ErrAny expects an error of any kind (when Err is KindOK).
	ErrAny bool
	// ErrContains, if set, must be a substring of the error's text. Set
	// alone, it expects an error of any kind.
	ErrContains string
	// Stubs replaces the flow's steps of the given names for this case (see
	// Stub). Only RunFlow can stub steps: a service is one step. A flow
	// nested in the flow under test is one step too: stub it whole by its
	// name, or test it with its own table.
	Stubs map[string]*Stub
	// MockInput mocks the input of named steps (pypeman's
	// mock(input=...)): before each attempt of the step named by a key,
	// the keys of its map are written over the context the step receives
	// (copies of the values); the real step runs, and the keys stay in the
	// context after it. Only RunFlow can mock inputs; a name that is not a
	// step of the flow itself (see flow.Flow.Lookup: a flow nested in it
	// is one step) fails the case.
	MockInput map[string]map[string]any
	// Check, if set, runs after the other checks, for anything they cannot
	// express. out is the output context, err the run's error.
	Check func(t *testing.T, out *fc.Context, err error)
}

// Stub replaces a step of a flow under test (see Case.Stubs). When called
// it records a copy of the context it received, writes Set, then calls
// Func if set, and returns Func's error if it has one, else Err. The
// replaced step's name and contract are kept, so the flow builds with the
// same checks.
//
// A Stub is safe for concurrent calls (a stubbed step inside flow.All). It
// must not be copied after first use: use *Stub.
type Stub struct {
	// Set holds the keys the stub writes.
	Set map[string]any
	// Err is the error the stub returns.
	Err error
	// Func, if set, runs after Set is written: to compute outputs from the
	// inputs, count, or fail on the second call.
	Func func(ctx context.Context, c *fc.Context) error
	// Want lists keys every call must have received, compared as
	// Case.Want compares them. A stub with Want that is never called fails
	// the case.
	Want map[string]any

	mu    sync.Mutex
	calls []*fc.Context
}

// Calls returns a copy of the context each call received, in the order
// the calls started (retries of the step are calls too). Nested maps and
// slices of JSON shape are copied too, so later steps cannot change what
// was recorded. The calls are reset when a case using the stub starts.
func (s *Stub) Calls() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]map[string]any, len(s.calls))
	for i, c := range s.calls {
		out[i] = c.Map()
	}
	return out
}

// Service returns the stub as a step named name, for use outside a table:
// b.Replace("charge", stub.Service("charge")).
func (s *Stub) Service(name string) flow.Service { return &stubService{name: name, stub: s} }

func (s *Stub) reset() {
	s.mu.Lock()
	s.calls = nil
	s.mu.Unlock()
}

func (s *Stub) call(ctx context.Context, c *fc.Context) error {
	seen := fc.New()
	for k, v := range c.View() {
		seen.Set(k, deepCopy(v))
	}
	s.mu.Lock()
	s.calls = append(s.calls, seen)
	s.mu.Unlock()
	c.Update(s.Set)
	if s.Func != nil {
		if err := s.Func(ctx, c); err != nil {
			return err
		}
	}
	return s.Err
}

func (s *Stub) recorded() []*fc.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

type stubService struct {
	name string
	stub *Stub
}

func (s *stubService) Name() string                                  { return s.name }
func (s *stubService) Call(ctx context.Context, c *fc.Context) error { return s.stub.call(ctx, c) }

// mockInput is the middleware of a case's MockInput.
func mockInput(inputs map[string]map[string]any) flow.Middleware {
	return func(next flow.Handler) flow.Handler {
		return func(ctx context.Context, step *flow.StepInfo, c *fc.Context) error {
			if keys, ok := inputs[step.Name]; ok {
				for _, k := range slices.Sorted(maps.Keys(keys)) {
					c.Set(k, deepCopy(keys[k]))
				}
			}
			return next(ctx, step, c)
		}
	}
}

// Option configures RunFlow.
type Option func(*config)

type config struct {
	through, from string
	policy        *errors.Policy
}

// Through ends each run successfully right after the named step (see
// flow.Through): the table then checks the context the flow's own steps
// built up to there.
func Through(step string) Option { return func(c *config) { c.through = step } }

// From starts each run at the named step, skipping the steps before it
// (see flow.From): the table checks the tail of the flow.
func From(step string) Option { return func(c *config) { c.from = step } }

// RetryPolicy sets the default retry policy of the flow under test, as
// (*flow.Builder).Retry does: errors.NoRetry makes a case expecting
// errors.KindRetry end at once (retry-exhausted after one attempt) instead
// of waiting for the backoff of the default policy.
// Steps wrapped in flow.Retry keep their own policy.
func RetryPolicy(p errors.Policy) Option { return func(c *config) { c.policy = &p } }

// caseT is what running one case needs of a *testing.T; tests of this
// package pass a recorder.
type caseT interface {
	assert.TestingT
	Helper()
	Logf(format string, args ...any)
	Context() context.Context
}

// RunService runs each case in a subtest: it calls svc.Call on a context
// made from the case's Input, then checks the context and the error. A
// panic in the service is recovered and checked as errors.KindPanic. A service that
// implements flow.Initializer is initialised once before the cases, and
// one that implements flow.Closer is closed after them.
//
// A built *flow.Flow is a Service, so a flow whose cases need no stubs
// and no Option can be tested here too.
func RunService(t *testing.T, svc flow.Service, cases []Case) {
	t.Helper()
	if svc == nil {
		t.Fatal("flowtest: nil service")
	}
	if in, ok := svc.(flow.Initializer); ok {
		if err := in.Init(t.Context()); err != nil {
			t.Fatalf("flowtest: init %q: %v", svc.Name(), err)
		}
	}
	if cl, ok := svc.(flow.Closer); ok {
		t.Cleanup(func() {
			if err := cl.Close(context.Background()); err != nil {
				t.Errorf("flowtest: close %q: %v", svc.Name(), err)
			}
		})
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Helper()
			out, err := runService(t, svc, c)
			if c.Check != nil {
				c.Check(t, out, err)
			}
		})
	}
}

func runService(t caseT, svc flow.Service, c Case) (*fc.Context, error) {
	t.Helper()
	out := fc.FromMap(c.Input)
	if len(c.Stubs) > 0 {
		t.Errorf("flowtest: case %q stubs steps %s, but a service has no steps to stub: use RunFlow",
			c.Name, quoteAll(slices.Sorted(maps.Keys(c.Stubs))))
		return out, nil
	}
	err := callGuarded(t.Context(), svc, out)
	if !check(t, c, out, err) {
		t.Logf("output context: %s", out)
	}
	return out, err
}

func callGuarded(ctx context.Context, svc flow.Service, c *fc.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = errors.Recovered(v)
		}
	}()
	return svc.Call(ctx, c)
}

// RunFlow runs each case in a subtest against a flow built afresh for the
// case by newFlow: the case's Stubs replace their steps through
// (*flow.Builder).Replace, opts apply (Through, From, RetryPolicy), the
// flow is built, initialised (flow.Flow.Init), run on a copy of Input,
// checked and closed. A build error fails the case.
//
// RunFlow takes a function returning a new Builder, not a Builder, because
// Replace changes the Builder it is called on and a Builder cannot be
// copied safely from outside package flow: a stub of one case would leak
// into the next. Declare the flow in a function and pass it:
//
//	func orderFlow() *flow.Builder { return flow.New("order", ...).Input(...) }
//
//	flowtest.RunFlow(t, orderFlow, cases)
//
// When a case fails, the run's trace (the steps that ran and how each
// ended) and its output context are logged.
func RunFlow(t *testing.T, newFlow func() *flow.Builder, cases []Case, opts ...Option) {
	t.Helper()
	if newFlow == nil {
		t.Fatal("flowtest: nil flow function")
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Helper()
			out, err := runFlow(t, newFlow, cfg, c)
			if out != nil && c.Check != nil {
				c.Check(t, out, err)
			}
		})
	}
}

// runFlow runs one case; out is nil when the flow could not be run.
func runFlow(t caseT, newFlow func() *flow.Builder, cfg config, c Case) (out *fc.Context, err error) {
	t.Helper()
	b := newFlow()
	if b == nil {
		t.Errorf("flowtest: the flow function returned nil")
		return nil, nil
	}
	for _, name := range slices.Sorted(maps.Keys(c.Stubs)) {
		s := c.Stubs[name]
		if s == nil {
			t.Errorf("flowtest: stub %q is nil", name)
			return nil, nil
		}
		s.reset()
		b.Replace(name, s.Service(name))
	}
	if cfg.policy != nil {
		b.Retry(*cfg.policy)
	}
	if len(c.MockInput) > 0 {
		b.Use(mockInput(c.MockInput))
	}
	f, err := b.Build()
	if err != nil {
		t.Errorf("flowtest: build: %v", err)
		return nil, nil
	}
	for _, name := range slices.Sorted(maps.Keys(c.MockInput)) {
		if _, ok := f.Lookup(name); !ok {
			t.Errorf("flowtest: mock input: flow %q has no step named %q", f.Name(), name)
			return nil, nil
		}
	}
	ctx := t.Context()
	if err := f.Init(ctx); err != nil {
		t.Errorf("flowtest: init: %v", err)
		return nil, nil
	}
	defer func() {
		if err := f.Close(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("flowtest: close: %v", err)
		}
	}()
	var tr flow.Trace
	runOpts := []flow.RunOption{flow.WithTrace(&tr)}
	if cfg.from != "" {
		runOpts = append(runOpts, flow.From(cfg.from))
	}
	if cfg.through != "" {
		runOpts = append(runOpts, flow.Through(cfg.through))
	}
	out, err = f.Run(ctx, c.Input, runOpts...)
	if !check(t, c, out, err) {
		t.Logf("trace of flow %q: %s", f.Name(), traceLine(&tr))
		t.Logf("output context: %s", out)
	}
	return out, err
}

// traceLine summarises a trace: `validate ok, price stop ("no items")`.
func traceLine(tr *flow.Trace) string {
	if len(tr.Steps) == 0 {
		return "no step ran"
	}
	parts := make([]string, len(tr.Steps))
	for i, s := range tr.Steps {
		parts[i] = s.Name + " " + s.Outcome.String()
		if s.Err != "" {
			parts[i] += fmt.Sprintf(" (%q)", s.Err)
		}
	}
	return strings.Join(parts, ", ")
}

// check asserts one case's outcome on t and reports whether it passed.
// Every failure is one line, reported with t.Errorf from a helper, so it
// shows at the line that called RunFlow or RunService (a testify failure
// would add an error trace of this package's frames, which says nothing):
//
//	unexpected error (failed): flow "order": step "charge": boom
//	error kind: want stop, got failed: ...
//	want a stop error, got none
//	error "..." does not contain "declined"
//	missing keys: "discount", "total" (present: items, tier)
//	key "total": want 16, got 20
//	key "coupon": want absent, got "X1"
//	stub "charge": call 1: key "amount": want 16, got 20
func check(t assert.TestingT, c Case, out *fc.Context, err error) bool {
	r := newReporter(t)
	r.h.Helper()

	want, got := c.Err, errors.KindOf(err)
	anyErr := want == errors.KindOK && (c.ErrAny || c.ErrContains != "")
	switch {
	case !compare.Expectable(want):
		r.fail("flowtest: Err %s: no run ends with it; expect one of %s", want, kindList())
	case want == errors.KindOK && !anyErr && err != nil:
		r.fail("unexpected error (%s): %v", got, err)
	case err == nil && anyErr:
		r.fail("want an error, got none")
	case err == nil && want != errors.KindOK:
		r.fail("want a %s error, got none", want)
	case want != errors.KindOK && !compare.Kind(want, got):
		r.fail("error kind: want %s, got %s: %v", want, got, err)
	}
	if c.ErrContains != "" && err != nil && !strings.Contains(err.Error(), c.ErrContains) {
		r.fail("error %q does not contain %q", err.Error(), c.ErrContains)
	}

	if out == nil {
		out = fc.New()
	}
	r.keys(c.Want, out, "")
	for _, k := range c.Absent {
		if v, has := out.Get(k); has {
			r.fail("key %q: want absent, got %s", k, compare.Text(v))
		}
	}

	for _, name := range slices.Sorted(maps.Keys(c.Stubs)) {
		s := c.Stubs[name]
		if s == nil || s.Want == nil {
			continue
		}
		calls := s.recorded()
		if len(calls) == 0 {
			r.fail("stub %q: never called", name)
		}
		for i, seen := range calls {
			r.keys(s.Want, seen, fmt.Sprintf("stub %q: call %d: ", name, i+1))
		}
	}
	return r.ok
}

// reporter reports a case's failures on t. Each method calls r.h.Helper
// itself: Helper marks its direct caller only.
type reporter struct {
	t  assert.TestingT
	h  interface{ Helper() }
	ok bool
}

func newReporter(t assert.TestingT) *reporter {
	h, ok := t.(interface{ Helper() })
	if !ok {
		h = noHelper{}
	}
	return &reporter{t: t, h: h, ok: true}
}

type noHelper struct{}

func (noHelper) Helper() {}

func (r *reporter) fail(format string, args ...any) {
	r.h.Helper()
	r.ok = false
	r.t.Errorf("%s", fmt.Sprintf(format, args...))
}

// keys reports the keys of want missing from or different in got, each
// message starting with prefix.
func (r *reporter) keys(want map[string]any, got *fc.Context, prefix string) {
	r.h.Helper()
	missing, diffs := subset(want, got)
	if len(missing) > 0 {
		r.fail("%smissing keys: %s (present: %s)", prefix, quoteAll(missing), presentKeys(got))
	}
	for _, d := range diffs {
		r.fail("%s%s", prefix, d)
	}
}

// kindList names the kinds of error a case may expect: "stop, retry, ...".
func kindList() string {
	names := make([]string, len(compare.ErrorKinds))
	for i, k := range compare.ErrorKinds {
		names[i] = k.String()
	}
	return strings.Join(names, ", ")
}

func presentKeys(c *fc.Context) string {
	keys := c.Keys()
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, ", ")
}

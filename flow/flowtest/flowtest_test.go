package flowtest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// recorder is a caseT that records failures and logs instead of failing.
type recorder struct {
	ctx  context.Context
	errs []string
	logs []string
}

func newRecorder(t *testing.T) *recorder { return &recorder{ctx: t.Context()} }

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *recorder) Helper()                  {}
func (r *recorder) Context() context.Context { return r.ctx }

// failures returns the message of each failure.
func (r *recorder) failures() []string { return r.errs }

type item struct {
	SKU   string  `json:"sku"`
	Price float64 `json:"price"`
	Qty   int     `json:"qty"`
}

func TestCheckPasses(t *testing.T) {
	out := fc.FromMap(map[string]any{
		"total":    16.0,
		"count":    int64(3),
		"tier":     "gold",
		"items":    []item{{SKU: "a", Price: 8, Qty: 2}},
		"extra":    true,
		"nested":   map[string]any{"n": 1},
		"ratio":    0.1 + 0.2,
		"customer": map[string]any{"tier": "gold", "id": 7},
	})
	for _, c := range []struct {
		c   Case
		err error
	}{
		{c: Case{Want: map[string]any{"total": 16, "count": 3.0, "tier": "gold"}}},
		{c: Case{Want: map[string]any{
			"items":  []map[string]any{{"sku": "a", "price": 8, "qty": 2}},
			"nested": map[string]float64{"n": 1.0},
		}}},
		{c: Case{Absent: []string{"coupon", "discount"}}},
		{c: Case{Want: map[string]any{"ratio": 0.3}}},                               // float rounding: the rule YAML tables use too
		{c: Case{Want: map[string]any{"customer": map[string]any{"tier": "gold"}}}}, // a nested subset
		{c: Case{Err: errors.KindStop, ErrContains: "no items"}, err: errors.Stop("no items")},
		{c: Case{Err: errors.KindRetry}, err: &errors.ExhaustedError{Attempts: 3, Last: errors.Retry(nil)}},
		{c: Case{Err: errors.KindRetry}, err: errors.Retry(nil)},
		{c: Case{Err: errors.KindRetryExhausted}, err: &errors.ExhaustedError{Attempts: 3, Last: errors.Retry(nil)}},
		{c: Case{Err: errors.KindFatal}, err: errors.Fatal(nil)},
		{c: Case{Err: errors.KindPanic}, err: errors.Recovered("boom")},
		{c: Case{Err: errors.KindCanceled}, err: context.Canceled},
		{c: Case{Err: errors.KindFailed}, err: errors.New("boom")},
		{c: Case{ErrAny: true}, err: errors.Stop("x")},
		{c: Case{ErrContains: "boom"}, err: errors.New("boom")},
	} {
		r := newRecorder(t)
		assert.True(t, check(r, c.c, out, c.err), "%+v", c.c)
		assert.Empty(t, r.failures(), "%+v", c.c)
	}
}

func TestCheckFailureMessages(t *testing.T) {
	out := fc.FromMap(map[string]any{"total": 20.0, "tier": "silver", "n": 3, "coupon": "X1"})
	charge := &Stub{Want: map[string]any{"total": 16, "card": "c-1"}}
	charge.calls = []*fc.Context{fc.FromMap(map[string]any{"total": 20, "card": "c-1"}), fc.FromMap(map[string]any{"total": 16})}
	for _, tc := range []struct {
		name string
		c    Case
		err  error
		want []string
	}{
		{"value", Case{Want: map[string]any{"total": 16}}, nil,
			[]string{`key "total": want 16, got 20`}},
		{"close is not equal", Case{Want: map[string]any{"total": 20.000001}}, nil,
			[]string{`key "total": want 20.000001, got 20`}},
		{"string value", Case{Want: map[string]any{"tier": "gold"}}, nil,
			[]string{`key "tier": want "gold", got "silver"`}},
		{"number is not a string", Case{Want: map[string]any{"n": "3"}}, nil,
			[]string{`key "n": want "3", got 3`}},
		{"missing keys", Case{Want: map[string]any{"b": 1, "a": 1, "total": 20}}, nil,
			[]string{`missing keys: "a", "b" (present: coupon, n, tier, total)`}},
		{"present key", Case{Absent: []string{"coupon"}}, nil,
			[]string{`key "coupon": want absent, got "X1"`}},
		{"unexpected error", Case{}, errors.New("boom"),
			[]string{`unexpected error (failed): boom`}},
		{"no error", Case{Err: errors.KindStop}, nil,
			[]string{`want a stop error, got none`}},
		{"no error of any kind", Case{ErrAny: true}, nil,
			[]string{`want an error, got none`}},
		{"no error for text", Case{ErrContains: "declined"}, nil,
			[]string{`want an error, got none`}},
		{"wrong kind", Case{Err: errors.KindStop}, errors.Retry(errors.New("slow")),
			[]string{`error kind: want stop, got retry: retry: slow`}},
		{"a retry is not exhausted", Case{Err: errors.KindRetryExhausted}, errors.Retry(errors.New("slow")),
			[]string{`error kind: want retry-exhausted, got retry: retry: slow`}},
		{"no run ends skipped", Case{Err: errors.KindSkipped}, nil,
			[]string{`flowtest: Err skipped: no run ends with it; expect one of stop, dropped, retry, retry-exhausted, fatal, failed, panic, canceled`}},
		{"wrong text", Case{Err: errors.KindStop, ErrContains: "declined"}, errors.Stop("no items"),
			[]string{`error "stop: no items" does not contain "declined"`}},
		{"stub calls", Case{Stubs: map[string]*Stub{"charge": charge}}, nil,
			[]string{`stub "charge": call 1: key "total": want 16, got 20`,
				`stub "charge": call 2: missing keys: "card" (present: total)`}},
		{"stub never called", Case{Stubs: map[string]*Stub{"notify": {Want: map[string]any{}}}}, nil,
			[]string{`stub "notify": never called`}},
		{"several at once", Case{Want: map[string]any{"total": 16, "tier": "gold", "x": 1}}, errors.Fatal(nil),
			[]string{
				`unexpected error (fatal): fatal`,
				`missing keys: "x" (present: coupon, n, tier, total)`,
				`key "tier": want "gold", got "silver"`,
				`key "total": want 16, got 20`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRecorder(t)
			assert.False(t, check(r, tc.c, out, tc.err))
			assert.Equal(t, tc.want, r.failures())
		})
	}
}

// priceService is a real service under test: total = sum of price * qty.
var priceService = flow.Func("price", func(_ context.Context, in struct{ Items []item }) (struct{ Total float64 }, error) {
	if len(in.Items) == 0 {
		return struct{ Total float64 }{}, errors.Stop("no items")
	}
	var total float64
	for _, it := range in.Items {
		if it.Qty < 0 {
			panic("negative quantity")
		}
		total += it.Price * float64(it.Qty)
	}
	return struct{ Total float64 }{Total: total}, nil
})

func TestRunService(t *testing.T) {
	var checked atomic.Int32
	RunService(t, priceService, []Case{{
		Name:   "sums lines",
		Input:  map[string]any{"items": []any{map[string]any{"sku": "a", "price": 8, "qty": 2}}},
		Want:   map[string]any{"total": 16},
		Absent: []string{"discount"},
		Check: func(t *testing.T, out *fc.Context, err error) {
			checked.Add(1)
			assert.NoError(t, err)
		},
	}, {
		Name:        "no items stops",
		Input:       map[string]any{"items": []item{}},
		Err:         errors.KindStop,
		ErrContains: "no items",
		Absent:      []string{"total"},
	}, {
		Name:        "a panic is recovered",
		Input:       map[string]any{"items": []item{{SKU: "a", Qty: -1}}},
		Err:         errors.KindPanic,
		ErrContains: "negative quantity",
	}})
	assert.Equal(t, int32(1), checked.Load(), "Check runs")
}

func TestRunServiceRejectsStubs(t *testing.T) {
	r := newRecorder(t)
	runService(r, priceService, Case{Name: "x", Stubs: map[string]*Stub{"price": {}}})
	assert.Equal(t, []string{`flowtest: case "x" stubs steps "price", but a service has no steps to stub: use RunFlow`}, r.failures())
}

func TestRunServiceLogsOutputOnFailure(t *testing.T) {
	r := newRecorder(t)
	runService(r, priceService, Case{
		Input: map[string]any{"items": []item{{SKU: "a", Price: 8, Qty: 2}}},
		Want:  map[string]any{"total": 20},
	})
	assert.Equal(t, []string{`key "total": want 20, got 16`}, r.failures())
	require.Len(t, r.logs, 1)
	assert.Contains(t, r.logs[0], `output context: {"items":[{"sku":"a","price":8,"qty":2}],"total":16}`)
}

// orderSteps builds an order flow whose steps count their real runs.
type orderSteps struct {
	validate, charge, notify atomic.Int32
}

func (s *orderSteps) flow() *flow.Builder {
	return flow.New("order",
		flow.Step("validate", func(_ context.Context, c *fc.Context) error {
			s.validate.Add(1)
			if !c.Has("items") {
				return errors.Stop("no items")
			}
			c.Set("valid", true)
			return nil
		}, flow.Provides(fc.Key[bool]("valid"))),
		priceService,
		flow.Step("charge", func(_ context.Context, c *fc.Context) error {
			s.charge.Add(1)
			c.Set("payment_id", "real")
			return nil
		}, flow.Needs(fc.Key[float64]("total")), flow.Provides(fc.Key[string]("payment_id"))),
		flow.Step("notify", func(_ context.Context, c *fc.Context) error {
			s.notify.Add(1)
			c.Set("notified", true)
			return nil
		}, flow.Needs(fc.Key[string]("payment_id"))),
	).Input(fc.Any("items"))
}

var twoItems = []any{
	map[string]any{"sku": "a", "price": 8, "qty": 2},
	map[string]any{"sku": "b", "price": 4, "qty": 1},
}

func TestRunFlowStubsReplaceTheRealStep(t *testing.T) {
	var s orderSteps
	charge := &Stub{Set: map[string]any{"payment_id": "p-1"}, Want: map[string]any{"total": 20}}
	declined := &Stub{Err: errors.Stop("card declined")}
	RunFlow(t, s.flow, []Case{{
		Name:  "stubbed charge",
		Input: map[string]any{"items": twoItems},
		Want:  map[string]any{"total": 20, "payment_id": "p-1", "notified": true},
		Stubs: map[string]*Stub{"charge": charge},
	}, {
		Name:        "declined",
		Input:       map[string]any{"items": twoItems},
		Stubs:       map[string]*Stub{"charge": declined},
		Err:         errors.KindStop,
		ErrContains: "card declined",
		Absent:      []string{"payment_id", "notified"},
	}})
	assert.Equal(t, int32(0), s.charge.Load(), "the real charge must not run")
	assert.Equal(t, int32(1), s.notify.Load(), "notify runs after the stubbed charge only")

	calls := charge.Calls()
	require.Len(t, calls, 1)
	assert.Equal(t, 20.0, calls[0]["total"])
	assert.Equal(t, true, calls[0]["valid"])
	assert.NotContains(t, calls[0], "payment_id", "a call records what the stub received, not what it wrote")
	assert.Len(t, declined.Calls(), 1)
}

func TestRunFlowBuildsAFreshFlowPerCase(t *testing.T) {
	var s orderSteps
	RunFlow(t, s.flow, []Case{{
		Name:  "stubbed",
		Input: map[string]any{"items": twoItems},
		Stubs: map[string]*Stub{"charge": {Set: map[string]any{"payment_id": "p-1"}}},
		Want:  map[string]any{"payment_id": "p-1"},
	}, {
		Name:  "real",
		Input: map[string]any{"items": twoItems},
		Want:  map[string]any{"payment_id": "real"},
	}})
	assert.Equal(t, int32(1), s.charge.Load(), "the stub of one case does not leak into the next")
}

func TestRunFlowThrough(t *testing.T) {
	var s orderSteps
	RunFlow(t, s.flow, []Case{{
		Name:   "priced",
		Input:  map[string]any{"items": twoItems},
		Want:   map[string]any{"valid": true, "total": 20},
		Absent: []string{"payment_id", "notified"},
	}}, Through("price"))
	assert.Equal(t, int32(1), s.validate.Load())
	assert.Equal(t, int32(0), s.charge.Load(), "nothing runs after the Through step")
	assert.Equal(t, int32(0), s.notify.Load())
}

func TestRunFlowFrom(t *testing.T) {
	var s orderSteps
	RunFlow(t, s.flow, []Case{{
		Name:   "tail only",
		Input:  map[string]any{"items": twoItems, "total": 5},
		Want:   map[string]any{"payment_id": "real", "notified": true},
		Absent: []string{"valid"},
	}}, From("charge"))
	assert.Equal(t, int32(0), s.validate.Load())
}

func TestRunFlowRetryPolicy(t *testing.T) {
	var s orderSteps
	flaky := &Stub{Err: errors.Retry(errors.New("gateway timeout"))}
	RunFlow(t, s.flow, []Case{{
		Name:        "retry surfaces at once",
		Input:       map[string]any{"items": twoItems},
		Stubs:       map[string]*Stub{"charge": flaky},
		Err:         errors.KindRetry,
		ErrContains: "gateway timeout",
	}}, RetryPolicy(errors.NoRetry))
	assert.Len(t, flaky.Calls(), 1)
}

func TestRunFlowReportsBuildErrors(t *testing.T) {
	var s orderSteps
	r := newRecorder(t)
	out, _ := runFlow(r, s.flow, config{}, Case{Stubs: map[string]*Stub{"refund": {}}})
	assert.Nil(t, out)
	require.Len(t, r.failures(), 1)
	assert.Contains(t, r.failures()[0], `flowtest: build: flow "order": step "refund": cannot replace: no step has this name`)

	r = newRecorder(t)
	runFlow(r, func() *flow.Builder { return nil }, config{}, Case{})
	assert.Equal(t, []string{"flowtest: the flow function returned nil"}, r.failures())
}

func TestRunFlowLogsTraceOnFailure(t *testing.T) {
	var s orderSteps
	r := newRecorder(t)
	runFlow(r, s.flow, config{}, Case{
		Input: map[string]any{"items": twoItems},
		Stubs: map[string]*Stub{"charge": {Err: errors.New("boom")}},
		Want:  map[string]any{"total": 20},
	})
	assert.Equal(t, []string{`unexpected error (failed): flow "order": step "charge": boom`}, r.failures())
	require.Len(t, r.logs, 2)
	assert.Equal(t, `trace of flow "order": validate ok, price ok, charge failed ("boom")`, r.logs[0])
	assert.True(t, strings.HasPrefix(r.logs[1], "output context: {"), r.logs[1])
}

func TestStubRecordsCopies(t *testing.T) {
	s := &Stub{
		Set: map[string]any{"out": 1},
		Func: func(_ context.Context, c *fc.Context) error {
			c.Set("seen", c.Has("out"))
			return nil
		},
		Err: errors.New("charge failed"),
	}
	nested := map[string]any{"list": []any{1, 2}}
	c := fc.FromMap(map[string]any{"in": nested})
	err := s.Service("step").Call(t.Context(), c)
	assert.EqualError(t, err, "charge failed", "Func returned nil: Err is returned")
	assert.Equal(t, true, c.Map()["seen"], "Set is written before Func runs")

	nested["list"].([]any)[0] = 99
	nested["added"] = true
	require.Len(t, s.Calls(), 1)
	assert.Equal(t, map[string]any{"in": map[string]any{"list": []any{1, 2}}}, s.Calls()[0])

	s.Func = func(context.Context, *fc.Context) error { return errors.Stop("from func") }
	assert.EqualError(t, s.Service("step").Call(t.Context(), fc.New()), "stop: from func", "Func's error wins over Err")
	assert.Len(t, s.Calls(), 2)
	assert.Equal(t, "step", s.Service("step").Name())
}

func TestRunFlowMockInput(t *testing.T) {
	var s orderSteps
	var seen []any
	newFlow := func() *flow.Builder {
		return flow.New("order", priceService,
			flow.Step("charge", func(_ context.Context, c *fc.Context) error {
				s.charge.Add(1)
				v, _ := c.Get("total")
				seen = append(seen, v)
				c.Set("payment_id", "real")
				return nil
			}, flow.Needs(fc.Key[float64]("total")))).Input(fc.Any("items"))
	}
	RunFlow(t, newFlow, []Case{{
		Name:      "the real step runs on the mocked input",
		Input:     map[string]any{"items": twoItems},
		MockInput: map[string]map[string]any{"charge": {"total": 99.0}},
		Want:      map[string]any{"total": 99.0, "payment_id": "real"},
	}})
	assert.Equal(t, int32(1), s.charge.Load())
	assert.Equal(t, []any{99.0}, seen)

	r := newRecorder(t)
	runFlow(r, newFlow, config{}, Case{Name: "x", MockInput: map[string]map[string]any{"nope": {"a": 1}}})
	assert.Equal(t, []string{`flowtest: mock input: flow "order" has no step named "nope"`}, r.failures())
}

package flow_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

var (
	Items    = fc.Key[[]Item]("items")
	Tier     = fc.Key[string]("tier")
	Total    = fc.Key[float64]("total")
	Discount = fc.Key[float64]("discount")
)

type Item struct {
	SKU   string  `json:"sku"`
	Price float64 `json:"price"`
	Qty   int     `json:"qty"`
}

// record returns a step that appends its name to a shared log.
func record(name string, log *[]string, opts ...flow.StepOption) flow.Service {
	return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
		*log = append(*log, name)
		c.Set(name, true)
		return nil
	}, opts...)
}

func TestSequenceOrderAndVisibility(t *testing.T) {
	var log []string
	f, err := flow.New("seq",
		record("a", &log, flow.Provides(fc.Any("a"))),
		flow.Step("b", func(ctx context.Context, c *fc.Context) error {
			log = append(log, "b")
			_, sawA := c.Get("a")
			require.True(t, sawA, "b must see what a wrote")
			c.Set("b", true)
			return nil
		}, flow.Needs(fc.Any("a"))),
		record("c", &log),
	).Build()
	require.NoError(t, err)

	c, err := f.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c"}, log)
	assert.Equal(t, map[string]any{"a": true, "b": true, "c": true}, c.Map())
}

type priceIn struct {
	Items []Item
}
type priceOut struct {
	Total float64
}

var price = flow.Func("price", func(ctx context.Context, in priceIn) (priceOut, error) {
	var t float64
	for _, it := range in.Items {
		t += it.Price * float64(it.Qty)
	}
	return priceOut{Total: t}, nil
})

func TestFuncBindsInputsAndOutputs(t *testing.T) {
	f, err := flow.New("checkout", price).Input(Items).Build()
	require.NoError(t, err)
	// JSON-shaped input: []any of map[string]any with float64 numbers.
	in, err := fc.FromJSON([]byte(`{"items": [{"sku": "a", "price": 2.5, "qty": 2}, {"sku": "b", "price": 1, "qty": 3}]}`))
	require.NoError(t, err)
	require.NoError(t, f.RunContext(t.Context(), in))
	total, err := Total.Get(in)
	require.NoError(t, err)
	assert.Equal(t, 8.0, total)
}

func TestFuncTagsOptionalAndOmitEmpty(t *testing.T) {
	type in struct {
		CustomerID string
		Note       string `flow:"memo,optional"`
		Skipped    int    `flow:"-"`
		hidden     int
	}
	type out struct {
		Greeting string `flow:"greeting"`
		Warn     string `flow:",omitempty"`
	}
	var got in
	svc := flow.Func("greet", func(ctx context.Context, i in) (out, error) {
		got = i
		return out{Greeting: "hi " + i.CustomerID + i.Note}, nil
	})
	contract := svc.(flow.Contractor).Contract()
	assert.Equal(t, "customer_id string", contract.Needs[0].String())
	assert.Equal(t, "memo", contract.Needs[1].Name)
	assert.True(t, contract.Needs[1].Optional)
	require.Len(t, contract.Provides, 2)

	f, err := flow.New("greet", svc).Input(fc.Key[string]("customer_id"), fc.Key[string]("memo").Optional()).Build()
	require.NoError(t, err)
	c, err := f.Run(t.Context(), map[string]any{"customer_id": "c1"})
	require.NoError(t, err)
	assert.Equal(t, "c1", got.CustomerID)
	assert.Equal(t, map[string]any{"customer_id": "c1", "greeting": "hi c1"}, c.Map(), "omitempty skips the zero warn")
	_ = got.hidden
}

func TestFuncMapOutput(t *testing.T) {
	svc := flow.Func("m", func(ctx context.Context, _ struct{}) (map[string]any, error) {
		return map[string]any{"x": 1, "y": "two"}, nil
	})
	c := fc.New()
	require.NoError(t, svc.Call(t.Context(), c))
	assert.Equal(t, map[string]any{"x": 1, "y": "two"}, c.Map())
}

func TestFuncWritesNothingOnError(t *testing.T) {
	svc := flow.Func("f", func(ctx context.Context, _ struct{}) (priceOut, error) {
		return priceOut{Total: 1}, errors.New("boom")
	})
	c := fc.New()
	require.EqualError(t, svc.Call(t.Context(), c), "boom")
	assert.Equal(t, 0, c.Len())
}

func TestFuncWrongTypeAtRunIsKeyError(t *testing.T) {
	f, err := flow.New("checkout", price).Input(fc.Any("items")).Build()
	require.NoError(t, err)
	_, err = f.Run(t.Context(), map[string]any{"items": "not a list"})
	require.Error(t, err)
	var ke *fc.KeyError
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, "items", ke.Key)
	assert.Equal(t, `flow "checkout": step "price": key "items": want []flow_test.Item, got string`, err.Error())
}

func TestBuildErrors(t *testing.T) {
	noop := func(ctx context.Context, c *fc.Context) error { return nil }
	var nilSvc flow.Service
	tests := []struct {
		name  string
		build func() error
		want  []string
	}{
		{"missing input of a Func", func() error {
			_, err := flow.New("checkout", price).Build()
			return err
		}, []string{`flow "checkout": step "price": key "items": needed but not provided`}},
		{"provided by an earlier step", func() error {
			_, err := flow.New("checkout", flow.Step("load", noop, flow.Provides(Items)), price).Build()
			return err
		}, nil},
		{"provided later is too late", func() error {
			_, err := flow.New("checkout", price, flow.Step("load", noop, flow.Provides(Items))).Build()
			return err
		}, []string{`step "price": key "items": needed but not provided`}},
		{"type disagreement", func() error {
			_, err := flow.New("checkout", flow.Step("load", noop, flow.Provides(fc.Key[string]("items"))), price).Build()
			return err
		}, []string{`step "price": key "items": needed as []flow_test.Item, but step "load" provides string`}},
		{"duplicate names", func() error {
			_, err := flow.New("dup", flow.Step("a", noop), flow.Step("a", noop)).Build()
			return err
		}, []string{`flow "dup": step "a": duplicate step name (also at dup/a)`}},
		{"named makes a reuse legal", func() error {
			s := flow.Step("a", noop)
			_, err := flow.New("dup", s, flow.Named("a2", s)).Build()
			return err
		}, nil},
		{"empty flow", func() error { _, err := flow.New("empty").Build(); return err }, []string{`flow "empty": no steps`}},
		{"no name", func() error { _, err := flow.New("", flow.Step("a", noop)).Build(); return err }, []string{`flow "": flow has no name`}},
		{"nil service", func() error { _, err := flow.New("n", nilSvc).Build(); return err }, []string{`flow "n": flow: step 1 is nil`}},
		{"nil step func", func() error { _, err := flow.New("n", flow.Step("s", nil)).Build(); return err }, []string{`step "s": nil function`}},
		{"a renamed broken Func still fails the build", func() error {
			_, err := flow.New("n", flow.Named("g", flow.Func("f", func(ctx context.Context, in int) (struct{}, error) { return struct{}{}, nil }))).Build()
			return err
		}, []string{`step "g": input type int: must be a struct`}},
		{"bad Func types", func() error {
			_, err := flow.New("n", flow.Func("f", func(ctx context.Context, in int) (struct{}, error) { return struct{}{}, nil })).Build()
			return err
		}, []string{`step "f": input type int: must be a struct`}},
		{"bad expr syntax", func() error {
			_, err := flow.New("n", flow.Fork("len(items) >", flow.Default(flow.Step("s", noop)))).Input(Items).Build()
			return err
		}, []string{`step "fork(len(items) >)": bad expression`}},
		{"expr reads unknown key", func() error {
			_, err := flow.New("n", flow.When("total > 100", flow.Step("s", noop))).Build()
			return err
		}, []string{`step "when(total > 100)": key "total": read by expression "total > 100" but not provided`}},
		{"expr type error", func() error {
			_, err := flow.New("n", flow.When("tier > 100", flow.Step("s", noop))).Input(Tier).Build()
			return err
		}, []string{`step "when(tier > 100)": bad expression`}},
		{"condition not bool", func() error {
			_, err := flow.New("n", flow.When("total + 1", flow.Step("s", noop))).Input(Total).Build()
			return err
		}, []string{`step "when(total + 1)": bad expression`}},
		{"fork without cases, duplicate case, two defaults", func() error {
			s := func(n string) flow.Service { return flow.Step(n, noop) }
			_, err := flow.New("n",
				flow.Fork("tier"),
				flow.Fork("tier", flow.On("a", s("x")), flow.On("a", s("y")), flow.Default(s("z")), flow.Default(s("w")), flow.On("b")),
			).Input(Tier).Build()
			return err
		}, []string{`step "fork(tier)": no cases`, `duplicate case "a"`, `more than one default case`, `case "b" has no steps`}},
		{"all errors are reported", func() error {
			_, err := flow.New("n", price, flow.Step("a", noop), flow.Step("a", noop), flow.When("x", flow.Step("b", noop))).Build()
			return err
		}, []string{`key "items"`, `duplicate step name`, `key "x"`}},
		{"bad policy", func() error {
			_, err := flow.New("n", flow.Step("a", noop)).Retry(errors.Policy{Jitter: 2}).Build()
			return err
		}, []string{`bad retry policy`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.build()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var be *flow.BuildError
			require.ErrorAs(t, err, &be)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestForkOnContextKeyAndExpr(t *testing.T) {
	set := func(name string, v float64) flow.Service {
		return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
			Discount.Set(c, v)
			return nil
		}, flow.Provides(Discount))
	}
	type customer struct {
		Tier string `json:"tier"`
	}
	byKey := flow.New("bykey",
		flow.Fork("tier",
			flow.On("gold", set("gold", 0.2)),
			flow.On("silver", set("silver", 0.1)),
			flow.Default(set("std", 0)),
		),
		// discount is provided on every path, so a later step may need it.
		flow.Step("after", func(ctx context.Context, c *fc.Context) error { return nil }, flow.Needs(Discount)),
	).Input(Tier).MustBuild()
	byExpr := flow.New("byexpr",
		flow.Fork("customer.tier",
			flow.On("gold", set("gold", 0.2)),
			flow.On("silver", set("silver", 0.1)),
		),
	).Input(fc.Key[map[string]any]("customer")).MustBuild()

	tests := []struct {
		flow  *flow.Flow
		input map[string]any
		want  float64
		stop  string
	}{
		{byKey, map[string]any{"tier": "gold"}, 0.2, ""},
		{byKey, map[string]any{"tier": "silver"}, 0.1, ""},
		{byKey, map[string]any{"tier": "bronze"}, 0, ""},
		{byExpr, map[string]any{"customer": map[string]any{"tier": "gold"}}, 0.2, ""},
		{byExpr, map[string]any{"customer": map[string]any{"tier": "silver"}}, 0.1, ""},
		{byExpr, map[string]any{"customer": map[string]any{"tier": "iron"}}, 0,
			`flow "byexpr": step "fork(customer.tier)": stop: fork on "customer.tier": no case for value "iron" and no default`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.flow.Name(), tt.input), func(t *testing.T) {
			c, err := tt.flow.Run(t.Context(), tt.input)
			if tt.stop != "" {
				require.Error(t, err)
				assert.True(t, errors.IsStop(err))
				assert.Equal(t, tt.stop, err.Error())
				return
			}
			require.NoError(t, err)
			d, err := Discount.Get(c)
			require.NoError(t, err)
			assert.Equal(t, tt.want, d)
		})
	}
}

func TestForkOnlyIntersectionIsKnown(t *testing.T) {
	noop := func(ctx context.Context, c *fc.Context) error { return nil }
	_, err := flow.New("f",
		flow.Fork("tier",
			flow.On("gold", flow.Step("g", noop, flow.Provides(Discount))),
			flow.On("silver", flow.Step("s", noop)),
		),
		flow.Step("after", noop, flow.Needs(Discount)),
	).Input(Tier).Build()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `step "after": key "discount": needed but not provided`)
}

func TestForkMatchesNonStringValues(t *testing.T) {
	var got []string
	f := flow.New("f", flow.Fork("v",
		flow.On("true", record("t", &got)),
		flow.On("3", record("three", &got)),
		flow.On("2.5", record("frac", &got)),
		flow.On("nil", record("none", &got)),
	)).Input(fc.Any("v").Info()).MustBuild()
	for _, v := range []any{true, 3, 3.0, 2.5, nil} {
		_, err := f.Run(t.Context(), map[string]any{"v": v})
		require.NoError(t, err, "%v", v)
	}
	assert.Equal(t, []string{"t", "three", "three", "frac", "none"}, got)
}

func TestWhenUnless(t *testing.T) {
	var log []string
	f := flow.New("w",
		flow.When("total > 100", record("big", &log)),
		flow.Unless("total > 100", record("small", &log)),
	).Input(Total).MustBuild()
	for _, total := range []float64{50, 150} {
		_, err := f.Run(t.Context(), map[string]any{"total": total})
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"small", "big"}, log)
}

func TestStopEndsRunAndKeepsPartialContext(t *testing.T) {
	var calls atomic.Int32
	f := flow.New("stop",
		flow.Step("a", func(ctx context.Context, c *fc.Context) error { c.Set("a", 1); return nil }),
		flow.Step("validate", func(ctx context.Context, c *fc.Context) error {
			calls.Add(1)
			return errors.Stop("no items")
		}),
		flow.Step("never", func(ctx context.Context, c *fc.Context) error { t.Error("ran after Stop"); return nil }),
	).MustBuild()
	c, err := f.Run(t.Context(), nil)
	require.Error(t, err)
	assert.True(t, errors.IsStop(err))
	assert.Equal(t, `flow "stop": step "validate": stop: no items`, err.Error())
	assert.Equal(t, int32(1), calls.Load(), "Stop is never retried")
	assert.Equal(t, map[string]any{"a": 1}, c.Map())
	var se *flow.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "validate", se.Step)
	assert.Equal(t, "stop/validate", se.Path)
}

func TestRetryRunsOnlyFailingStepWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var before, flaky atomic.Int32
		var waits []time.Duration
		last := time.Now()
		f := flow.New("retry",
			flow.Step("before", func(ctx context.Context, c *fc.Context) error { before.Add(1); return nil }),
			flow.Step("flaky", func(ctx context.Context, c *fc.Context) error {
				waits = append(waits, time.Since(last))
				last = time.Now()
				if flaky.Add(1) < 4 {
					return errors.Retry(fmt.Errorf("timeout %d", flaky.Load()))
				}
				c.Set("ok", true)
				return nil
			}),
		).Retry(errors.Policy{Initial: 100 * time.Millisecond, Multiplier: 2, MaxAttempts: 5}).MustBuild()
		c, err := f.Run(t.Context(), nil)
		require.NoError(t, err)
		assert.Equal(t, int32(1), before.Load())
		assert.Equal(t, int32(4), flaky.Load())
		assert.Equal(t, []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}, waits)
		assert.Equal(t, true, c.View()["ok"])
	})
}

func TestRetryExhaustedWrapsLastCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		cause := errors.New("db busy")
		f := flow.New("x", flow.Retry(flow.Step("s", func(ctx context.Context, c *fc.Context) error {
			n.Add(1)
			return errors.Retry(cause)
		}), errors.Policy{MaxAttempts: 3})).MustBuild()
		_, err := f.Run(t.Context(), nil)
		require.Error(t, err)
		assert.Equal(t, int32(3), n.Load())
		assert.ErrorIs(t, err, cause)
		assert.ErrorIs(t, err, errors.ErrExhausted)
		var se *flow.StepError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, 3, se.Attempts)
		assert.Contains(t, err.Error(), `flow "x": step "s": retries exhausted after 3 attempts`)
	})
}

func TestCancelEndsBackoffWaitAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		f := flow.New("x", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
			return errors.Retry(errors.New("later"))
		})).Retry(errors.Policy{Initial: time.Hour, MaxAttempts: 10}).MustBuild()
		start := time.Now()
		go func() {
			time.Sleep(time.Second)
			cancel()
		}()
		_, err := f.Run(ctx, nil)
		require.Error(t, err)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, time.Second, time.Since(start), "the wait ends when ctx is canceled, not after an hour")
	})
}

func TestFatalIsNeverRetried(t *testing.T) {
	var n atomic.Int32
	f := flow.New("x", flow.Step("db", func(ctx context.Context, c *fc.Context) error {
		n.Add(1)
		return errors.Fatal(errors.New("connection lost"))
	})).Retry(errors.Policy{MaxAttempts: 5, RetryAll: true}).MustBuild()
	_, err := f.Run(t.Context(), nil)
	assert.True(t, errors.IsFatal(err))
	assert.Equal(t, int32(1), n.Load())
}

func TestPanicBecomesErrorWithStack(t *testing.T) {
	f := flow.New("x", flow.Step("buggy", func(ctx context.Context, c *fc.Context) error {
		var m map[string]int
		m["boom"] = 1
		return nil
	})).MustBuild()
	_, err := f.Run(t.Context(), nil)
	require.Error(t, err)
	var pe *errors.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, string(pe.Stack), "flow_test.TestPanicBecomesErrorWithStack")
	assert.Equal(t, errors.KindPanic, errors.KindOf(err))
	assert.Contains(t, err.Error(), `step "buggy": panic: assignment to entry in nil map`)
}

func TestInputIsValidatedAndConverted(t *testing.T) {
	var got int
	qty := fc.Key[int]("qty")
	f := flow.New("in", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
		v, ok := c.Get("qty")
		got, _ = v.(int) // converted in place: a plain assertion works
		_ = ok
		return nil
	}, flow.Needs(qty))).Input(qty).MustBuild()

	c, err := fc.FromJSON([]byte(`{"qty": 4}`))
	require.NoError(t, err)
	require.NoError(t, f.RunContext(t.Context(), c))
	assert.Equal(t, 4, got)

	_, err = f.Run(t.Context(), nil)
	assert.True(t, errors.IsStop(err))
	assert.EqualError(t, err, `flow "in": step "input": stop: input "qty": missing`)

	_, err = f.Run(t.Context(), map[string]any{"qty": "four"})
	assert.True(t, errors.IsStop(err))
	assert.Contains(t, err.Error(), `input "qty": want int, got string`)

	assert.EqualError(t, f.RunContext(t.Context(), nil), `flow "in": nil context`)
}

func TestNestedFlowIsAStep(t *testing.T) {
	inner := flow.New("pricing", price).Input(Items).MustBuild()
	assert.Equal(t, flow.Contract{Needs: []fc.KeyInfo{Items.Info()}, Provides: []fc.KeyInfo{Total.Info()}}, inner.Contract())

	var total float64
	outer, err := flow.New("order",
		inner,
		flow.Func("report", func(ctx context.Context, in struct{ Total float64 }) (struct{}, error) {
			total = in.Total
			return struct{}{}, nil
		}),
	).Input(Items).Build()
	require.NoError(t, err)
	_, err = outer.Run(t.Context(), map[string]any{"items": []Item{{Price: 2, Qty: 2}}})
	require.NoError(t, err)
	assert.Equal(t, 4.0, total)

	_, err = flow.New("order", inner).Build()
	assert.ErrorContains(t, err, `step "pricing": key "items": needed but not provided`)
}

func TestConcurrentRunsShareNothing(t *testing.T) {
	f := flow.New("conc",
		price,
		flow.Fork("total > 10 ? 'big' : 'small'",
			flow.On("big", flow.Step("big", func(ctx context.Context, c *fc.Context) error { c.Set("size", "big"); return nil })),
			flow.On("small", flow.Step("small", func(ctx context.Context, c *fc.Context) error { c.Set("size", "small"); return nil })),
		),
	).Input(Items).MustBuild()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Go(func() {
			for i := range 50 {
				qty := (g*50 + i) % 20
				c, err := f.Run(context.Background(), map[string]any{"items": []Item{{Price: 1, Qty: qty}}})
				if err != nil {
					errs <- err
					return
				}
				want := "small"
				if qty > 10 {
					want = "big"
				}
				if c.View()["size"] != want || c.View()["total"] != float64(qty) {
					errs <- fmt.Errorf("qty %d: got %v", qty, c)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestMiddlewareOrderAndStepInfo(t *testing.T) {
	var log []string
	mw := func(tag string) flow.Middleware {
		return func(next flow.Handler) flow.Handler {
			return func(ctx context.Context, s *flow.StepInfo, c *fc.Context) error {
				log = append(log, tag+">"+s.Name)
				err := next(ctx, s, c)
				log = append(log, tag+"<"+s.Name)
				return err
			}
		}
	}
	f := flow.New("mw", flow.Step("a", func(ctx context.Context, c *fc.Context) error { log = append(log, "a"); return nil })).
		Use(mw("1"), mw("2")).MustBuild()
	_, err := f.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, "1>a 2>a a 2<a 1<a", strings.Join(log, " "))
}

func TestCombinatorCalledOutsideFlow(t *testing.T) {
	seq := flow.Then(
		flow.Step("a", func(ctx context.Context, c *fc.Context) error { c.Set("n", 1); return nil }),
		flow.When("n == 1", flow.Step("b", func(ctx context.Context, c *fc.Context) error { c.Set("m", 2); return nil })),
	)
	c := fc.New()
	require.NoError(t, seq.Call(t.Context(), c))
	assert.Equal(t, map[string]any{"n": 1, "m": 2}, c.Map())

	bad := flow.Then()
	assert.ErrorContains(t, bad.Call(t.Context(), fc.New()), "then: no steps")
}

type lifecycle struct {
	name string
	log  *[]string
	fail bool
}

func (l *lifecycle) Name() string                                  { return l.name }
func (l *lifecycle) Call(ctx context.Context, c *fc.Context) error { return nil }
func (l *lifecycle) Init(ctx context.Context) error {
	*l.log = append(*l.log, "init "+l.name)
	if l.fail {
		return errors.New("no db")
	}
	return nil
}
func (l *lifecycle) Close(ctx context.Context) error {
	*l.log = append(*l.log, "close "+l.name)
	return nil
}

func TestInitClose(t *testing.T) {
	var log []string
	f := flow.New("lc", &lifecycle{name: "a", log: &log}, flow.Named("b", &lifecycle{name: "x", log: &log})).MustBuild()
	require.NoError(t, f.Init(t.Context()))
	require.NoError(t, f.Close(t.Context()))
	assert.Equal(t, []string{"init a", "init x", "close x", "close a"}, log)

	log = nil
	f = flow.New("lc", &lifecycle{name: "a", log: &log}, &lifecycle{name: "b", log: &log, fail: true}).MustBuild()
	err := f.Init(t.Context())
	assert.EqualError(t, err, `flow "lc": step "b": init: no db`)
	assert.Equal(t, []string{"init a", "init b", "close a"}, log)
}

package flow_test

import (
	"context"
	"fmt"
	"time"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func ExampleNew() {
	type line struct{ Price, Qty float64 }
	items := fc.Key[[]line]("items")

	price := flow.Func("price", func(ctx context.Context, in struct{ Items []line }) (struct{ Total float64 }, error) {
		if len(in.Items) == 0 {
			return struct{ Total float64 }{}, errors.Stop("no items")
		}
		var t float64
		for _, it := range in.Items {
			t += it.Price * it.Qty
		}
		return struct{ Total float64 }{t}, nil
	})
	f, err := flow.New("checkout", price).Input(items).Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := f.Run(context.Background(), map[string]any{"items": []line{{2, 3}, {1, 4}}})
	fmt.Println(c.View()["total"], err)
	_, err = f.Run(context.Background(), map[string]any{"items": []line{}})
	fmt.Println(err)
	// Output:
	// 10 <nil>
	// flow "checkout": step "price": stop: no items
}

func ExampleBuilder_Build() {
	needsTotal := flow.Func("discount", func(ctx context.Context, in struct{ Total float64 }) (struct{ Discount float64 }, error) {
		return struct{ Discount float64 }{in.Total * 0.1}, nil
	})
	_, err := flow.New("checkout", needsTotal, flow.When("discount > 10 && vip", flow.Step("notify", nil))).Build()
	fmt.Println(err)
	// Output:
	// flow "checkout": step "discount": key "total": needed but not provided: declare it in the flow's Input or have an earlier step provide it on every path
	// flow "checkout": step "when(discount > 10 && vip)": key "vip": read by expression "discount > 10 && vip" but not provided: declare it in the flow's Input or have an earlier step provide it on every path
	// flow "checkout": step "notify": nil function
}

func ExampleFork() {
	set := func(name string, rate float64) flow.Service {
		return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
			c.Set("rate", rate)
			return nil
		}, flow.Provides(fc.Key[float64]("rate")))
	}
	f := flow.New("discount", flow.Fork("customer.tier",
		flow.On("gold", set("gold", 0.2)),
		flow.Default(set("standard", 0)),
	)).Input(fc.Any("customer")).MustBuild()
	for _, tier := range []string{"gold", "new"} {
		c, _ := f.Run(context.Background(), map[string]any{"customer": map[string]any{"tier": tier}})
		fmt.Println(tier, c.View()["rate"])
	}
	// Output:
	// gold 0.2
	// new 0
}

func ExampleAll() {
	lookup := func(key string, v any) flow.Service {
		return flow.Step("load_"+key, func(ctx context.Context, c *fc.Context) error {
			c.Set(key, v)
			return nil
		}, flow.Provides(fc.Any(key)))
	}
	f := flow.New("profile", flow.All(lookup("orders", 3), lookup("score", 0.9))).MustBuild()
	c, err := f.Run(context.Background(), nil)
	fmt.Println(c, err)
	// Output: {"orders":3,"score":0.9} <nil>
}

func ExampleSaga() {
	step := func(name string, fail bool) flow.Service {
		return flow.Compensate(
			flow.Step(name, func(ctx context.Context, c *fc.Context) error {
				if fail {
					return errors.Stop("card declined")
				}
				fmt.Println("do", name)
				return nil
			}),
			func(ctx context.Context, c *fc.Context, cause error) error {
				fmt.Println("undo", name)
				return nil
			})
	}
	f := flow.New("order", flow.Saga(step("reserve", false), step("hold", false), step("charge", true))).MustBuild()
	_, err := f.Run(context.Background(), nil)
	fmt.Println(err)
	// Output:
	// do reserve
	// do hold
	// undo hold
	// undo reserve
	// flow "order": step "charge": stop: card declined
}

func ExampleRetry() {
	calls := 0
	flaky := flow.Step("fetch", func(ctx context.Context, c *fc.Context) error {
		calls++
		if calls < 3 {
			return errors.Retry(errors.New("timeout"))
		}
		return nil
	})
	f := flow.New("sync", flow.Retry(flaky, errors.Policy{MaxAttempts: 5, Initial: time.Millisecond})).MustBuild()
	_, err := f.Run(context.Background(), nil)
	fmt.Println(calls, err)
	// Output: 3 <nil>
}

func ExampleWithTrace() {
	f := flow.New("t", flow.Step("hello", func(ctx context.Context, c *fc.Context) error {
		c.Set("greeting", "hi")
		return nil
	})).MustBuild()
	var tr flow.Trace
	_, _ = f.Run(context.Background(), nil, flow.WithTrace(&tr))
	for _, s := range tr.Steps {
		fmt.Println(s.Name, s.Outcome, s.Attempts, s.Wrote)
	}
	// Output: hello ok 1 [greeting]
}

// stepOutcomes is a flow.Metrics that prints each observation.
type stepOutcomes struct{}

func (stepOutcomes) ObserveStep(flow, step string, outcome errors.Kind, _ time.Duration) {
	fmt.Println(flow, step, outcome)
}

func ExampleMeasure() {
	calls := 0
	flaky := flow.Step("fetch", func(ctx context.Context, c *fc.Context) error {
		calls++
		if calls < 3 {
			return errors.Retry(errors.New("timeout"))
		}
		return nil
	})
	f := flow.New("sync", flaky).
		Retry(errors.Policy{MaxAttempts: 5, Initial: time.Millisecond}).
		Use(flow.Measure(stepOutcomes{})).
		MustBuild()
	_, err := f.Run(context.Background(), nil)
	fmt.Println(err)
	// Output:
	// sync fetch will-retry
	// sync fetch will-retry
	// sync fetch ok
	// <nil>
}

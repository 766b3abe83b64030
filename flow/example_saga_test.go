package flow_test

import (
	"context"
	"fmt"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/provide"
)

// A transaction as the fulfillment framework writes one: a name, a
// should_execute, an execute and a compensate. The compensation is
// inside the condition, under the saga: it runs only if the transaction
// did.
func transaction(name string, should func(ctx context.Context, c *fc.Context) bool, fail bool) flow.Service {
	execute := flow.Step(name, func(ctx context.Context, c *fc.Context) error {
		if fail {
			return errors.Stop(name + " refused")
		}
		fmt.Println("execute", name)
		return nil
	})
	compensate := func(ctx context.Context, c *fc.Context, cause error) error {
		fmt.Println("compensate", name)
		return nil
	}
	return flow.WhenFunc(name, should, flow.Compensate(execute, compensate))
}

func always(context.Context, *fc.Context) bool { return true }
func never(context.Context, *fc.Context) bool  { return false }

func ExampleWhenFunc() {
	f := flow.New("purchase", flow.Saga(
		transaction("create_account", always, false),
		transaction("send_welcome", never, false), // skipped: never compensated
		transaction("provision", always, true),
	)).MustBuild()
	_, err := f.Run(context.Background(), nil)
	fmt.Println(err)
	// Output:
	// execute create_account
	// compensate create_account
	// flow "purchase": step "provision": stop: provision refused
}

func ExampleSagaGroup_CompensateFailed() {
	f := flow.New("purchase", flow.Saga(
		transaction("create_account", always, false),
		transaction("provision", always, true),
	).CompensateFailed()).MustBuild()
	_, err := f.Run(context.Background(), nil)
	fmt.Println(err)
	// Output:
	// execute create_account
	// compensate provision
	// compensate create_account
	// flow "purchase": step "provision": stop: provision refused
}

func ExampleSelect() {
	byProduct := func(ctx context.Context, c *fc.Context) (string, error) {
		p, _ := c.Get("product")
		return fmt.Sprint(p), nil
	}
	f := flow.New("purchase", flow.Saga(flow.Select("transactions", byProduct,
		flow.On("subscription", transaction("create_account", always, false)),
		flow.On("hardware", transaction("reserve", always, false), transaction("ship", always, false)),
	))).Input(fc.Key[string]("product")).MustBuild()
	var tr flow.Trace
	_, err := f.Run(context.Background(), map[string]any{"product": "hardware"}, flow.WithTrace(&tr))
	fmt.Println(err, tr.Steps[0].Name, tr.Steps[0].Selected)
	// Output:
	// execute reserve
	// execute ship
	// <nil> select(transactions) hardware
}

func ExampleBuilder_UseSelected() {
	announce := func(next flow.Handler) flow.Handler {
		return func(ctx context.Context, s *flow.StepInfo, c *fc.Context) error {
			fmt.Println("audit", s.Name)
			return next(ctx, s, c)
		}
	}
	byTier := func(ctx context.Context, c *fc.Context) (string, error) {
		if t, _ := c.Get("tier"); t == "enterprise" {
			return "audited", nil
		}
		return "plain", nil
	}
	f := flow.New("purchase", flow.Saga(transaction("provision", always, false))).
		Input(fc.Key[string]("tier")).
		UseSelected(byTier, map[string][]flow.Middleware{"audited": {announce}, "plain": nil}).
		MustBuild()
	_, _ = f.Run(context.Background(), map[string]any{"tier": "enterprise"})
	_, _ = f.Run(context.Background(), map[string]any{"tier": "small"})
	// Output:
	// audit provision
	// execute provision
	// execute provision
}

// Greeter is a service the container provides.
type Greeter struct{ Greeting string }

func ExampleBuilder_Provide() {
	c := provide.New()
	provide.MustRegister[*Greeter](c, func() *Greeter { return &Greeter{Greeting: "hello"} })
	greet := flow.Func("greet", func(ctx context.Context, in struct {
		Name    string
		Greeter *Greeter `provide:""`
	}) (struct{ Message string }, error) {
		return struct{ Message string }{in.Greeter.Greeting + " " + in.Name}, nil
	})
	f := flow.New("hello", greet).Input(fc.Key[string]("name")).Provide(c).MustBuild()
	out, err := f.Run(context.Background(), map[string]any{"name": "ada"})
	fmt.Println(out.View()["message"], err)
	fmt.Println(c.Close(context.Background()))
	// Output:
	// hello ada <nil>
	// <nil>
}

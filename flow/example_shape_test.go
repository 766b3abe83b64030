package flow_test

import (
	"context"
	"fmt"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

func ExamplePassthrough() {
	audit := flow.Step("audit", func(ctx context.Context, c *fc.Context) error {
		c.Set("status", "audited") // discarded: the flow goes on with the context it had
		return nil
	})
	f := flow.New("orders", flow.Passthrough(audit)).MustBuild()
	c, err := f.Run(context.Background(), map[string]any{"status": "new"})
	fmt.Println(c.View()["status"], err)
	// Output: new <nil>
}

func ExampleStoreInputAs() {
	normalize := flow.Step("normalize", func(ctx context.Context, c *fc.Context) error {
		c.Set("name", "ADA")
		return nil
	}, flow.Provides(fc.Any("name")))
	f := flow.New("people", flow.StoreInputAs(normalize, "raw")).MustBuild()
	c, _ := f.Run(context.Background(), map[string]any{"name": "ada"})
	fmt.Println(c.View()["name"], c.View()["raw"])
	// Output: ADA map[name:ada]
}

func ExampleStoreOutputAs() {
	lookup := flow.Step("lookup", func(ctx context.Context, c *fc.Context) error {
		c.Set("tier", "gold")
		c.Set("since", 2019)
		return nil
	}, flow.Provides(fc.Any("tier"), fc.Any("since")))
	// The lookup's writes are kept under one key; passthrough drops them
	// from the context itself.
	f := flow.New("orders", flow.Passthrough(flow.StoreOutputAs(lookup, "customer"))).MustBuild()
	c, _ := f.Run(context.Background(), nil)
	fmt.Println(c.Keys(), c.View()["customer"])
	// Output: [customer] map[since:2019 tier:gold]
}

func ExampleDivert() {
	set := func(name, key string, v any) flow.Service {
		return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
			c.Set(key, v)
			return nil
		}, flow.Provides(fc.Any(key)))
	}
	f := flow.New("orders",
		flow.Divert("total == 0", set("free", "note", "nothing to charge")),
		set("charge", "note", "charged"),
		set("ship", "shipped", true),
	).Input(fc.Any("total")).MustBuild()
	for _, total := range []int{0, 12} {
		c, err := f.Run(context.Background(), map[string]any{"total": total})
		fmt.Println(total, c.View()["note"], c.Has("shipped"), err)
	}
	// Output:
	// 0 nothing to charge false <nil>
	// 12 charged true <nil>
}

func ExampleFlow_Lookup() {
	charge := flow.Step("charge", func(context.Context, *fc.Context) error { return nil })
	f := flow.New("orders", flow.When("total > 0", charge)).Input(fc.Any("total")).MustBuild()
	info, ok := f.Lookup("charge")
	fmt.Println(ok, info.Path, info.Service == charge)
	_, ok = f.Lookup("refund")
	fmt.Println(ok)
	// Output:
	// true orders/when(total > 0)/charge true
	// false
}

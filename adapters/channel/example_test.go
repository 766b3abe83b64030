package channel_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func ExampleChannel_Handle() {
	f := flow.New("greet", flow.Step("greet", func(ctx context.Context, c *fc.Context) error {
		name, _ := c.Get("name")
		if name == nil || name == "" {
			return errors.Stop("name is required")
		}
		c.Set("greeting", fmt.Sprintf("hello %v", name))
		return nil
	})).MustBuild()
	st := store.NewMemory()
	ch, _ := channel.New(channel.Config{Name: "greetings", Flow: f, Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err := ch.Start(context.Background()); err != nil { // a channel handles messages while it runs
		panic(err)
	}
	defer ch.Stop(context.Background())

	for _, body := range []string{`{"name": "Ada"}`, `{"name": ""}`} {
		m := message.New("application/json", []byte(body), nil)
		res := ch.Handle(context.Background(), m)
		fmt.Println(res.Settle, res.State, res.Message.Context["greeting"], res.Err != nil)
	}
	done, _ := st.Count(context.Background(), store.Query{States: []store.State{store.Done}})
	fmt.Println("done in store:", done)
	// Output:
	// ack done hello Ada false
	// ack rejected <nil> true
	// done in store: 1
}

// A message whose last step failed is resumed at that step once it is
// fixed: the steps before it (here a charge) do not run again.
func ExampleChannel_ReplayFrom() {
	shipping := false
	f := flow.New("order",
		flow.Step("charge", func(ctx context.Context, c *fc.Context) error {
			fmt.Println("charging")
			c.Set("charge_id", "ch-1")
			return nil
		}),
		flow.Step("ship", func(ctx context.Context, c *fc.Context) error {
			if !shipping {
				return errors.New("carrier down")
			}
			charge, _ := c.Get("charge_id")
			c.Set("shipped_for", charge)
			return nil
		}),
	).MustBuild()
	ch, _ := channel.New(channel.Config{Name: "orders", Flow: f, Store: store.NewMemory(), Logger: slog.New(slog.DiscardHandler)})
	_ = ch.Start(context.Background())
	defer ch.Stop(context.Background())
	m := message.New("application/json", []byte(`{"order": "o-1"}`), nil)
	res := ch.Handle(context.Background(), m)
	fmt.Println(res.State, res.Err)

	shipping = true // fixed
	res, _ = ch.ReplayFrom(context.Background(), m.ID, "ship")
	fmt.Println(res.State, res.Message.Context["shipped_for"])
	// Output:
	// charging
	// error flow "order": step "ship": carrier down
	// done ch-1
}

// Hooks run after a message's outcome is recorded, with the outcome under
// "outcome"; a Drop consumes a message silently.
func ExampleHooks() {
	f := flow.New("orders", flow.Step("filter", func(ctx context.Context, c *fc.Context) error {
		if c.View()["type"] != "order" {
			return errors.Drop("not an order")
		}
		return nil
	})).MustBuild()
	notify := flow.New("notify", flow.Step("print", func(ctx context.Context, c *fc.Context) error {
		o := c.View()[channel.OutcomeKey].(map[string]any)
		fmt.Printf("hook: %s %s %q\n", o["kind"], o["state"], o["reason"])
		return nil
	})).MustBuild()
	ch, _ := channel.New(channel.Config{Name: "orders", Flow: f, Logger: slog.New(slog.DiscardHandler),
		Hooks: channel.Hooks{Finally: notify}})
	_ = ch.Start(context.Background())
	defer ch.Stop(context.Background())
	for _, body := range []string{`{"type": "order"}`, `{"type": "ping"}`} {
		res := ch.Handle(context.Background(), message.New("application/json", []byte(body), nil))
		fmt.Println(res.Settle, res.State, res.Outcome)
	}
	// Output:
	// hook: ok done ""
	// ack done ok
	// hook: dropped done "not an order"
	// ack done dropped
}

// A channel refuses messages while it is not running.
func ExampleErrStopped() {
	f := flow.New("f", flow.Step("s", func(ctx context.Context, c *fc.Context) error { return nil })).MustBuild()
	ch, _ := channel.New(channel.Config{Name: "c", Flow: f, Logger: slog.New(slog.DiscardHandler)})
	res := ch.Handle(context.Background(), message.New("application/json", []byte(`{}`), nil))
	fmt.Println(errors.Is(res.Err, channel.ErrStopped), res.Settle)
	// Output:
	// true leave
}

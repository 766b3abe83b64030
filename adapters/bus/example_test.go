package bus_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/svcflow/svcflow/adapters/bus"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// A com service that talks to the outside world and an emailhandler with
// a custom SendEmail action: a fire-and-forget Submit, then a Request
// whose action rejects the message.
func ExampleBus() {
	ctx := context.Background()
	sent := make(chan string, 1)
	send := flow.Func("send", func(ctx context.Context, in struct {
		To string `flow:"to,optional"`
	}) (struct{ Sent bool }, error) {
		if in.To == "" {
			return struct{ Sent bool }{}, errors.Stop("no recipient")
		}
		sent <- in.To
		return struct{ Sent bool }{true}, nil
	})
	hub := flow.Step("hub", func(ctx context.Context, c *fc.Context) error { return nil })

	b := bus.New(bus.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_ = b.Add(bus.Service{Name: "com", Internal: true, Actions: bus.Actions{bus.Process: hub}})
	_ = b.Add(bus.Service{Name: "emailhandler", Actions: bus.Actions{"SendEmail": send}})
	if err := b.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer b.Stop(ctx)

	_ = b.Submit(ctx, "emailhandler", "SendEmail", map[string]any{"to": "foo@bar.com"})
	fmt.Println("sent to", <-sent)

	_, err := b.Request(ctx, "emailhandler", "SendEmail", map[string]any{"subject": "hello"})
	if se, ok := errors.AsType[*errors.StopError](err); ok {
		fmt.Println("rejected:", se.Reason)
	}
	err = b.Submit(ctx, "emailhandler", "Fax", nil)
	fmt.Println(errors.Is(err, bus.ErrUnknownAction))
	// Output:
	// sent to foo@bar.com
	// rejected: no recipient
	// true
}

// Disabling the bus state stops the custom services; internal ones keep
// running.
func ExampleBus_SetState() {
	ctx := context.Background()
	noop := flow.Step("noop", func(ctx context.Context, c *fc.Context) error { return nil })
	b := bus.New(bus.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	_ = b.Add(bus.Service{Name: "com", Internal: true, Actions: bus.Actions{bus.Process: noop}})
	_ = b.Add(bus.Service{Name: "sensor", Actions: bus.Actions{bus.Process: noop}})
	_ = b.Start(ctx)
	defer b.Stop(ctx)

	_ = b.SetState(ctx, bus.State{Enabled: false})
	fmt.Println(errors.Is(b.Submit(ctx, "sensor", bus.Process, nil), bus.ErrDisabled))
	fmt.Println(b.Submit(ctx, "com", bus.Process, nil))
	fmt.Println(errors.Is(b.StopService(ctx, "com"), bus.ErrInternal))
	_ = b.SetState(ctx, bus.State{Enabled: true})
	fmt.Println(b.Submit(ctx, "sensor", bus.Process, nil))
	// Output:
	// true
	// <nil>
	// true
	// <nil>
}

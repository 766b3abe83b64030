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

// waitFor is a step that parks a durable run until a signal (the wait
// step of YAML flows is one).
type waitFor struct{ signal string }

func (w waitFor) Name() string { return "wait(" + w.signal + ")" }
func (w waitFor) Call(context.Context, *fc.Context) error {
	return errors.New("needs a durable channel")
}
func (w waitFor) Park(*fc.Context) (flow.Wait, bool) {
	return flow.Wait{Signal: w.signal, Into: w.signal}, true
}

func ExampleChannel_Signal() {
	charges := 0
	f := flow.New("refund",
		flow.Step("charge", func(ctx context.Context, c *fc.Context) error {
			charges++ // journaled: never run twice for one message
			c.Set("charged", 10)
			return nil
		}),
		waitFor{"approved"},
		flow.Step("refund", func(ctx context.Context, c *fc.Context) error {
			c.Set("refunded_by", c.View()["approved"].(map[string]any)["by"])
			return nil
		}),
	).MustBuild()
	ch, _ := channel.New(channel.Config{Name: "refunds", Flow: f, Store: store.NewMemory(), Durable: true, NoTrace: true,
		Logger: slog.New(slog.DiscardHandler)})
	_ = ch.Start(context.Background())
	defer ch.Stop(context.Background())

	m := message.New("application/json", []byte(`{"order": "o-1"}`), nil)
	res := ch.Handle(context.Background(), m)
	fmt.Println(res.State, res.Outcome)

	res, err := ch.Signal(context.Background(), m.ID, "approved", map[string]any{"by": "ann"})
	fmt.Println(res.State, res.Message.Context["refunded_by"], res.Message.Context["charged"], charges, err)
	// Output:
	// waiting waiting
	// done ann 10 1 <nil>
}

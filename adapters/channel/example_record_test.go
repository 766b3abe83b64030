package channel_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// Record keeps every run that reaches a block in a store of its own:
// pypeman's message_store_factory of a sub-channel.
func ExampleRecord() {
	ctx := context.Background()
	gold := store.NewMemory()
	defer gold.Close()
	f, err := flow.New("orders",
		flow.When(`tier == "gold"`, channel.Record(gold, flow.Then(
			flow.Step("check", func(ctx context.Context, c *fc.Context) error {
				if t, _ := c.Get("total"); t == 0.0 {
					return errors.Stop("empty gold order")
				}
				return nil
			})))),
	).Input(fc.Key[string]("tier"), fc.Key[float64]("total")).Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, in := range []map[string]any{
		{"tier": "gold", "total": 10.0}, {"tier": "silver", "total": 0.0}, {"tier": "gold", "total": 0.0},
	} {
		in["meta"] = map[string]any{"id": fmt.Sprint("m", i)}
		_, _ = f.Run(ctx, in)
	}
	recs, _ := gold.Search(ctx, store.Query{})
	for _, r := range recs {
		fmt.Println(strings.TrimSpace(r.Message.ID + " " + string(r.State) + " " + r.Reason))
	}
	// Unordered output:
	// m0@orders/when(tier == "gold") done
	// m2@orders/when(tier == "gold") rejected empty gold order
}

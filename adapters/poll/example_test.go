package poll_test

import (
	"context"
	"fmt"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/poll"
)

func ExampleNew() {
	pending := []string{"order-1", "order-2"} // say, rows of a table
	ctx, stop := context.WithCancel(context.Background())

	src, err := poll.New("pending orders", time.Minute,
		func(context.Context) ([]*message.Message, error) {
			var out []*message.Message
			for _, key := range pending {
				m, err := message.NewJSON(map[string]string{"order": key}, nil)
				if err != nil {
					return nil, err
				}
				m.ID = key // a stable ID: the same row is the same message
				out = append(out, m)
			}
			return out, nil
		},
		poll.WithSettle(func(_ context.Context, m *message.Message, r channel.Result) {
			fmt.Println("settled", m.ID, r.Settle)
			if m.ID == "order-2" {
				stop() // end the example after the first batch
			}
		}))
	if err != nil {
		panic(err)
	}
	// Usually a channel runs the source; here a HandlerFunc does.
	err = src.Run(ctx, channel.HandlerFunc(func(_ context.Context, m *message.Message) channel.Result {
		fmt.Println("handle", string(m.Payload))
		return channel.Result{Settle: channel.Ack, State: "done", Message: m}
	}))
	fmt.Println("run:", err)
	// Output:
	// handle {"order":"order-1"}
	// settled order-1 ack
	// handle {"order":"order-2"}
	// settled order-2 ack
	// run: <nil>
}

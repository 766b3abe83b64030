package channel_test

import (
	"context"
	"fmt"

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
	ch, _ := channel.New(channel.Config{Name: "greetings", Flow: f, Store: st})

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

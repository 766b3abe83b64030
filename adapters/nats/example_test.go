package nats_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/svcflow/svcflow/adapters/bus"
	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	snats "github.com/svcflow/svcflow/adapters/nats"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// A source with no URL runs an embedded nats-server in the process, with
// JetStream stored under the data folder; the stream and the durable
// consumer are made on the first run.
func ExampleNewSource() {
	data, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(data)
	spec := snats.Spec{Listen: "127.0.0.1:0", Stream: "ORDERS", Subjects: []string{"orders.>"}, Retention: "workqueue",
		Storage: "file", Replicas: 1, Consumer: "workers", MaxDeliver: 5, AckWait: 30 * time.Second,
		MaxAckPending: 1000, Concurrency: 8}
	src, err := snats.NewSource("orders", spec, data, quiet)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(src.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = src.Run(ctx, channel.HandlerFunc(func(ctx context.Context, m *message.Message) channel.Result {
		return channel.Result{Settle: channel.Ack}
	}))
	fmt.Println("stopped:", err)
	// Output:
	// nats ORDERS/workers
	// stopped: <nil>
}

// A stream that exists with other settings than declared is an error
// naming the setting; errors.As finds the details.
func ExampleMismatchError() {
	err := fmt.Errorf("nats source: %w", &snats.MismatchError{What: "stream", Name: "ORDERS", Setting: "retention", Declared: "workqueue", Server: "limits"})
	var mm *snats.MismatchError
	if errors.As(err, &mm) {
		fmt.Println(mm.Setting, errors.Is(err, snats.ErrMismatch))
	}
	// Output: retention true
}

// Two buses, as two processes would, reach each other's services through
// a NATS transport: here both use the embedded server of one data folder.
func ExampleNewTransport() {
	data, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(data)
	ctx := context.Background()
	newBus := func(svc bus.Service) *bus.Bus {
		tr, err := snats.NewTransport(snats.TransportSpec{Listen: "127.0.0.1:0"}, data, quiet)
		if err != nil {
			panic(err)
		}
		b := bus.New(bus.Options{Transport: tr, Logger: quiet})
		if err := b.Add(svc); err != nil {
			panic(err)
		}
		if err := b.Start(ctx); err != nil {
			panic(err)
		}
		return b
	}
	double := flow.Step("double", func(ctx context.Context, c *fc.Context) error {
		n, _ := c.Get("n")
		c.Set("twice", n.(float64)*2)
		return nil
	})
	calc := newBus(bus.Service{Name: "calc", Actions: bus.Actions{"Double": double}})
	front := newBus(bus.Service{Name: "front", Actions: bus.Actions{bus.Process: double}})
	out, err := front.Request(ctx, "calc", "Double", map[string]any{"n": 21})
	fmt.Println(out["twice"], err)
	_, err = front.Request(ctx, "nobody", bus.Process, nil)
	fmt.Println(errors.Is(err, bus.ErrUnknownDestination))
	_ = front.Stop(ctx)
	_ = calc.Stop(ctx)
	// Output:
	// 42 <nil>
	// true
}

package mllp_test

import (
	"context"
	"fmt"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/mllp"
	"github.com/svcflow/svcflow/adapters/store"
)

func ExampleNewSource() {
	src, err := mllp.NewSource(mllp.Spec{Address: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	if err := src.Listen(); err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		// Usually a channel runs the source; here a HandlerFunc answers.
		done <- src.Run(ctx, channel.HandlerFunc(func(_ context.Context, m *message.Message) channel.Result {
			fmt.Println("received", m.Meta[mllp.MetaType], m.Meta[mllp.MetaControlID])
			return channel.Result{Settle: channel.Ack, State: store.Done, Message: m}
		}))
	}()

	msg := "MSH|^~\\&|ADMIT|HOSP|LAB|HOSP|20260101120000||ADT^A01^ADT_A01|MSG00001|P|2.5\rPID|1||123^^^HOSP||Doe^Ann\r"
	ack, err := mllp.Send(ctx, src.Addr(), []byte(msg))
	if err != nil {
		panic(err)
	}
	fmt.Println("ack", ack.Code, ack.ControlID, ack.Header.Type)
	stop()
	fmt.Println("run:", <-done)
	// Output:
	// received ADT^A01 MSG00001
	// ack AA MSG00001 ACK^A01^ACK
	// run: <nil>
}

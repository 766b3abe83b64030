package filewatch_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/filewatch"
	"github.com/svcflow/svcflow/adapters/message"
)

func ExampleNew() {
	dir, err := os.MkdirTemp("", "inbox")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "order.json"), []byte(`{"order":42}`), 0o644); err != nil {
		panic(err)
	}

	src, err := filewatch.New(dir, filewatch.WithGlob("*.json"), filewatch.WithSettleDelay(10*time.Millisecond))
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	// Usually a channel runs the source; here a HandlerFunc takes one file.
	err = src.Run(ctx, channel.HandlerFunc(func(_ context.Context, m *message.Message) channel.Result {
		fmt.Println(m.Meta[filewatch.MetaName], m.ContentType, string(m.Payload))
		stop() // Run still settles this file before it returns
		return channel.Result{Settle: channel.Ack, State: "done", Message: m}
	}))
	fmt.Println("run:", err)

	done, _ := os.ReadDir(filepath.Join(dir, "done"))
	for _, e := range done {
		fmt.Println("done/" + e.Name())
	}
	// Output:
	// order.json application/json {"order":42}
	// run: <nil>
	// done/order.json
}

package cron_test

import (
	"context"
	"fmt"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/cron"
	"github.com/svcflow/svcflow/adapters/message"
)

func ExampleNew() {
	src, err := cron.New("30 2 * * 1-5") // 02:30 on weekdays
	if err != nil {
		panic(err)
	}
	fmt.Println(src.Name())

	_, err = cron.New("61 * * * *")
	fmt.Println(err)
	// Output:
	// cron 30 2 * * 1-5
	// cron: spec "61 * * * *": invalid cron spec: end of range (61) above maximum (59): 61
}

func ExampleNew_run() {
	src, err := cron.New("@every 1m")
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithTimeout(context.Background(), 3*time.Minute)
	defer stop()
	// Usually a channel runs the source; here a HandlerFunc prints each tick.
	_ = src.Run(ctx, channel.HandlerFunc(func(_ context.Context, m *message.Message) channel.Result {
		fmt.Println(string(m.Payload))
		return channel.Result{Settle: channel.Ack, State: "done", Message: m}
	}))
}

func ExampleTickID() {
	// The same instant gives the same ID, whatever the zone.
	fmt.Println(cron.TickID("@hourly", time.Date(2024, 5, 1, 2, 0, 0, 0, time.UTC)))
	fmt.Println(cron.TickID("@hourly", time.Date(2024, 5, 1, 4, 0, 0, 0, time.FixedZone("UTC+2", 7200))))
	// Output:
	// a64c9ee6-a4ab-5d0f-9b43-fad413baf0ad
	// a64c9ee6-a4ab-5d0f-9b43-fad413baf0ad
}

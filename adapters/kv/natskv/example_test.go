package natskv_test

import (
	"context"
	"fmt"
	"os"

	"github.com/svcflow/svcflow/adapters/kv/natskv"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "kv")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	// No URL: the nats-server embedded in the process, storing under
	// dir/nats (any free port). With URL: {"nats://host:4222"}.
	o := natskv.Options{DataDir: dir, Listen: "127.0.0.1:0", Bucket: "orders_state"}

	s, err := natskv.Open(ctx, o)
	if err != nil {
		panic(err)
	}
	_ = s.Scope("orders", "poller").Save(ctx, "last_id", 41)
	_ = s.Close() // the last user: the embedded server shuts down

	s, _ = natskv.Open(ctx, o) // a restart
	defer s.Close()
	last, found, _ := s.Scope("orders", "poller").Restore(ctx, "last_id")
	fmt.Println(last, found)
	fmt.Println(natskv.Key("orders/poller", "last_id"))
	// Output:
	// 41 true
	// orders/poller.last_5Fid
}

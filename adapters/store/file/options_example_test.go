package file_test

import (
	"context"
	"fmt"
	"os"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store/file"
)

func ExampleOpenOptions() {
	dir, err := os.MkdirTemp("", "messages")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	// sync=full: the folder is synced after a record is renamed into it,
	// so a write that returned survives a power loss.
	s, err := file.OpenOptions(dir, file.Options{Sync: file.SyncFull})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Begin(ctx, &message.Message{ID: "order-1", ContentType: "text/plain", Payload: []byte("x")}); err != nil {
		panic(err)
	}
	rec, err := s.Get(ctx, "order-1")
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.State, rec.Attempts, len(rec.History))
	// Output:
	// processing 1 2
}

package file_test

import (
	"context"
	"fmt"
	"os"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/file"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "messages")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	s, err := file.Open(dir)
	if err != nil {
		panic(err)
	}
	m := message.New("text/plain", []byte("hello"), nil)
	m.ID = "greeting"
	if err := s.Begin(ctx, m); err != nil {
		panic(err)
	}
	if err := s.Close(); err != nil {
		panic(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		panic(err)
	}
	for _, e := range entries {
		fmt.Println(e.Name())
	}

	// Opened again, the store finds the message it left processing.
	s, err = file.Open(dir)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	left, err := store.Recover(ctx, s)
	if err != nil {
		panic(err)
	}
	for _, r := range left {
		fmt.Println(r.Message.ID, r.State, string(r.Message.Payload))
	}
	// Output:
	// greeting.json
	// greeting processing hello
}

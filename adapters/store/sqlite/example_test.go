package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "store")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "intake.db") // or ":memory:" for a database that lives until Close

	ctx := context.Background()
	s, err := sqlite.Open(path)
	if err != nil {
		panic(err)
	}
	for _, body := range []string{"first", "second"} {
		m := message.New("text/plain", []byte(body), map[string]string{"source": "example"})
		if err := s.Begin(ctx, m); err != nil {
			panic(err)
		}
		if body == "first" {
			if err := s.Transition(ctx, m.ID, store.Done, store.Update{}); err != nil {
				panic(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		panic(err)
	}

	// Opened again, the database still holds both messages; the second,
	// left processing, is what a channel runs again when it starts.
	s, err = sqlite.Open(path)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	n, err := s.Count(ctx, store.Query{Meta: map[string]string{"source": "example"}})
	if err != nil {
		panic(err)
	}
	left, err := store.Recover(ctx, s)
	if err != nil {
		panic(err)
	}
	fmt.Println("stored:", n)
	for _, r := range left {
		fmt.Println("left:", string(r.Message.Payload), r.State)
	}
	// Output:
	// stored: 2
	// left: second processing
}

package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

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

func ExampleOpenOptions() {
	dir, err := os.MkdirTemp("", "store")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	// sync=full: every commit is synced to the disk; concurrent writes
	// share commits (at most 64 per transaction here).
	s, err := sqlite.OpenOptions(filepath.Join(dir, "intake.db"), sqlite.Options{Sync: sqlite.SyncFull, MaxBatch: 64})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			m := &message.Message{ID: fmt.Sprintf("m-%d", i), ContentType: "text/plain", Payload: []byte("hello")}
			// Begin returns once the transaction holding it has committed.
			if err := s.Begin(ctx, m); err != nil {
				panic(err)
			}
		})
	}
	wg.Wait()
	n, err := s.Count(ctx, store.Query{States: []store.State{store.Processing}})
	if err != nil {
		panic(err)
	}
	fmt.Println("processing:", n)
	// Output:
	// processing: 8
}

func ExampleParseDSN() {
	path, opts, err := sqlite.ParseDSN("data/intake.db?sync=full&wait=1ms")
	if err != nil {
		panic(err)
	}
	fmt.Println(path, opts.Sync, opts.MaxBatch, opts.MaxWait)
	// Output:
	// data/intake.db full 256 1ms
}

package postgres_test

import (
	"context"
	"fmt"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/postgres"
)

// Two workers of the channel "orders", in two processes, on two
// machines, open the same store: they share its messages.
func ExampleOpen() {
	ctx := context.Background()
	s, err := postgres.Open(ctx, "postgres://flows:secret@db.example:5432/flows", postgres.Options{Table: "orders"})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	m := message.New("application/json", []byte(`{"id":"o-1"}`), nil)
	if err := s.Begin(ctx, m); err != nil {
		panic(err) // store.ErrExists: another worker has it
	}
	if err := s.Transition(ctx, m.ID, store.Done, store.Update{}); err != nil {
		panic(err)
	}
	n, err := s.Count(ctx, store.Query{States: []store.State{store.Done}})
	if err != nil {
		panic(err)
	}
	fmt.Println("done:", n)
}

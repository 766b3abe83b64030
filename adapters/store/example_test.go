package store_test

import (
	"context"
	"fmt"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
)

func ExampleNewMemory() {
	ctx := context.Background()
	s := store.NewMemory(store.WithMaxFinished(store.DefaultMaxFinished))
	defer s.Close()

	// What a channel does for each message: store it, run the flow,
	// record the outcome.
	m := message.New("text/plain", []byte("hello"), map[string]string{"source": "example"})
	if err := s.Put(ctx, m); err != nil {
		panic(err)
	}
	if err := s.Transition(ctx, m.ID, store.Processing, store.Update{}); err != nil {
		panic(err)
	}
	if err := s.Transition(ctx, m.ID, store.Done, store.Update{Context: map[string]any{"greeting": "hello"}}); err != nil {
		panic(err)
	}

	rec, err := s.Get(ctx, m.ID)
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.State, rec.Attempts, rec.Message.Context["greeting"])
	for _, h := range rec.History {
		fmt.Println(" ", h.State)
	}

	n, err := s.Count(ctx, store.Query{Meta: map[string]string{"source": "example"}, States: []store.State{store.Done}})
	if err != nil {
		panic(err)
	}
	fmt.Println("done from example:", n)

	_, err = s.Get(ctx, "missing")
	fmt.Println(err)
	// Output:
	// done 1 hello
	//   pending
	//   processing
	//   done
	// done from example: 1
	// store memory: get "missing": message not found
}

func ExampleRecover() {
	ctx := context.Background()
	s := store.NewMemory()
	defer s.Close()

	// A previous run stored two messages and crashed while running the
	// first one.
	for _, body := range []string{"first", "second"} {
		if err := s.Put(ctx, message.New("text/plain", []byte(body), nil)); err != nil {
			panic(err)
		}
	}
	recs, err := s.Search(ctx, store.Query{Limit: 1})
	if err != nil {
		panic(err)
	}
	if err := s.Transition(ctx, recs[0].Message.ID, store.Processing, store.Update{}); err != nil {
		panic(err)
	}

	// On start, a channel processes what was left over, oldest first.
	left, err := store.Recover(ctx, s)
	if err != nil {
		panic(err)
	}
	for _, r := range left {
		fmt.Printf("%s %s attempts=%d\n", r.Message.Payload, r.State, r.Attempts)
		if err := s.Transition(ctx, r.Message.ID, store.Processing, store.Update{}); err != nil {
			panic(err)
		}
		if err := s.Transition(ctx, r.Message.ID, store.Done, store.Update{}); err != nil {
			panic(err)
		}
	}
	left, _ = store.Recover(ctx, s)
	fmt.Println("left:", len(left))
	// Output:
	// first processing attempts=1
	// second pending attempts=0
	// left: 0
}

func ExampleRecord_KnownOutcome() {
	ctx := context.Background()
	s := store.NewMemory()
	defer s.Close()

	// A run that ended with errors.Stop("no items"): the channel records
	// its outcome and reason as data, beside the error's text.
	m := message.New("application/json", []byte(`{"items":[]}`), nil)
	if err := s.Begin(ctx, m); err != nil {
		panic(err)
	}
	err := errors.Stop("no items")
	se, _ := errors.AsType[*errors.StopError](err)
	u := store.Update{Err: err.Error(), Outcome: errors.KindOf(err), Reason: se.Reason}
	if err := s.Transition(ctx, m.ID, store.Rejected, u); err != nil {
		panic(err)
	}

	rec, err := s.Get(ctx, m.ID)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: reason %q\n", rec.State, rec.Reason)
	for _, h := range rec.History {
		if k, ok := h.KnownOutcome(); ok {
			fmt.Println(" ", h.State, k)
		} else {
			fmt.Println(" ", h.State, "(no outcome)")
		}
	}
	// Output:
	// rejected: reason "no items"
	//   pending (no outcome)
	//   processing (no outcome)
	//   rejected stop
}

package flow_test

import (
	"context"
	"fmt"
	"sync"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// mapJournal keeps a durable run's units in a map; a channel with
// `durable: steps` keeps them in its store instead.
type mapJournal struct {
	mu    sync.Mutex
	units map[string]*flow.Unit
}

func (j *mapJournal) Completed(_ context.Context, path string) (*flow.Unit, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.units[path], nil
}

func (j *mapJournal) Complete(_ context.Context, u *flow.Unit) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.units[u.Path] = u
	return nil
}

func ExampleWithJournal() {
	charges, tries := 0, 0
	f := flow.New("checkout",
		flow.Step("charge", func(ctx context.Context, c *fc.Context) error {
			charges++
			c.Set("receipt", "r-1")
			return nil
		}),
		flow.Step("ship", func(ctx context.Context, c *fc.Context) error {
			if tries++; tries == 1 {
				return errors.New("carrier down")
			}
			c.Set("shipped", true)
			return nil
		}),
	).MustBuild()
	j := &mapJournal{units: map[string]*flow.Unit{}}
	_, err := f.Run(context.Background(), nil, flow.WithJournal(j))
	fmt.Println(err)

	// Run again: charge completed, so it is resumed, not run.
	var tr flow.Trace
	out, err := f.Run(context.Background(), nil, flow.WithJournal(j), flow.WithTrace(&tr))
	fmt.Println(out.View()["receipt"], out.View()["shipped"], charges, err)
	for _, s := range tr.Steps {
		fmt.Println(s.Name, s.Outcome)
	}
	// Output:
	// flow "checkout": step "ship": carrier down
	// r-1 true 1 <nil>
	// charge resumed
	// ship ok
}

func ExampleNoEffects() {
	f := flow.New("quote",
		flow.Step("total", func(ctx context.Context, c *fc.Context) error {
			c.Set("total", 42)
			return nil
		}, flow.NoEffects()), // writes only the context: a journal may write it late
		flow.Step("charge", func(ctx context.Context, c *fc.Context) error {
			c.Set("receipt", "r-1")
			return nil
		}),
	).MustBuild()
	j := &mapJournal{units: map[string]*flow.Unit{}}
	if _, err := f.Run(context.Background(), nil, flow.WithJournal(j)); err != nil {
		fmt.Println(err)
	}
	fmt.Println(j.units["quote/total"].NoEffects, j.units["quote/charge"].NoEffects)
	// Output: true false
}

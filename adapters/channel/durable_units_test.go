package channel_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// tally counts what steps did, by label.
type tally struct {
	mu sync.Mutex
	n  map[string]int
}

func (t *tally) add(label string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == nil {
		t.n = map[string]int{}
	}
	t.n[label]++
}

func (t *tally) get() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for k, v := range t.n {
		out[k] = v
	}
	return out
}

func (t *tally) step(name string) flow.Service {
	return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
		item, _ := c.Get("item")
		t.add(fmt.Sprintf("%s:%v", name, item))
		return nil
	})
}

// approvalInto is an approval that declares the key it writes.
type approvalInto struct{ *approval }

func (approvalInto) Contract() flow.Contract {
	return flow.Contract{Provides: []fc.KeyInfo{{Name: "approval"}}}
}

// TestDurableWaitInEachSignalledOneByOne: a wait in each element of an
// Each parks the message at the element's wait; each signal resumes it
// into that element, and it parks at the next one, until it is done. The
// steps before each wait run once.
func TestDurableWaitInEachSignalledOneByOne(t *testing.T) {
	st := store.NewMemory()
	var n tally
	f := flow.New("lines",
		flow.Each("items", n.step("ask"), approvalInto{&approval{}}, n.step("ship")).Collect("approval", "approvals"),
	).Input(fc.Key[[]any]("items")).MustBuild()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st, Durable: true})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background()))
	defer func() { require.NoError(t, ch.Stop(context.Background())) }()
	m := jsonMsg(t, map[string]any{"items": []any{"x", "y", "z"}})
	res := ch.Handle(context.Background(), m)
	require.NoError(t, res.Err)
	require.Equal(t, store.Waiting, res.State)
	for i, item := range []string{"x", "y", "z"} {
		w, err := st.Wait(context.Background(), m.ID)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprintf("lines/each(items)[%d]/approve", i), w.Path)
		res, err = ch.Signal(context.Background(), m.ID, "approved", map[string]any{"by": item})
		require.NoError(t, err)
		require.NoError(t, res.Err)
		if i < 2 {
			assert.Equal(t, store.Waiting, res.State, "the next element waits")
		}
	}
	assert.Equal(t, store.Done, res.State)
	assert.Equal(t, []any{map[string]any{"by": "x"}, map[string]any{"by": "y"}, map[string]any{"by": "z"}}, res.Message.Context["approvals"])
	assert.Equal(t, map[string]int{"ask:x": 1, "ask:y": 1, "ask:z": 1, "ship:x": 1, "ship:y": 1, "ship:z": 1}, n.get())
}

// TestDurableSagaCompensationSettledOnResume: a saga that compensated is
// settled in the journal: resuming the message (flowrun messages replay
// --resume) neither runs its steps forward nor compensates again, and ends
// as it did.
func TestDurableSagaCompensationSettledOnResume(t *testing.T) {
	st := store.NewMemory()
	var n tally
	undo := func(name string) flow.CompensateFunc {
		return func(context.Context, *fc.Context, error) error { n.add("undo " + name); return nil }
	}
	var charges int
	f := flow.New("order", flow.Saga(
		flow.Compensate(n.step("reserve"), undo("reserve")),
		flow.Compensate(flow.Step("charge", func(context.Context, *fc.Context) error {
			charges++
			return errors.New("card declined")
		}), undo("charge")),
	)).MustBuild()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st, Durable: true})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background()))
	defer func() { require.NoError(t, ch.Stop(context.Background())) }()
	m := jsonMsg(t, map[string]any{})
	res := ch.Handle(context.Background(), m)
	require.ErrorContains(t, res.Err, "card declined")
	assert.Equal(t, store.Error, res.State)
	assert.Equal(t, map[string]int{"reserve:<nil>": 1, "undo reserve": 1}, n.get())

	res, err = ch.Resume(context.Background(), m.ID)
	require.NoError(t, err)
	require.ErrorContains(t, res.Err, "card declined")
	assert.Equal(t, store.Error, res.State)
	assert.Equal(t, map[string]int{"reserve:<nil>": 1, "undo reserve": 1}, n.get(), "nothing runs again")
	assert.Equal(t, 1, charges)
	entries, err := st.Journal(context.Background(), m.ID)
	require.NoError(t, err)
	var paths []string
	for _, e := range entries {
		paths = append(paths, e.Path)
	}
	assert.Equal(t, []string{"order/saga/reserve", "order/saga[compensating]", "order/saga[undo 0]"}, paths)
	assert.Equal(t, "reserve", entries[1].Undo[0].Name)
}

// TestDurableJournalEffects: with JournalEffects a step without effects
// (flow.NoEffects) is written with the next write, not before the next
// step starts; a step with effects is written, with those before it,
// before the next step starts. Without it every step is.
func TestDurableJournalEffects(t *testing.T) {
	for _, effects := range []bool{false, true} {
		t.Run(fmt.Sprint(effects), func(t *testing.T) {
			st := store.NewMemory()
			var id string
			seen := map[string]int{} // step -> journal entries stored when it started
			step := func(name string, opts ...flow.StepOption) flow.Service {
				return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
					entries, err := st.Journal(ctx, id)
					if err != nil {
						return err
					}
					seen[name] = len(entries)
					c.Set(name, true)
					return nil
				}, opts...)
			}
			f := flow.New("f", step("p1", flow.NoEffects()), step("p2", flow.NoEffects()), step("e3"),
				step("p4", flow.NoEffects()), step("e5")).MustBuild()
			ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st, Durable: true, JournalEffects: effects})
			require.NoError(t, err)
			require.NoError(t, ch.Start(context.Background()))
			defer func() { require.NoError(t, ch.Stop(context.Background())) }()
			m := jsonMsg(t, map[string]any{})
			id = m.ID
			res := ch.Handle(context.Background(), m)
			require.NoError(t, res.Err)
			if effects {
				assert.Equal(t, map[string]int{"p1": 0, "p2": 0, "e3": 0, "p4": 3, "e5": 3}, seen,
					"p1 and p2 wait for e3, which is written before p4 starts; p4 waits for the end")
			} else {
				assert.Equal(t, map[string]int{"p1": 0, "p2": 1, "e3": 2, "p4": 3, "e5": 4}, seen)
			}
		})
	}
}

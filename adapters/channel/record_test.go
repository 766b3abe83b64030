package channel_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func TestRecordOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		state   store.State
		outcome errors.Kind
		reason  string
		errText string
	}{
		{name: "done", state: store.Done, outcome: errors.KindOK},
		{name: "rejected", err: errors.Stop("no stock"), state: store.Rejected, outcome: errors.KindStop, reason: "no stock", errText: "no stock"},
		{name: "dropped", err: errors.Drop("duplicate"), state: store.Done, outcome: errors.KindDropped, reason: "duplicate"},
		{name: "error", err: fmt.Errorf("crm down"), state: store.Error, outcome: errors.KindFailed, errText: "crm down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := store.NewMemory()
			defer st.Close()
			step := flow.Step("charge", func(ctx context.Context, c *fc.Context) error {
				c.Set("charged", true)
				return tt.err
			})
			f, err := flow.New("orders", channel.Record(st, step)).Build()
			require.NoError(t, err)
			_, runErr := f.Run(t.Context(), map[string]any{"total": 5, "meta": map[string]any{"id": "m1", "source": "http"}})
			assert.ErrorIs(t, runErr, tt.err, "the step's outcome is unchanged")

			recs, err := st.Search(t.Context(), store.Query{})
			require.NoError(t, err)
			require.Len(t, recs, 1)
			r := recs[0]
			assert.Equal(t, "m1@orders/charge", r.Message.ID)
			assert.Equal(t, tt.state, r.State)
			assert.Equal(t, tt.outcome, r.Outcome)
			assert.Equal(t, tt.reason, r.Reason)
			assert.Contains(t, r.Err, tt.errText)
			assert.Equal(t, map[string]string{"id": "m1", "source": "http"}, r.Message.Meta)
			assert.Equal(t, true, r.Message.Context["charged"], "the final transition keeps the context as the step left it")
			require.Len(t, r.History, 3)
			assert.Equal(t, store.Processing, r.History[1].State)
			assert.Equal(t, float64(5), r.Message.Context["total"])
		})
	}
}

func TestRecordNestedWhenOnlyRunsThatEnter(t *testing.T) {
	st := store.NewMemory()
	defer st.Close()
	gold := channel.Record(st, flow.When(`tier == "gold"`,
		flow.Step("discount", func(ctx context.Context, c *fc.Context) error {
			c.Set("rate", 0.2)
			return nil
		})))
	f, err := flow.New("orders", flow.Step("seen", func(context.Context, *fc.Context) error { return nil }), gold).
		Input(fc.Key[string]("tier")).Build()
	require.NoError(t, err)
	for _, in := range []map[string]any{{"tier": "gold"}, {"tier": "silver"}, {"tier": "gold"}} {
		_, err := f.Run(t.Context(), in)
		require.NoError(t, err)
	}
	recs, err := st.Search(t.Context(), store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Len(t, recs, 3, "the record wraps the when block: every run reaching it, entered or not")

	// Recording inside the block: only runs that enter it.
	inside := store.NewMemory()
	defer inside.Close()
	f2, err := flow.New("orders2", flow.When(`tier == "gold"`, channel.Record(inside, flow.Then(
		flow.Step("discount2", func(ctx context.Context, c *fc.Context) error { return errors.Stop("no gold today") }))))).
		Input(fc.Key[string]("tier")).Build()
	require.NoError(t, err)
	for _, in := range []map[string]any{{"tier": "gold"}, {"tier": "silver"}} {
		_, _ = f2.Run(t.Context(), in)
	}
	recs, err = inside.Search(t.Context(), store.Query{})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, store.Rejected, recs[0].State)
	assert.Equal(t, "no gold today", recs[0].Reason)
	assert.Equal(t, "gold", recs[0].Message.Context["tier"])
}

func TestRecordBuildChecksSeeThrough(t *testing.T) {
	st := store.NewMemory()
	defer st.Close()
	needs := flow.Func("use", func(ctx context.Context, in struct{ Missing string }) (struct{}, error) { return struct{}{}, nil })
	_, err := flow.New("bad", channel.Record(st, flow.When("true", needs))).Build()
	require.Error(t, err, "a key no step provides is a build error inside a recorded block too")
	assert.Contains(t, err.Error(), "missing")
}

type lifecycleStore struct {
	store.Store
	closed *int
}

func (s lifecycleStore) Close() error { *s.closed++; return s.Store.Close() }

func TestRecordOpenLifecycleAndTap(t *testing.T) {
	opened, closed := 0, 0
	var last store.Store
	open := func() (store.Store, error) {
		opened++
		last = lifecycleStore{Store: store.NewMemory(), closed: &closed}
		return last, nil
	}
	tapped := flow.Tap(flow.Step("notify", func(context.Context, *fc.Context) error { return fmt.Errorf("smtp down") }))
	f, err := flow.New("orders", channel.RecordOpen(open, tapped)).Build()
	require.NoError(t, err)
	require.NoError(t, f.Init(t.Context()))
	assert.Equal(t, 1, opened, "Init opens the store")
	_, err = f.Run(t.Context(), map[string]any{})
	require.NoError(t, err, "a tap's failure is not the run's")
	require.NoError(t, f.Wait(t.Context()))
	recs, err := last.Search(t.Context(), store.Query{})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, store.Error, recs[0].State, "the tapped run's outcome is recorded")
	assert.Contains(t, recs[0].Err, "smtp down")
	require.NoError(t, f.Close(t.Context()))
	assert.Equal(t, 1, closed, "Close closes the store")
	assert.Equal(t, 1, opened)
}

// BenchmarkRecord: a step under Record (memory store) against the same
// recording written by hand in the step (Begin, then Transition).
func BenchmarkRecord(b *testing.B) {
	work := func(ctx context.Context, c *fc.Context) error { c.Set("x", 1); return nil }
	run := func(b *testing.B, f *flow.Flow) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := f.Run(b.Context(), map[string]any{"total": 5, "meta": map[string]any{"id": fmt.Sprint(i)}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("record", func(b *testing.B) {
		st := store.NewMemory()
		defer st.Close()
		f, err := flow.New("f", channel.Record(st, flow.Step("work", work))).Build()
		require.NoError(b, err)
		run(b, f)
	})
	b.Run("baseline", func(b *testing.B) {
		st := store.NewMemory()
		defer st.Close()
		f, err := flow.New("f", flow.Step("work", func(ctx context.Context, c *fc.Context) error {
			meta, _ := c.Get("meta")
			id := meta.(map[string]any)["id"].(string) + "@f/work"
			if err := st.Begin(ctx, &message.Message{ID: id, Time: time.Now().UTC(), Meta: map[string]string{"id": id}, Context: c.Map()}); err != nil {
				return err
			}
			if err := work(ctx, c); err != nil {
				return err
			}
			return st.Transition(ctx, id, store.Done, store.Update{Context: c.Map()})
		})).Build()
		require.NoError(b, err)
		run(b, f)
	})
}

package flow_test

import (
	"context"
	"encoding/json"
	"maps"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// clone copies the journal as it is: what a store holds when the process
// dies at that moment.
func (j *memJournal) clone() *memJournal {
	j.mu.Lock()
	defer j.mu.Unlock()
	return &memJournal{units: maps.Clone(j.units), order: append([]string(nil), j.order...)}
}

// spans returns "name=outcome" of each span of tr.
func spans(tr *flow.Trace) []string {
	var out []string
	for _, s := range tr.Steps {
		out = append(out, s.Name+"="+s.Outcome.String())
	}
	return out
}

// TestDurableSagaCompensationIsSettled: a durable saga that compensated
// has its outcome settled: running the message again neither runs its
// steps forward (they were undone) nor compensates again; it ends with
// the same cause, the saga's writes restored.
func TestDurableSagaCompensationIsSettled(t *testing.T) {
	l := &undoLog{}
	var declines atomic.Int32
	f := flow.New("order", flow.Step("in", func(ctx context.Context, c *fc.Context) error { c.Set("in", true); return nil }),
		flow.Saga(l.cu("a"), l.cu("b"), flow.Step("charge", func(ctx context.Context, c *fc.Context) error {
			c.Set("tried", true)
			declines.Add(1)
			return errors.Stop("card declined")
		}))).MustBuild()
	j := newJournal()
	_, err := f.Run(t.Context(), nil, flow.WithJournal(j))
	require.True(t, errors.IsStop(err), "%v", err)
	assert.Equal(t, []string{"a", "b", "undo b", "undo a"}, l.get())
	var paths []string
	for _, u := range j.all() {
		paths = append(paths, u.Path)
	}
	assert.Equal(t, []string{"order/in", "order/saga/a", "order/saga/b", "order/saga[compensating]", "order/saga[undo 1]", "order/saga[undo 0]"}, paths)
	plan := j.all()[3]
	assert.Equal(t, errors.KindStop, plan.Outcome)
	assert.Equal(t, "card declined", plan.Err)
	require.Len(t, plan.Undo, 2)
	assert.Equal(t, "a", plan.Undo[0].Name)
	assert.True(t, plan.Undo[0].Own, "a top-level step's undo is given the run's context")

	for range 2 { // a replay, a redelivery: the same outcome, nothing run
		var tr flow.Trace
		out, err := f.Run(t.Context(), nil, flow.WithJournal(j), flow.WithTrace(&tr))
		require.True(t, errors.IsStop(err), "%v", err)
		se, ok := errors.AsType[*errors.StopError](err)
		require.True(t, ok)
		assert.Equal(t, "card declined", se.Reason)
		assert.Equal(t, []string{"a", "b", "undo b", "undo a"}, l.get(), "not run forward, not compensated again")
		assert.Equal(t, int32(1), declines.Load())
		assert.Equal(t, map[string]any{"in": true, "tried": true}, out.View(), "the saga's writes are restored")
		assert.Equal(t, []string{"in=resumed", "saga=resumed", "compensate(b)=resumed", "compensate(a)=resumed"}, spans(&tr))
	}
}

// TestDurableSagaCrashMidCompensation: the process dies in the middle of
// an undo (simulated: the run's goroutine exits, nothing after runs, the
// journal keeps what was written). Running the message again finishes the
// compensation: the undos that completed are not run again, the one that
// was interrupted runs again, and the others run once.
func TestDurableSagaCrashMidCompensation(t *testing.T) {
	l := &undoLog{}
	var crashed *memJournal
	j := newJournal()
	undoB := func(ctx context.Context, c *fc.Context, cause error) error {
		if crashed == nil {
			crashed = j.clone() // the store as the process dies
			runtime.Goexit()
		}
		l.add("undo b")
		return nil
	}
	f := flow.New("order", flow.Saga(
		l.cu("a"),
		flow.Compensate(l.do("b"), undoB),
		l.cu("c"),
		flow.Step("charge", func(ctx context.Context, c *fc.Context) error { return errors.New("card declined") }),
	)).MustBuild()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = f.Run(context.Background(), nil, flow.WithJournal(j))
		t.Error("the run went on after its crash")
	}()
	<-done
	assert.Equal(t, []string{"a", "b", "c", "undo c"}, l.get())
	require.NotNil(t, crashed)

	var tr flow.Trace
	_, err := f.Run(t.Context(), nil, flow.WithJournal(crashed), flow.WithTrace(&tr))
	require.Error(t, err)
	assert.Equal(t, errors.KindFailed, errors.KindOf(err))
	assert.ErrorContains(t, err, "card declined")
	assert.Equal(t, []string{"a", "b", "c", "undo c", "undo b", "undo a"}, l.get(), "each completed step undone once")
	assert.Equal(t, []string{"saga=resumed", "compensate(c)=resumed", "compensate(b)=ok", "compensate(a)=ok"}, spans(&tr))

	_, err = f.Run(t.Context(), nil, flow.WithJournal(crashed))
	require.ErrorContains(t, err, "card declined")
	assert.Len(t, l.undos(), 3, "settled")
}

// TestDurableSagaUndoErrorsAreKept: an undo that failed is journaled with
// its error; the settled saga reports it again, without running it.
func TestDurableSagaUndoErrorsAreKept(t *testing.T) {
	var undos atomic.Int32
	f := flow.New("order", flow.Saga(
		flow.Compensate(flow.Step("a", func(context.Context, *fc.Context) error { return nil }),
			func(context.Context, *fc.Context, error) error { undos.Add(1); return errors.New("refund refused") }),
		boom,
	)).MustBuild()
	j := newJournal()
	_, err := f.Run(t.Context(), nil, flow.WithJournal(j))
	require.ErrorContains(t, err, "refund refused")
	_, err = f.Run(t.Context(), nil, flow.WithJournal(j))
	require.ErrorContains(t, err, "boom")
	require.ErrorContains(t, err, `step "a": compensate: refund refused`)
	assert.Equal(t, int32(1), undos.Load())
}

// TestDurableSagaUndoesResumedUnits: elements of an Each, branches of an
// All and an Until loop resumed from the journal (their steps do not run
// again) still leave their undos to the saga, each given the context it
// had: a failure after a restart compensates them once.
func TestDurableSagaUndoesResumedUnits(t *testing.T) {
	l := &undoLog{}
	fatal := true
	rounds := 0
	f := flow.New("order", flow.Saga(
		flow.Each("items", l.cu("reserve")).Concurrency(2),
		flow.All(l.cu("left"), flow.Then(l.cu("right"))),
		flow.Until("n >= 2", flow.Compensate(flow.Step("inc", func(ctx context.Context, c *fc.Context) error {
			rounds++
			n, _ := c.Get("n")
			f, _ := n.(float64)
			c.Set("n", f+1)
			return nil
		}, flow.Provides(fc.Key[float64]("n"))), func(ctx context.Context, c *fc.Context, cause error) error {
			n, _ := c.Get("n")
			l.add("undo inc at " + string(rune('0'+int(n.(float64)))))
			return nil
		})),
		flow.Step("charge", func(ctx context.Context, c *fc.Context) error {
			if fatal {
				return errors.Fatal(errors.New("lost the database"))
			}
			return errors.Stop("declined")
		}),
	)).Input(fc.Key[[]any]("items")).MustBuild()
	in := map[string]any{"items": []any{1.0, 2.0, 3.0}}
	j := newJournal()
	_, err := f.Run(t.Context(), in, flow.WithJournal(j))
	require.True(t, errors.IsFatal(err))
	assert.Empty(t, l.undos(), "a Fatal resumes: nothing is undone")
	require.Len(t, j.all(), 6)
	elem, err := j.Completed(t.Context(), "order/saga/each(items)[1]")
	require.NoError(t, err)
	require.Len(t, elem.Undo, 1, "the element journals the undo it leaves to the saga")
	assert.Equal(t, map[string]any{"item": 2.0, "index": 1.0}, roundTrip(t, elem.Undo[0].Writes), "its context: the element's writes")

	fatal = false
	_, err = f.Run(t.Context(), in, flow.WithJournal(j))
	require.True(t, errors.IsStop(err), "%v", err)
	assert.Equal(t, 2, rounds, "the loop is not run again")
	got := l.undos()
	require.Len(t, got, 7, "%v", got)
	assert.Equal(t, []string{"undo inc at 2", "undo inc at 2"}, got[:2], "a loop's undos get the run's context")
	assert.ElementsMatch(t, []string{"undo left", "undo right"}, got[2:4])
	assert.ElementsMatch(t, []string{"undo reserve:1", "undo reserve:2", "undo reserve:3"}, got[4:], "each element's undo gets its element")
	assert.Equal(t, 3, countOf(l.get(), "reserve"), "elements resumed, not run again")
}

// roundTrip returns m as JSON gives it back.
func roundTrip(t *testing.T, m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

func countOf(xs []string, x string) int {
	n := 0
	for _, s := range xs {
		if s == x {
			n++
		}
	}
	return n
}

// TestDurableSagaNestedFlowUndo: an undo that a nested flow's saga hands
// up to the enclosing saga runs when it compensates, but is not in the
// journaled plan (it is the nested flow's): a settled saga runs only the
// plan's undos not yet run.
func TestDurableSagaNestedFlowUndo(t *testing.T) {
	l := &undoLog{}
	inner := flow.New("inner", flow.Saga(l.cu("x"))).MustBuild()
	f := flow.New("outer", flow.Saga(l.cu("a"), inner, boom)).MustBuild()
	j := newJournal()
	_, err := f.Run(t.Context(), nil, flow.WithJournal(j))
	require.ErrorContains(t, err, "boom")
	assert.Equal(t, []string{"undo x", "undo a"}, l.undos())
	plan, err := j.Completed(t.Context(), "outer/saga[compensating]")
	require.NoError(t, err)
	require.Len(t, plan.Undo, 1)
	assert.Equal(t, "a", plan.Undo[0].Name)
	_, err = f.Run(t.Context(), nil, flow.WithJournal(j))
	require.ErrorContains(t, err, "boom")
	assert.Equal(t, []string{"undo x", "undo a"}, l.undos(), "settled: nothing runs again")
}

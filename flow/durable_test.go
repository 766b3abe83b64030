package flow_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// memJournal is a journal kept in a map, its units round-tripped through
// JSON as a store would keep them.
type memJournal struct {
	mu    sync.Mutex
	units map[string][]byte
	order []string
	fail  error // Complete fails with it when set
}

func newJournal() *memJournal { return &memJournal{units: map[string][]byte{}} }

func (j *memJournal) Completed(_ context.Context, path string) (*flow.Unit, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	b, ok := j.units[path]
	if !ok {
		return nil, nil
	}
	var u flow.Unit
	if err := json.Unmarshal(b, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

func (j *memJournal) Complete(_ context.Context, u *flow.Unit) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return j.fail
	}
	b, err := json.Marshal(u)
	if err != nil {
		return err
	}
	j.units[u.Path] = b
	j.order = append(j.order, u.Path)
	return nil
}

func (j *memJournal) all() []*flow.Unit {
	var out []*flow.Unit
	for _, p := range j.order {
		u, _ := j.Completed(context.Background(), p)
		out = append(out, u)
	}
	return out
}

// counted returns a step that counts its calls and sets key to value;
// crash makes its first call fail as if the process had died.
func countedStep(name, key string, value any, calls *atomic.Int32, crash bool) flow.Service {
	return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
		if calls.Add(1) == 1 && crash {
			return errors.Fatal(errors.New("crash"))
		}
		c.Set(key, value)
		return nil
	})
}

func TestDurableResumesAfterCompletedSteps(t *testing.T) {
	var calls [5]atomic.Int32
	f := flow.New("five",
		countedStep("s1", "a", 1.0, &calls[0], false),
		countedStep("s2", "b", "two", &calls[1], false),
		countedStep("s3", "c", true, &calls[2], true),
		countedStep("s4", "d", 4.0, &calls[3], false),
		flow.Step("s5", func(ctx context.Context, c *fc.Context) error {
			calls[4].Add(1)
			c.Set("sum", c.View()["a"].(float64)+c.View()["d"].(float64))
			c.Delete("b")
			return nil
		}),
	).MustBuild()
	j := newJournal()
	_, err := f.Run(context.Background(), map[string]any{"in": 1}, flow.WithJournal(j))
	require.Error(t, err)
	require.Len(t, j.all(), 2, "steps 1 and 2 journaled before step 3 failed")
	assert.Equal(t, map[string]any{"a": 1.0}, j.all()[0].Writes)

	var tr flow.Trace
	out, err := f.Run(context.Background(), map[string]any{"in": 1}, flow.WithJournal(j), flow.WithTrace(&tr))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"in": 1, "a": 1.0, "c": true, "d": 4.0, "sum": 5.0}, out.Map())
	for i, want := range []int32{1, 1, 2, 1, 1} {
		assert.Equal(t, want, calls[i].Load(), "calls of step %d", i+1)
	}
	var outcomes []string
	for _, s := range tr.Steps {
		outcomes = append(outcomes, s.Name+" "+s.Outcome.String())
	}
	assert.Equal(t, []string{"s1 resumed", "s2 resumed", "s3 ok", "s4 ok", "s5 ok"}, outcomes)
	first := j.all()[0]
	assert.Equal(t, first.Start.UnixNano(), tr.Steps[0].Start.UnixNano(), "a resumed step keeps its original time")
	assert.Equal(t, []string{"a"}, tr.Steps[0].Wrote)
	assert.Equal(t, []string{"b"}, j.all()[4].Deleted)
}

func TestDurableEachAndAllUnits(t *testing.T) {
	var calls sync.Map // element or branch -> calls
	count := func(k string) int32 {
		v, _ := calls.LoadOrStore(k, new(atomic.Int32))
		return v.(*atomic.Int32).Add(1)
	}
	get := func(k string) int32 {
		v, _ := calls.LoadOrStore(k, new(atomic.Int32))
		return v.(*atomic.Int32).Load()
	}
	for _, workers := range []int{1, 3} {
		calls.Clear()
		f := flow.New("units",
			flow.Each("items", flow.Step("double", func(ctx context.Context, c *fc.Context) error {
				item := c.View()["item"].(float64)
				if count("item"+fcString(item)) == 1 && item == 3 {
					return errors.New("crash at element 3")
				}
				c.Set("twice", item*2)
				return nil
			}, flow.Provides(fc.Key[float64]("twice")))).Collect("twice", "doubled").Concurrency(workers),
			flow.All(
				flow.Step("left", func(ctx context.Context, c *fc.Context) error {
					count("left")
					c.Set("l", "L")
					return nil
				}),
				flow.Step("right", func(ctx context.Context, c *fc.Context) error {
					if count("right") == 1 {
						return errors.New("crash in right")
					}
					c.Set("r", "R")
					return nil
				}),
			),
		).Input(fc.Key[[]any]("items")).MustBuild()
		j := newJournal()
		in := map[string]any{"items": []any{1.0, 2.0, 3.0, 4.0}}
		_, err := f.Run(context.Background(), in, flow.WithJournal(j))
		require.ErrorContains(t, err, "crash at element 3")
		_, err = f.Run(context.Background(), in, flow.WithJournal(j))
		require.ErrorContains(t, err, "crash in right")
		out, err := f.Run(context.Background(), in, flow.WithJournal(j))
		require.NoError(t, err)
		assert.Equal(t, []float64{2, 4, 6, 8}, out.View()["doubled"])
		assert.Equal(t, "L", out.View()["l"])
		assert.Equal(t, "R", out.View()["r"])
		if workers == 1 {
			assert.Equal(t, int32(1), get("item1"), "element done before the crash is not redone")
			assert.Equal(t, int32(1), get("item2"))
			assert.Equal(t, int32(1), get("item4"))
		}
		assert.Equal(t, int32(2), get("item3"))
		assert.Equal(t, int32(1), get("left"), "the branch that completed is not run again")
		assert.Equal(t, int32(2), get("right"))
	}
}

func fcString(f float64) string { return string(rune('0' + int(f))) }

type parkStep struct{ calls atomic.Int32 }

func (p *parkStep) Name() string { return "approve" }
func (p *parkStep) Call(ctx context.Context, c *fc.Context) error {
	p.calls.Add(1)
	return nil
}
func (p *parkStep) Park(c *fc.Context) (flow.Wait, bool) {
	return flow.Wait{Signal: "approved", For: time.Hour, Into: "approval", Timeout: errors.KindStop, Reason: "no approval"}, true
}

func TestDurableParkAndWake(t *testing.T) {
	ps := &parkStep{}
	var after atomic.Int32
	f := flow.New("approval", ps, flow.Step("after", func(ctx context.Context, c *fc.Context) error {
		after.Add(1)
		return nil
	})).MustBuild()

	_, err := f.Run(context.Background(), nil)
	require.NoError(t, err, "a run that is not durable calls the step")
	assert.Equal(t, int32(1), ps.calls.Load())

	j := newJournal()
	var tr flow.Trace
	_, err = f.Run(context.Background(), nil, flow.WithJournal(j), flow.WithTrace(&tr))
	pe, ok := errors.AsType[*flow.ParkError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, errors.KindWaiting, errors.KindOf(err))
	assert.Equal(t, "approval/approve", pe.Path)
	assert.Equal(t, "approved", pe.Wait.Signal)
	assert.Equal(t, errors.KindWaiting, tr.Outcome)
	assert.Equal(t, int32(1), ps.calls.Load(), "a durable run parks instead of calling the step")
	assert.Equal(t, int32(1), after.Load(), "nor anything after it")

	// The owner wakes it by journaling the step's completion.
	require.NoError(t, j.Complete(context.Background(), &flow.Unit{Path: pe.Path, Name: pe.Step,
		Writes: map[string]any{"approval": map[string]any{"by": "ann"}}}))
	out, err := f.Run(context.Background(), nil, flow.WithJournal(j))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"by": "ann"}, out.View()["approval"])
	assert.Equal(t, int32(2), after.Load())
	assert.Equal(t, int32(1), ps.calls.Load())

	// A timeout that ends as a Stop.
	j2 := newJournal()
	require.NoError(t, j2.Complete(context.Background(), &flow.Unit{Path: pe.Path, Name: pe.Step, Outcome: errors.KindStop, Err: "no approval"}))
	_, err = f.Run(context.Background(), nil, flow.WithJournal(j2))
	assert.Equal(t, errors.KindStop, errors.KindOf(err))
	assert.ErrorContains(t, err, "no approval")
}

func TestDurableChangedFlow(t *testing.T) {
	step := func(name string) flow.Service {
		return flow.Step(name, func(ctx context.Context, c *fc.Context) error { c.Set(name, true); return nil })
	}
	v1 := flow.New("f", step("a"), step("b"), step("c")).MustBuild()
	j := newJournal()
	_, err := v1.Run(context.Background(), nil, flow.WithJournal(j), flow.Through("b"))
	require.NoError(t, err)
	units := j.all()
	require.Len(t, units, 2)
	assert.NoError(t, v1.Changed(units))
	assert.NotEmpty(t, v1.Fingerprint())

	later := flow.New("f", step("a"), step("b"), step("c2")).MustBuild()
	assert.NoError(t, later.Changed(units), "a change after the journaled steps resumes")
	assert.NotEqual(t, v1.Fingerprint(), later.Fingerprint())

	inserted := flow.New("f", step("a"), step("x"), step("b"), step("c")).MustBuild()
	err = inserted.Changed(units)
	var ce *flow.ChangedError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "f/b", ce.Unit)
	assert.False(t, ce.Removed)
	assert.EqualError(t, err, `flow "f" changed since the run journaled step "b" (f/b): that step, or one before it, is not the same`)

	removed := flow.New("f", step("a"), step("c")).MustBuild()
	err = removed.Changed(units)
	require.ErrorAs(t, err, &ce)
	assert.True(t, ce.Removed)
	assert.EqualError(t, err, `flow "f" changed since the run journaled step "b" (f/b): it is no longer in the flow`)
}

func TestDurableJournalFailureEndsRun(t *testing.T) {
	var calls atomic.Int32
	f := flow.New("f", countedStep("a", "a", 1, &calls, false), countedStep("b", "b", 1, &calls, false)).MustBuild()
	j := newJournal()
	j.fail = errors.New("disk full")
	_, err := f.Run(context.Background(), nil, flow.WithJournal(j))
	require.ErrorContains(t, err, "disk full")
	assert.Equal(t, int32(1), calls.Load(), "the next step does not start before the last one is journaled")
}

func TestDuplicateCombinatorPathsAreUnique(t *testing.T) {
	s := func(n string) flow.Service {
		return flow.Step(n, func(context.Context, *fc.Context) error { return nil })
	}
	f := flow.New("f", flow.All(s("a"), s("b")), flow.All(s("c"), s("d"))).MustBuild()
	g := f.Graph()
	assert.Equal(t, "f/all", g.Children[0].Path)
	assert.Equal(t, "f/all#2", g.Children[1].Path)
}

func TestDurableUntilIsOneUnit(t *testing.T) {
	var rounds, after atomic.Int32
	f := flow.New("loop",
		flow.Until("n >= 3", flow.Step("inc", func(ctx context.Context, c *fc.Context) error {
			rounds.Add(1)
			n, _ := c.Get("n")
			f, _ := n.(float64)
			c.Set("n", f+1)
			return nil
		}, flow.Provides(fc.Key[float64]("n")))),
		flow.Step("after", func(ctx context.Context, c *fc.Context) error {
			if after.Add(1) == 1 {
				return errors.New("crash after the loop")
			}
			return nil
		}),
	).MustBuild()
	j := newJournal()
	_, err := f.Run(context.Background(), nil, flow.WithJournal(j))
	require.ErrorContains(t, err, "crash after the loop")
	units := j.all()
	require.Len(t, units, 1, "the loop is one unit; the steps inside it are not journaled")
	assert.Equal(t, "loop/until(n >= 3)", units[0].Path)
	out, err := f.Run(context.Background(), nil, flow.WithJournal(j))
	require.NoError(t, err)
	assert.Equal(t, 3.0, out.View()["n"])
	assert.Equal(t, int32(3), rounds.Load(), "the loop is not run again")
}

// TestDurableShapes: passthrough, store_output_as and store_input_as
// give the same context when their steps resume from the journal, and a
// divert ends the resumed run as it ends a fresh one.
func TestDurableShapes(t *testing.T) {
	var calls [4]atomic.Int32
	f := flow.New("shapes",
		flow.Passthrough(flow.StoreOutputAs(countedStep("s1", "a", 1.0, &calls[0], false), "out")),
		flow.StoreInputAs(countedStep("s2", "b", 2.0, &calls[1], false), "in2"),
		flow.Divert("n == 1", countedStep("s3", "c", 3.0, &calls[2], true)),
		countedStep("s4", "d", 4.0, &calls[3], false),
	).Input(fc.Any("n")).MustBuild()
	fresh, err := flow.New("shapes_fresh",
		flow.Passthrough(flow.StoreOutputAs(countedStep("s1", "a", 1.0, new(atomic.Int32), false), "out")),
		flow.StoreInputAs(countedStep("s2", "b", 2.0, new(atomic.Int32), false), "in2"),
		flow.Divert("n == 1", countedStep("s3", "c", 3.0, new(atomic.Int32), false)),
		countedStep("s4", "d", 4.0, new(atomic.Int32), false),
	).Input(fc.Any("n")).Build()
	require.NoError(t, err)
	want, err := fresh.Run(context.Background(), map[string]any{"n": 1})
	require.NoError(t, err)

	j := newJournal()
	_, err = f.Run(context.Background(), map[string]any{"n": 1}, flow.WithJournal(j))
	require.Error(t, err)
	out, err := f.Run(context.Background(), map[string]any{"n": 1}, flow.WithJournal(j))
	require.NoError(t, err)
	assert.Equal(t, want.Map(), out.Map())
	assert.Equal(t, map[string]any{"a": 1.0}, out.View()["out"])
	assert.False(t, out.Has("a"))
	assert.False(t, out.Has("d"))
	for i, n := range []int32{1, 1, 2, 0} {
		assert.Equal(t, n, calls[i].Load(), "calls of s%d", i+1)
	}
}

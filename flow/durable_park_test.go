package flow_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// waiter is a step that parks a durable run (a wait or a long sleep).
type waiter struct {
	name string
	w    flow.Wait
}

func (w waiter) Name() string { return w.name }
func (w waiter) Call(context.Context, *fc.Context) error {
	return errors.New("a waiter must park, not run")
}
func (w waiter) Park(*fc.Context) (flow.Wait, bool) { return w.w, true }
func (w waiter) Contract() flow.Contract {
	if w.w.Into == "" {
		return flow.Contract{}
	}
	return flow.Contract{Provides: []fc.KeyInfo{{Name: w.w.Into}}}
}

// counter counts calls by label.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) step(name string) flow.Service {
	return flow.Step(name, func(ctx context.Context, x *fc.Context) error {
		label := name
		if item, ok := x.Get("item"); ok {
			label = fmt.Sprintf("%s:%v", name, item)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.n == nil {
			c.n = map[string]int{}
		}
		c.n[label]++
		x.Set(name, label)
		return nil
	})
}

func (c *counter) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// parked returns the park of a run's error.
func parked(t *testing.T, err error) *flow.ParkError {
	t.Helper()
	pe, ok := errors.AsType[*flow.ParkError](err)
	require.True(t, ok, "want a park, got %v", err)
	return pe
}

// wake journals the completion of the parked step, as a channel does on a
// signal or a timer.
func wake(t *testing.T, j *memJournal, pe *flow.ParkError, writes map[string]any) {
	t.Helper()
	require.NoError(t, j.Complete(context.Background(), &flow.Unit{Path: pe.Path, Name: pe.Step,
		Fingerprint: pe.Fingerprint, Start: time.Now(), Writes: writes}))
}

// TestDurableWaitInEachElements: a wait in each element of an Each parks
// the whole run at the element's wait; each signal resumes the run into
// that element at the wait (the steps before it are not run again), and
// the next element parks in turn.
func TestDurableWaitInEachElements(t *testing.T) {
	var c counter
	f := flow.New("approve",
		c.step("first"),
		flow.Each("items", c.step("ask"), waiter{"wait", flow.Wait{Signal: "ok", Into: "answer"}}, c.step("ship")).
			Collect("answer", "answers"),
		c.step("last"),
	).Input(fc.Key[[]any]("items")).MustBuild()
	in := map[string]any{"items": []any{"a", "b", "c"}}
	j := newJournal()
	for i, item := range []string{"a", "b", "c"} {
		_, err := f.Run(t.Context(), in, flow.WithJournal(j))
		pe := parked(t, err)
		assert.Equal(t, fmt.Sprintf("approve/each(items)[%d]/wait", i), pe.Path, "the element's wait")
		assert.Equal(t, "ok", pe.Wait.Signal)
		assert.Equal(t, 1, c.counts()["ask:"+item], "element %d asked once", i)
		wake(t, j, pe, map[string]any{"answer": map[string]any{"by": item}})
	}
	var tr flow.Trace
	out, err := f.Run(t.Context(), in, flow.WithJournal(j), flow.WithTrace(&tr))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"first": 1, "ask:a": 1, "ask:b": 1, "ask:c": 1, "ship:a": 1, "ship:b": 1, "ship:c": 1, "last": 1}, c.counts())
	assert.Equal(t, []any{map[string]any{"by": "a"}, map[string]any{"by": "b"}, map[string]any{"by": "c"}}, out.View()["answers"])
	assert.Contains(t, spans(&tr), "each(items)[1]=resumed")
	assert.NoError(t, f.Changed(j.all()), "qualified unit paths match the flow")
}

// TestDurableWaitInConcurrentEach: with concurrent elements, a park
// cancels nothing: the running elements finish or park too (their steps
// are journaled), none starts after it, and the message waits at one wait
// at a time.
func TestDurableWaitInConcurrentEach(t *testing.T) {
	var c counter
	f := flow.New("approve",
		flow.Each("items", c.step("ask"), waiter{"wait", flow.Wait{Signal: "ok"}}, c.step("ship")).Concurrency(2),
	).Input(fc.Key[[]any]("items")).MustBuild()
	in := map[string]any{"items": []any{1.0, 2.0, 3.0, 4.0}}
	j := newJournal()
	woken := map[string]bool{}
	for range 10 {
		_, err := f.Run(t.Context(), in, flow.WithJournal(j))
		if err == nil {
			break
		}
		pe := parked(t, err)
		require.False(t, woken[pe.Path], "a woken wait is not waited for again: %s", pe.Path)
		woken[pe.Path] = true
		wake(t, j, pe, nil)
	}
	assert.Len(t, woken, 4, "one park per element")
	assert.Equal(t, map[string]int{"ask:1": 1, "ask:2": 1, "ask:3": 1, "ask:4": 1, "ship:1": 1, "ship:2": 1, "ship:3": 1, "ship:4": 1}, c.counts())
}

// TestDurableWaitInAllBranch: a wait in one branch of an All parks the
// run once the other branches are done (they are journaled); the signal
// resumes the run into that branch at the wait.
func TestDurableWaitInAllBranch(t *testing.T) {
	var c counter
	f := flow.New("both",
		flow.All(c.step("left"), flow.Then(c.step("pre"), waiter{"wait", flow.Wait{Signal: "go"}}, c.step("post")), c.step("right")),
		c.step("after"),
	).MustBuild()
	j := newJournal()
	_, err := f.Run(t.Context(), nil, flow.WithJournal(j))
	pe := parked(t, err)
	assert.Equal(t, "both/all[1]/wait", pe.Path)
	assert.Equal(t, map[string]int{"left": 1, "pre": 1, "right": 1}, c.counts())
	wake(t, j, pe, map[string]any{"signalled": true})
	var tr flow.Trace
	out, err := f.Run(t.Context(), nil, flow.WithJournal(j), flow.WithTrace(&tr))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"left": 1, "pre": 1, "post": 1, "right": 1, "after": 1}, c.counts())
	assert.Equal(t, map[string]any{"left": "left", "pre": "pre", "post": "post", "right": "right", "after": "after", "signalled": true}, out.View())
	assert.Subset(t, spans(&tr), []string{"all[0]=resumed", "pre=resumed", "wait=resumed", "post=ok", "all[2]=resumed"})
}

// TestDurableSleepInUntil: a durable sleep in an Until loop parks the run
// in its round; the timer resumes it into that round, and the loop goes
// on; rounds done are not run again.
func TestDurableSleepInUntil(t *testing.T) {
	var polls int
	f := flow.New("poll",
		flow.Until("n >= 3",
			flow.Step("poll", func(ctx context.Context, c *fc.Context) error {
				polls++
				n, _ := c.Get("n")
				f, _ := n.(float64)
				c.Set("n", f+1)
				return nil
			}, flow.Provides(fc.Key[float64]("n"))),
			waiter{"sleep", flow.Wait{For: time.Minute}},
		),
	).MustBuild()
	j := newJournal()
	for round := range 3 {
		_, err := f.Run(t.Context(), nil, flow.WithJournal(j))
		pe := parked(t, err)
		assert.Equal(t, fmt.Sprintf("poll/until(n >= 3)[%d]/sleep", round), pe.Path)
		assert.Equal(t, time.Minute, pe.Wait.For)
		assert.Equal(t, round+1, polls, "the rounds before are not run again")
		wake(t, j, pe, nil)
	}
	out, err := f.Run(t.Context(), nil, flow.WithJournal(j))
	require.NoError(t, err)
	assert.Equal(t, 3.0, out.View()["n"])
	assert.Equal(t, 3, polls)
	_, err = f.Run(t.Context(), nil, flow.WithJournal(j))
	require.NoError(t, err)
	assert.Equal(t, 3, polls, "the loop is one unit once done")
}

// TestDurableWaitInsideUnitOutsideDurableRun: outside a durable run a
// wait inside an Each is called (and here fails), as at top level.
func TestDurableWaitInsideUnitOutsideDurableRun(t *testing.T) {
	f := flow.New("w", flow.Each("items", waiter{"wait", flow.Wait{Signal: "ok"}})).Input(fc.Key[[]any]("items")).MustBuild()
	_, err := f.Run(t.Context(), map[string]any{"items": []any{1}})
	require.ErrorContains(t, err, "a waiter must park")
}

package channel_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// fiveSteps is a flow of five steps counting their calls; step 3 runs
// mid(ctx) first.
func fiveSteps(calls *[5]atomic.Int32, mid func(ctx context.Context, n int32) error) *flow.Flow {
	var steps []flow.Service
	for i := range 5 {
		name := string(rune('1' + i))
		steps = append(steps, flow.Step("s"+name, func(ctx context.Context, c *fc.Context) error {
			n := calls[i].Add(1)
			if i == 2 && mid != nil {
				if err := mid(ctx, n); err != nil {
					return err
				}
			}
			c.Set("k"+name, float64(i+1))
			return nil
		}))
	}
	return flow.New("five", steps...).MustBuild()
}

func counts(calls *[5]atomic.Int32) []int32 {
	out := make([]int32, 5)
	for i := range calls {
		out[i] = calls[i].Load()
	}
	return out
}

func TestDurableResumesAfterStoppedRun(t *testing.T) {
	st := store.NewMemory()
	var calls [5]atomic.Int32
	blocked := make(chan struct{})
	f := fiveSteps(&calls, func(ctx context.Context, n int32) error {
		if n == 1 { // the process "dies" here: the run is canceled by a stop
			close(blocked)
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	})
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st, Durable: true})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background()))
	m := jsonMsg(t, map[string]any{"order": "o1"})
	done := make(chan channel.Result)
	go func() { done <- ch.Handle(context.Background(), m) }()
	<-blocked
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_ = ch.Stop(stopCtx)
	res := <-done
	assert.Equal(t, store.Pending, res.State, "left owed")
	entries, err := st.Journal(context.Background(), m.ID)
	require.NoError(t, err)
	require.Len(t, entries, 2)
	assert.Equal(t, "five/s1", entries[0].Path)
	assert.Equal(t, map[string]any{"k1": 1.0}, entries[0].Writes)

	// The next start resumes it after its completed steps.
	ch2, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st, Durable: true})
	require.NoError(t, err)
	require.NoError(t, ch2.Start(context.Background()))
	require.Eventually(t, func() bool {
		rec, err := st.Get(context.Background(), m.ID)
		return err == nil && rec.State == store.Done
	}, 5*time.Second, time.Millisecond)
	require.NoError(t, ch2.Stop(context.Background()))
	assert.Equal(t, []int32{1, 1, 2, 1, 1}, counts(&calls))
	rec, err := st.Get(context.Background(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"order": "o1", "meta": rec.Message.Context["meta"], "k1": 1.0, "k2": 2.0, "k3": 3.0, "k4": 4.0, "k5": 5.0},
		rec.Message.Context)
	var tr flow.Trace
	require.NoError(t, json.Unmarshal(rec.Message.Trace, &tr))
	var outcomes []string
	for _, s := range tr.Steps {
		outcomes = append(outcomes, s.Name+" "+s.Outcome.String())
	}
	assert.Equal(t, []string{"s1 resumed", "s2 resumed", "s3 ok", "s4 ok", "s5 ok"}, outcomes)
	assert.True(t, tr.Steps[0].Start.Equal(entries[0].Start), "a resumed step keeps its original time")
}

func TestDurableFatalRestartResumes(t *testing.T) {
	var calls [5]atomic.Int32
	f := fiveSteps(&calls, func(ctx context.Context, n int32) error {
		if n == 1 {
			return errors.Fatal(errors.New("lost the connection"))
		}
		return nil
	})
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Durable: true,
		Restart: &errors.Policy{Initial: time.Millisecond, MaxAttempts: 3}})
	require.NoError(t, err)
	running(t, ch)
	res := ch.Handle(context.Background(), jsonMsg(t, map[string]any{}))
	require.NoError(t, res.Err)
	assert.Equal(t, store.Done, res.State)
	assert.Equal(t, []int32{1, 1, 2, 1, 1}, counts(&calls), "a restart after Fatal resumes after the completed steps")
}

func TestDurableNeedsAJournal(t *testing.T) {
	_, err := channel.New(channel.Config{Name: "c", Flow: orderFlow(t), Store: noJournal{store.NewMemory()}, Durable: true})
	require.ErrorIs(t, err, channel.ErrNoJournal)
	assert.ErrorContains(t, err, `channel "c": durable: steps: store keeps no journal of durable runs: store channel_test.noJournal`)
}

type noJournal struct{ store.Store }

// approval parks until the signal "approved" (or its timeout).
type approval struct {
	timeout time.Duration
	calls   atomic.Int32
}

func (a *approval) Name() string { return "approve" }
func (a *approval) Call(context.Context, *fc.Context) error {
	a.calls.Add(1)
	return errors.New("needs a durable channel")
}
func (a *approval) Park(*fc.Context) (flow.Wait, bool) {
	return flow.Wait{Signal: "approved", Into: "approval", For: a.timeout, Timeout: errors.KindStop, Reason: "not approved in time"}, true
}

func approvalFlow(a *approval, after *atomic.Int32) *flow.Flow {
	return flow.New("approval",
		flow.Step("ask", func(ctx context.Context, c *fc.Context) error { c.Set("asked", true); return nil }),
		a,
		flow.Step("ship", func(ctx context.Context, c *fc.Context) error {
			after.Add(1)
			c.Set("by", c.View()["approval"].(map[string]any)["by"])
			return nil
		}),
	).MustBuild()
}

func TestDurableWaitAndSignal(t *testing.T) {
	st := store.NewMemory()
	a := &approval{timeout: time.Hour}
	var after atomic.Int32
	ch, err := channel.New(channel.Config{Name: "c", Flow: approvalFlow(a, &after), Store: st, Durable: true})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background()))
	defer func() { require.NoError(t, ch.Stop(context.Background())) }()
	m := jsonMsg(t, map[string]any{"order": "o1"})
	res := ch.Handle(context.Background(), m)
	require.NoError(t, res.Err)
	assert.Equal(t, channel.Ack, res.Settle)
	assert.Equal(t, errors.KindWaiting, res.Outcome)
	assert.Equal(t, store.Waiting, res.State)
	assert.Equal(t, int32(0), a.calls.Load())
	assert.Equal(t, int64(1), ch.Status().Outcomes["waiting"])

	// A duplicate delivery is answered: it waits.
	again := ch.Handle(context.Background(), m)
	assert.Equal(t, store.Waiting, again.State)
	assert.Equal(t, errors.KindWaiting, again.Outcome)

	_, err = ch.Signal(context.Background(), m.ID, "rejected", nil)
	require.ErrorIs(t, err, store.ErrNotWaiting)
	assert.ErrorContains(t, err, `waits for signal "approved" at step "approve"`)
	_, err = ch.Signal(context.Background(), "nope", "approved", nil)
	require.ErrorIs(t, err, store.ErrNotFound)

	res, err = ch.Signal(context.Background(), m.ID, "approved", map[string]any{"by": "ann"})
	require.NoError(t, err)
	require.NoError(t, res.Err)
	assert.Equal(t, store.Done, res.State)
	assert.Equal(t, "ann", res.Message.Context["by"])
	assert.Equal(t, true, res.Message.Context["asked"])
	assert.Equal(t, int32(1), after.Load())

	_, err = ch.Signal(context.Background(), m.ID, "approved", nil)
	require.ErrorIs(t, err, store.ErrNotWaiting, "a signal wakes a message once")
	entries, err := st.Journal(context.Background(), m.ID)
	require.NoError(t, err)
	var paths []string
	for _, e := range entries {
		paths = append(paths, e.Path)
	}
	assert.Equal(t, []string{"approval/ask", "approval/approve"}, paths)
}

func TestDurableWaitTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := store.NewMemory()
		a := &approval{timeout: 48 * time.Hour}
		var after atomic.Int32
		ch, err := channel.New(channel.Config{Name: "c", Flow: approvalFlow(a, &after), Store: st, Durable: true})
		require.NoError(t, err)
		require.NoError(t, ch.Start(context.Background()))
		m := jsonMsg(t, map[string]any{})
		res := ch.Handle(context.Background(), m)
		require.Equal(t, store.Waiting, res.State)
		time.Sleep(47 * time.Hour)
		synctest.Wait()
		rec, err := st.Get(context.Background(), m.ID)
		require.NoError(t, err)
		assert.Equal(t, store.Waiting, rec.State, "not before its time")
		time.Sleep(time.Hour + time.Second)
		synctest.Wait()
		rec, err = st.Get(context.Background(), m.ID)
		require.NoError(t, err)
		assert.Equal(t, store.Rejected, rec.State, "a timeout configured as a Stop rejects the message")
		assert.Equal(t, "not approved in time", rec.Reason)
		assert.Equal(t, int32(0), after.Load())
		require.NoError(t, ch.Stop(context.Background()))
	})
}

func TestDurableChangedFlowIsNotResumed(t *testing.T) {
	st := store.NewMemory()
	step := func(name string, fail *atomic.Bool) flow.Service {
		return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
			if fail != nil && fail.Load() {
				return errors.New("down")
			}
			c.Set(name, true)
			return nil
		})
	}
	var down atomic.Bool
	down.Store(true)
	v1 := flow.New("f", step("a", nil), step("b", nil), step("c", &down)).MustBuild()
	ch, err := channel.New(channel.Config{Name: "c", Flow: v1, Store: st, Durable: true})
	require.NoError(t, err)
	running(t, ch)
	m := jsonMsg(t, map[string]any{})
	res := ch.Handle(context.Background(), m)
	require.Equal(t, store.Error, res.State)

	// The flow changes before the message is resumed: a step inserted
	// before b.
	var xCalls atomic.Int32
	v2 := flow.New("f", step("a", nil), flow.Step("x", func(context.Context, *fc.Context) error { xCalls.Add(1); return nil }),
		step("b", nil), step("c", nil)).MustBuild()
	ch2, err := channel.New(channel.Config{Name: "c", Flow: v2, Store: st, Durable: true})
	require.NoError(t, err)
	running(t, ch2)
	res, err = ch2.Resume(context.Background(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Error, res.State)
	assert.ErrorContains(t, res.Err, `not resumed: flow "f" changed since the run journaled step "b" (f/b)`)
	assert.Equal(t, int32(0), xCalls.Load(), "nothing ran")
	rec, err := st.Get(context.Background(), m.ID)
	require.NoError(t, err)
	assert.Contains(t, rec.Err, `changed since the run journaled step "b"`)

	// With on_change: restart, it runs from the top.
	ch3, err := channel.New(channel.Config{Name: "c", Flow: v2, Store: st, Durable: true, RestartOnChange: true})
	require.NoError(t, err)
	running(t, ch3)
	res, err = ch3.Resume(context.Background(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Done, res.State)
	assert.Equal(t, int32(1), xCalls.Load())

	// A change after the completed steps does not prevent resuming.
	down.Store(true)
	m2 := jsonMsg(t, map[string]any{})
	require.Equal(t, store.Error, ch.Handle(context.Background(), m2).State)
	v3 := flow.New("f", step("a", nil), step("b", nil), step("c", nil), step("d", nil)).MustBuild()
	ch4, err := channel.New(channel.Config{Name: "c", Flow: v3, Store: st, Durable: true})
	require.NoError(t, err)
	running(t, ch4)
	res, err = ch4.Resume(context.Background(), m2.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Done, res.State)
}

func TestDurableReplayOfFinishedRunsFromTheTop(t *testing.T) {
	var calls [5]atomic.Int32
	ch, err := channel.New(channel.Config{Name: "c", Flow: fiveSteps(&calls, nil), Durable: true})
	require.NoError(t, err)
	running(t, ch)
	m := jsonMsg(t, map[string]any{})
	require.Equal(t, store.Done, ch.Handle(context.Background(), m).State)
	_, err = ch.Replay(context.Background(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, []int32{2, 2, 2, 2, 2}, counts(&calls))
}

func TestSignalNeedsDurable(t *testing.T) {
	ch, err := channel.New(channel.Config{Name: "c", Flow: orderFlow(t)})
	require.NoError(t, err)
	_, err = ch.Signal(context.Background(), "x", "go", nil)
	assert.ErrorIs(t, err, channel.ErrNotDurable)
}

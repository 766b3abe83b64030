package channel_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// feed is a real Source: it delivers what is sent on in, concurrently, and
// reports every result on out.
type feed struct {
	in  chan *message.Message
	out chan channel.Result
}

func newFeed() *feed {
	return &feed{in: make(chan *message.Message), out: make(chan channel.Result, 100)}
}

func (f *feed) Name() string { return "feed" }

func (f *feed) Run(ctx context.Context, h channel.Handler) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-f.in:
			wg.Go(func() { f.out <- h.Handle(context.WithoutCancel(ctx), m) })
		}
	}
}

func jsonMsg(t *testing.T, v any) *message.Message {
	t.Helper()
	m, err := message.NewJSON(v, map[string]string{"source": "test"})
	require.NoError(t, err)
	return m
}

func orderFlow(t *testing.T, extra ...flow.Service) *flow.Flow {
	t.Helper()
	steps := append([]flow.Service{
		flow.Step("validate", func(ctx context.Context, c *fc.Context) error {
			switch c.View()["kind"] {
			case "stop":
				return errors.Stop("invalid order")
			case "retry":
				return errors.RetryAfter(errors.New("busy"), 20*time.Millisecond)
			case "fail":
				return errors.New("database said no: secret detail")
			case "panic":
				panic("bug")
			}
			c.Set("valid", true)
			return nil
		}),
	}, extra...)
	return flow.New("orders", steps...).Retry(errors.Policy{MaxAttempts: 2, Initial: time.Millisecond}).MustBuild()
}

func TestHandleOutcomes(t *testing.T) {
	st := store.NewMemory()
	ch, err := channel.New(channel.Config{Name: "orders", Flow: orderFlow(t), Store: st})
	require.NoError(t, err)
	running(t, ch)
	tests := []struct {
		kind    string
		settle  channel.Settle
		outcome errors.Kind
		state   store.State
		after   time.Duration
	}{
		{"ok", channel.Ack, errors.KindOK, store.Done, 0},
		{"stop", channel.Ack, errors.KindStop, store.Rejected, 0},
		{"retry", channel.Nack, errors.KindRetryExhausted, store.Error, 20 * time.Millisecond},
		{"fail", channel.Fail, errors.KindFailed, store.Error, 0},
		{"panic", channel.Fail, errors.KindPanic, store.Error, 0},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			m := jsonMsg(t, map[string]any{"kind": tt.kind})
			res := ch.Handle(t.Context(), m)
			assert.Equal(t, tt.settle, res.Settle, "%v", res.Err)
			assert.Equal(t, tt.state, res.State)
			assert.Equal(t, tt.outcome, res.Outcome)
			assert.Equal(t, tt.after, res.RetryAfter)
			if tt.settle == channel.Fail {
				assert.NotEmpty(t, res.ErrorID)
			}
			rec, err := st.Get(t.Context(), m.ID)
			require.NoError(t, err)
			assert.Equal(t, tt.state, rec.State)
			assert.Equal(t, tt.outcome, rec.Outcome, "the store keeps the outcome")
			if tt.kind == "stop" {
				assert.Equal(t, "invalid order", rec.Reason)
			} else {
				assert.Empty(t, rec.Reason)
			}
			assert.Equal(t, rec.Outcome, rec.History[len(rec.History)-1].Outcome)
			assert.Equal(t, 1, rec.Attempts)
			assert.Equal(t, "test", rec.Message.Context["meta"].(map[string]any)["source"])
			assert.NotEmpty(t, rec.Message.Trace)
			if tt.kind == "ok" {
				assert.Equal(t, true, res.Message.Context["valid"])
				assert.Equal(t, true, rec.Message.Context["valid"])
			}
		})
	}
	s := ch.Status()
	assert.Equal(t, map[string]int64{"done": 1, "rejected": 1, "error": 3, "left": 0, "duplicate": 0, "waiting": 0, "dropped": 0}, s.Outcomes)
}

func TestDuplicateFinishedMessageIsNotRunAgain(t *testing.T) {
	var runs atomic.Int32
	f := flow.New("count", flow.Step("count", func(ctx context.Context, c *fc.Context) error {
		runs.Add(1)
		return nil
	})).MustBuild()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f})
	require.NoError(t, err)
	running(t, ch)
	m := jsonMsg(t, map[string]any{"a": 1})
	for range 3 {
		res := ch.Handle(t.Context(), m.Clone())
		assert.Equal(t, channel.Ack, res.Settle)
	}
	assert.Equal(t, int32(1), runs.Load())
	assert.Equal(t, int64(2), ch.Status().Outcomes["duplicate"])

	// A rejected duplicate is answered with the same reason.
	rejecting, err := channel.New(channel.Config{Name: "r", Flow: orderFlow(t)})
	require.NoError(t, err)
	running(t, rejecting)
	m = jsonMsg(t, map[string]any{"kind": "stop"})
	first := rejecting.Handle(t.Context(), m.Clone())
	again := rejecting.Handle(t.Context(), m.Clone())
	var se1, se2 *errors.StopError
	require.ErrorAs(t, first.Err, &se1)
	require.ErrorAs(t, again.Err, &se2)
	assert.Equal(t, "invalid order", se1.Reason)
	assert.Equal(t, se1.Reason, se2.Reason)
	assert.Equal(t, store.Rejected, again.State)
	assert.Equal(t, errors.KindStop, again.Outcome)
}

// TestRejectedDuplicateReasonIsData: the reason a duplicate of a rejected
// message is answered with is the Stop's Reason, which the store records
// as data with the run's outcome, with or without traces: never recovered
// from the error's text or the trace.
func TestRejectedDuplicateReasonIsData(t *testing.T) {
	const reason = `field "kind": stop: is not allowed` // text that looks like a nested stop
	f := flow.New("orders", flow.Step("validate", func(ctx context.Context, c *fc.Context) error {
		return errors.Stop(reason)
	})).MustBuild()
	for _, noTrace := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoTrace=%v", noTrace), func(t *testing.T) {
			st := store.NewMemory()
			ch, err := channel.New(channel.Config{Name: "r", Flow: f, Store: st, NoTrace: noTrace})
			require.NoError(t, err)
			running(t, ch)
			m := jsonMsg(t, map[string]any{"x": 1})
			first := ch.Handle(t.Context(), m.Clone())
			again := ch.Handle(t.Context(), m.Clone())
			for _, res := range []channel.Result{first, again} {
				assert.Equal(t, channel.Ack, res.Settle)
				assert.Equal(t, errors.KindStop, res.Outcome)
				assert.Equal(t, store.Rejected, res.State)
			}
			se1, ok := errors.AsType[*errors.StopError](first.Err)
			require.True(t, ok)
			se2, ok := errors.AsType[*errors.StopError](again.Err)
			require.True(t, ok)
			assert.Equal(t, reason, se1.Reason)
			assert.Equal(t, reason, se2.Reason, "answered like the first delivery")
			assert.Equal(t, int64(1), ch.Status().Outcomes["duplicate"])

			rec, err := st.Get(t.Context(), m.ID)
			require.NoError(t, err)
			assert.Equal(t, errors.KindStop, rec.Outcome)
			assert.Equal(t, reason, rec.Reason)
			assert.Equal(t, `flow "orders": step "validate": stop: `+reason, rec.Err)
			assert.Equal(t, noTrace, len(rec.Message.Trace) == 0)
		})
	}

	// The answer is the record's Reason, whatever its error text and trace
	// say.
	st := store.NewMemory()
	ch, err := channel.New(channel.Config{Name: "r", Flow: f, Store: st, NoTrace: true})
	require.NoError(t, err)
	running(t, ch)
	m := jsonMsg(t, map[string]any{"x": 1})
	require.NoError(t, st.Begin(t.Context(), m))
	require.NoError(t, st.Transition(t.Context(), m.ID, store.Rejected, store.Update{
		Err: "stop: from the text", Outcome: errors.KindStop, Reason: "from the store",
		Trace: []byte(`{"outcome":"stop","reason":"from the trace"}`),
	}))
	res := ch.Handle(t.Context(), m.Clone())
	se, ok := errors.AsType[*errors.StopError](res.Err)
	require.True(t, ok)
	assert.Equal(t, "from the store", se.Reason)
}

// flaky is a service that is broken (Fatal) for its first calls, and
// counts its lifecycle.
type flaky struct {
	fatals       int32
	calls, inits atomic.Int32
	closes       atomic.Int32
}

func (f *flaky) Name() string { return "db" }
func (f *flaky) Call(ctx context.Context, c *fc.Context) error {
	if f.calls.Add(1) <= f.fatals {
		return errors.Fatal(errors.New("connection lost"))
	}
	c.Set("saved", true)
	return nil
}
func (f *flaky) Init(ctx context.Context) error  { f.inits.Add(1); return nil }
func (f *flaky) Close(ctx context.Context) error { f.closes.Add(1); return nil }

func TestFatalRestartsServicesAndKeepsMessage(t *testing.T) {
	svc := &flaky{fatals: 2}
	st := store.NewMemory()
	ch, err := channel.New(channel.Config{Name: "c", Flow: flow.New("f", svc).MustBuild(), Store: st,
		Restart: &errors.Policy{Initial: time.Millisecond, MaxAttempts: 5}})
	require.NoError(t, err)
	require.NoError(t, ch.Start(t.Context()))
	m := jsonMsg(t, map[string]any{"x": 1})
	res := ch.Handle(t.Context(), m)
	require.Equal(t, channel.Ack, res.Settle, "%v", res.Err)
	assert.Equal(t, store.Done, res.State)
	assert.Equal(t, int64(2), ch.Status().Restarts)
	assert.Equal(t, int32(3), svc.inits.Load(), "start + two restarts")
	rec, err := st.Get(t.Context(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Done, rec.State)
	assert.Equal(t, true, rec.Message.Context["saved"])
	require.NoError(t, ch.Stop(t.Context()))
	assert.Equal(t, int32(3), svc.closes.Load())
}

func TestFatalBeyondRestartBudgetLeavesMessageOwed(t *testing.T) {
	svc := &flaky{fatals: 100}
	st := store.NewMemory()
	ch, err := channel.New(channel.Config{Name: "c", Flow: flow.New("f", svc).MustBuild(), Store: st,
		Restart: &errors.Policy{Initial: time.Millisecond, MaxAttempts: 2}})
	require.NoError(t, err)
	running(t, ch)
	m := jsonMsg(t, map[string]any{"x": 1})
	res := ch.Handle(t.Context(), m)
	assert.Equal(t, channel.Leave, res.Settle)
	rec, err := st.Get(t.Context(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Pending, rec.State, "owed: runs again on the next start")
	assert.Equal(t, errors.KindFatal, rec.Outcome, "the run's outcome is recorded: not a crash")
	assert.Zero(t, store.CrashedRuns(rec))
}

func TestGracefulStopDrainsInFlight(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	f := flow.New("slow", flow.Step("slow", func(ctx context.Context, c *fc.Context) error {
		close(started)
		<-release
		c.Set("finished", true)
		return nil
	})).MustBuild()
	src := newFeed()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Sources: []channel.Source{src}})
	require.NoError(t, err)
	require.NoError(t, ch.Start(t.Context()))
	assert.Equal(t, channel.StateRunning, ch.Status().State)
	src.in <- jsonMsg(t, map[string]any{})
	<-started

	stopped := make(chan error)
	go func() { stopped <- ch.Stop(t.Context()) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned before the in-flight message finished")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-stopped)
	res := <-src.out
	assert.Equal(t, channel.Ack, res.Settle)
	assert.Equal(t, true, res.Message.Context["finished"])
	assert.Equal(t, channel.StateStopped, ch.Status().State)
}

func TestStopDeadlineLeavesMessageForNextStart(t *testing.T) {
	st := store.NewMemory()
	var block atomic.Bool
	block.Store(true)
	f := flow.New("f", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
		if block.Load() {
			<-ctx.Done()
			return ctx.Err()
		}
		c.Set("ok", true)
		return nil
	})).MustBuild()
	src := newFeed()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st, Sources: []channel.Source{src}})
	require.NoError(t, err)
	require.NoError(t, ch.Start(t.Context()))
	m := jsonMsg(t, map[string]any{})
	src.in <- m
	require.Eventually(t, func() bool { return ch.Status().InFlight == 1 }, 5*time.Second, time.Millisecond)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, ch.Stop(ctx), context.DeadlineExceeded)
	assert.Equal(t, channel.Leave, (<-src.out).Settle)
	rec, err := st.Get(t.Context(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Pending, rec.State, "owed, with the outcome canceled: not a crashed run")
	assert.Equal(t, errors.KindCanceled, rec.Outcome)

	// The next start runs it again, in the background.
	block.Store(false)
	require.NoError(t, ch.Start(t.Context()))
	require.Eventually(t, func() bool { return ch.Status().Recovering == 0 }, 10*time.Second, time.Millisecond)
	rec, err = st.Get(t.Context(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Done, rec.State)
	assert.Equal(t, 2, rec.Attempts)
	require.NoError(t, ch.Stop(t.Context()))
}

func TestOrderingPerKey(t *testing.T) {
	var mu sync.Mutex
	active := map[string]int{}
	var seen []string
	overlap := false
	f := flow.New("f", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
		key := c.View()["key"].(string)
		mu.Lock()
		active[key]++
		if active[key] > 1 {
			overlap = true
		}
		mu.Unlock()
		time.Sleep(100 * time.Microsecond)
		mu.Lock()
		active[key]--
		seen = append(seen, fmt.Sprint(key, c.View()["n"]))
		mu.Unlock()
		return nil
	})).MustBuild()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, OrderKey: func(m *message.Message) string {
		return m.Meta["key"]
	}})
	require.NoError(t, err)
	running(t, ch)
	var wg sync.WaitGroup
	for _, key := range []string{"a", "b"} {
		wg.Go(func() {
			for n := range 20 {
				m, err := message.NewJSON(map[string]any{"key": key, "n": n}, map[string]string{"key": key})
				require.NoError(t, err)
				assert.Equal(t, channel.Ack, ch.Handle(t.Context(), m).Settle)
			}
		})
	}
	wg.Wait()
	assert.False(t, overlap, "two messages with the same key ran at once")
	var a []string
	for _, s := range seen {
		if s[0] == 'a' {
			a = append(a, s)
		}
	}
	require.Len(t, a, 20)
	for i, s := range a {
		assert.Equal(t, fmt.Sprint("a", i), s)
	}
}

func TestReplayAndInject(t *testing.T) {
	var log []string
	var mu sync.Mutex
	step := func(name string) flow.Service {
		return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
			mu.Lock()
			log = append(log, name)
			mu.Unlock()
			return nil
		})
	}
	st := store.NewMemory()
	ch, err := channel.New(channel.Config{Name: "c", Flow: flow.New("f", step("a"), step("b")).MustBuild(), Store: st})
	require.NoError(t, err)
	running(t, ch)
	m := jsonMsg(t, map[string]any{})
	assert.Equal(t, channel.Ack, ch.Inject(t.Context(), m, "b").Settle)
	assert.Equal(t, []string{"b"}, log)

	res, err := ch.Replay(t.Context(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Done, res.State)
	assert.Equal(t, []string{"b", "a", "b"}, log)
	rec, err := st.Get(t.Context(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, rec.Attempts)

	_, err = ch.Replay(t.Context(), "nope")
	assert.ErrorIs(t, err, store.ErrNotFound)
}

func TestNonJSONPayloadAndBadJSON(t *testing.T) {
	var got any
	f := flow.New("f", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
		got = c.View()["body"]
		return nil
	})).MustBuild()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f})
	require.NoError(t, err)
	running(t, ch)
	res := ch.Handle(t.Context(), message.New("text/plain", []byte("hello"), nil))
	assert.Equal(t, channel.Ack, res.Settle)
	assert.Equal(t, "hello", got)

	bad := message.New("application/json", []byte(`{"broken"`), nil)
	res = ch.Handle(t.Context(), bad)
	assert.Equal(t, channel.Ack, res.Settle)
	assert.Equal(t, store.Rejected, res.State)
	assert.ErrorContains(t, res.Err, "payload")

	// Rejected before the flow ran: the reason is stored all the same.
	rec, err := ch.Store().Get(t.Context(), bad.ID)
	require.NoError(t, err)
	assert.Equal(t, errors.KindStop, rec.Outcome)
	assert.True(t, strings.HasPrefix(rec.Reason, "payload: "), rec.Reason)
	again := ch.Handle(t.Context(), bad.Clone())
	se, ok := errors.AsType[*errors.StopError](again.Err)
	require.True(t, ok)
	assert.Equal(t, rec.Reason, se.Reason)
}

func TestConfigErrors(t *testing.T) {
	f := orderFlow(t)
	_, err := channel.New(channel.Config{Flow: f})
	assert.EqualError(t, err, "channel: name is required")
	_, err = channel.New(channel.Config{Name: "x", Flow: f, Sources: []channel.Source{nil}})
	assert.EqualError(t, err, `channel "x": source 1 is nil`)
	ch, err := channel.New(channel.Config{Name: "x", Flow: f})
	require.NoError(t, err)
	running(t, ch)
	require.NoError(t, ch.Stop(t.Context()), "stopping a stopped channel is a no-op")
	require.NoError(t, ch.Start(t.Context()))
	assert.ErrorContains(t, ch.Start(t.Context()), "already running")
	require.NoError(t, ch.Stop(t.Context()))
}

func TestMaxDeliveriesDeadLetters(t *testing.T) {
	st := store.NewMemory()
	ch, err := channel.New(channel.Config{Name: "c", Flow: orderFlow(t), Store: st, MaxDeliveries: 2})
	require.NoError(t, err)
	running(t, ch)
	m := jsonMsg(t, map[string]any{"kind": "retry"})
	first := ch.Handle(t.Context(), m.Clone())
	assert.Equal(t, channel.Nack, first.Settle, "first delivery: redeliver later")
	second := ch.Handle(t.Context(), m.Clone()) // the redelivery
	assert.Equal(t, channel.Fail, second.Settle, "second delivery: dead-lettered")
	assert.ErrorContains(t, second.Err, "dead-lettered after 2 deliveries")
	assert.NotEmpty(t, second.ErrorID)
	rec, err := st.Get(t.Context(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Dead, rec.State, "a dead letter, to replay by hand")
	assert.Equal(t, errors.KindRetryExhausted, rec.Outcome)
	assert.Equal(t, 2, rec.Attempts)
	assert.True(t, channel.SetAside(rec))

	third := ch.Handle(t.Context(), m.Clone()) // delivered again: not run
	assert.Equal(t, channel.Fail, third.Settle)
	assert.ErrorIs(t, third.Err, channel.ErrSetAside)
	rec, err = st.Get(t.Context(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, rec.Attempts, "not run again")
	assert.Equal(t, store.Dead, rec.State)

	res, err := ch.Replay(t.Context(), m.ID) // by hand: runs (and fails again)
	require.NoError(t, err)
	assert.Equal(t, 3, mustGet(t, st, m.ID).Attempts)
	assert.Equal(t, store.Dead, res.State, "still over max_deliveries")

	_, err = channel.New(channel.Config{Name: "c", Flow: orderFlow(t), MaxDeliveries: -1})
	assert.ErrorContains(t, err, "max deliveries must not be negative")
}

func TestStoreThatCannotBeWrittenLeavesMessage(t *testing.T) {
	st := store.NewMemory()
	var ran atomic.Bool
	f := flow.New("f", flow.Step("s", func(ctx context.Context, c *fc.Context) error { ran.Store(true); return nil })).MustBuild()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st})
	require.NoError(t, err)
	running(t, ch)
	require.NoError(t, st.Close())
	res := ch.Handle(t.Context(), jsonMsg(t, map[string]any{}))
	assert.Equal(t, channel.Leave, res.Settle, "not accepted: the source keeps it (HTTP 503, no ack)")
	assert.ErrorIs(t, res.Err, store.ErrClosed)
	assert.False(t, ran.Load(), "nothing runs before the message is recorded")
}

func mustGet(t *testing.T, st store.Store, id string) *store.Record {
	t.Helper()
	rec, err := st.Get(t.Context(), id)
	require.NoError(t, err)
	return rec
}

func TestReplayFromStep(t *testing.T) {
	var charges atomic.Int32
	var broken atomic.Bool
	broken.Store(true)
	f := flow.New("order",
		flow.Step("charge", func(ctx context.Context, c *fc.Context) error {
			charges.Add(1)
			c.Set("charge_id", fmt.Sprintf("ch-%d", charges.Load()))
			return nil
		}),
		flow.Step("ship", func(ctx context.Context, c *fc.Context) error {
			if broken.Load() {
				return errors.New("carrier down")
			}
			c.Set("shipped", c.View()["charge_id"])
			return nil
		}),
	).MustBuild()
	st := store.NewMemory()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st})
	require.NoError(t, err)
	running(t, ch)
	m := jsonMsg(t, map[string]any{"order": "o-1"})
	res := ch.Handle(t.Context(), m)
	require.Equal(t, store.Error, res.State)
	assert.Equal(t, "ch-1", mustGet(t, st, m.ID).Message.Context["charge_id"], "the failed run's context is stored")

	broken.Store(false)
	res, err = ch.ReplayFrom(t.Context(), m.ID, "ship")
	require.NoError(t, err)
	require.Equal(t, store.Done, res.State, "%v", res.Err)
	assert.Equal(t, int32(1), charges.Load(), "charge is not run again")
	rec := mustGet(t, st, m.ID)
	assert.Equal(t, "ch-1", rec.Message.Context["shipped"], "ship read what charge wrote before")
	assert.Equal(t, "o-1", rec.Message.Context["order"])

	_, err = ch.ReplayFrom(t.Context(), m.ID, "nope")
	assert.ErrorIs(t, err, channel.ErrNoStep)
	assert.ErrorContains(t, err, `flow "order" has no step "nope" (steps: charge, ship)`)
	assert.Equal(t, store.Done, mustGet(t, st, m.ID).State, "an unknown step leaves the message as it was")
	_, err = ch.ReplayFrom(t.Context(), "missing", "ship")
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// TestRedact: the keys a channel redacts are masked in the stored
// context, and their values in the stored error, reason and trace, while
// the run and the answer see them.
func TestRedact(t *testing.T) {
	f := flow.New("login",
		flow.Step("fetch", func(ctx context.Context, c *fc.Context) error {
			c.Set("token", "tok-7f3a9")
			c.Set("card", map[string]any{"number": "4111111111111111", "brand": "visa"})
			return nil
		}),
		flow.Step("check", func(ctx context.Context, c *fc.Context) error {
			v := c.View()
			if v["password"] == "wrong-pass" {
				return errors.Stopf("password wrong-pass refused with token %s", v["token"])
			}
			if v["password"] == "boom-pass" {
				return errors.New("backend said no to card 4111111111111111")
			}
			return nil
		}),
	).MustBuild()
	st := store.NewMemory()
	_, err := channel.New(channel.Config{Name: "c", Flow: f, Redact: []string{"a..b"}})
	assert.ErrorContains(t, err, `channel "c": redact: "a..b"`)
	var logs strings.Builder
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st, Redact: []string{"password", "token", "card.number"},
		Logger: slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, nil))})
	require.NoError(t, err)
	running(t, ch)

	ok := jsonMsg(t, map[string]any{"user": "ann", "password": "s3cret-pass"})
	res := ch.Handle(t.Context(), ok)
	require.Equal(t, store.Done, res.State, "%v", res.Err)
	assert.Equal(t, "s3cret-pass", res.Message.Context["password"], "the answer sees the values")
	rec := mustGet(t, st, ok.ID)
	assert.Equal(t, "[redacted]", rec.Message.Context["password"])
	assert.Equal(t, "[redacted]", rec.Message.Context["token"])
	assert.Equal(t, map[string]any{"number": "[redacted]", "brand": "visa"}, rec.Message.Context["card"])
	assert.Equal(t, "ann", rec.Message.Context["user"])

	for _, pw := range []string{"wrong-pass", "boom-pass"} {
		m := jsonMsg(t, map[string]any{"user": "bob", "password": pw})
		ch.Handle(t.Context(), m)
		rec := mustGet(t, st, m.ID)
		kept := rec.Err + rec.Reason + string(rec.Message.Trace)
		for _, h := range rec.History {
			kept += h.Err + h.Reason
		}
		assert.NotContains(t, kept, pw, "stored error, reason, history and trace")
		assert.NotContains(t, kept, "tok-7f3a9")
		assert.NotContains(t, kept, "4111111111111111")
		assert.Contains(t, kept, "[redacted]")
	}
	assert.Contains(t, logs.String(), "message failed")
	assert.NotContains(t, logs.String(), "4111111111111111", "the channel's logs")
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// running starts ch for the test and stops it when the test ends: a
// channel handles messages only while it runs.
func running(t testing.TB, ch *channel.Channel) *channel.Channel {
	t.Helper()
	require.NoError(t, ch.Start(context.Background()))
	t.Cleanup(func() { _ = ch.Stop(context.Background()) })
	return ch
}

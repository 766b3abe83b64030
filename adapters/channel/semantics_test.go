package channel_test

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestHandleOnStoppedChannelRefuses: a channel never started, and one
// stopped, refuse a delivery at once with ErrStopped: nothing is recorded
// and nothing runs.
func TestHandleOnStoppedChannelRefuses(t *testing.T) {
	st := store.NewMemory()
	var ran atomic.Int32
	f := flow.New("f", flow.Step("s", func(ctx context.Context, c *fc.Context) error { ran.Add(1); return nil })).MustBuild()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st, Logger: quiet()})
	require.NoError(t, err)

	refused := func(what string) {
		t.Helper()
		m := jsonMsg(t, map[string]any{"a": 1})
		res := ch.Handle(t.Context(), m)
		require.ErrorIs(t, res.Err, channel.ErrStopped, what)
		assert.Equal(t, channel.Leave, res.Settle, what)
		assert.Equal(t, errors.KindRetry, res.Outcome, what)
		assert.Empty(t, res.State, "%s: nothing recorded", what)
		_, err := st.Get(t.Context(), m.ID)
		require.ErrorIs(t, err, store.ErrNotFound, what)
		res = ch.Inject(t.Context(), m, "s")
		require.ErrorIs(t, res.Err, channel.ErrStopped, what)
	}
	refused("never started")
	require.NoError(t, ch.Start(t.Context()))
	res := ch.Handle(t.Context(), jsonMsg(t, map[string]any{"a": 1}))
	require.NoError(t, res.Err)
	assert.Equal(t, store.Done, res.State)
	require.NoError(t, ch.Stop(t.Context()))
	refused("stopped")
	assert.Equal(t, int32(1), ran.Load(), "only the message delivered while running ran")
	n, err := st.Count(t.Context(), store.Query{})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, int64(4), ch.Status().Outcomes["left"], "refusals count as left")
}

// TestHandleDuringStartStopCycles delivers 1,000 messages concurrently
// with Start/Stop cycles: each is either run completely (done, recorded
// done) or refused with ErrStopped and nothing stored; no message is
// ever left pending or processing.
func TestHandleDuringStartStopCycles(t *testing.T) {
	const n = 1000
	st := store.NewMemory()
	f := flow.New("f",
		flow.Step("a", func(ctx context.Context, c *fc.Context) error { runtime.Gosched(); c.Set("a", true); return nil }),
		flow.Step("b", func(ctx context.Context, c *fc.Context) error { c.Set("b", true); return nil }),
	).MustBuild()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st, Logger: quiet()})
	require.NoError(t, err)
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = jsonMsg(t, map[string]any{"i": i})
	}

	stop := make(chan struct{})
	var cycles sync.WaitGroup
	var starts atomic.Int32
	var handled atomic.Int64
	// Each phase, running or stopped, lasts until a few more messages
	// were handled, so that both happen while the others arrive.
	phase := func() bool {
		until := handled.Load() + 3
		for handled.Load() < until {
			select {
			case <-stop:
				return false
			default:
				runtime.Gosched()
			}
		}
		return true
	}
	cycles.Go(func() {
		for {
			if ch.Start(context.Background()) == nil {
				starts.Add(1)
			}
			more := phase()
			_ = ch.Stop(context.Background())
			if !more || !phase() {
				return
			}
		}
	})
	results := make([]channel.Result, n)
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				results[i] = ch.Handle(context.Background(), msgs[i])
				handled.Add(1)
				runtime.Gosched() // let the cycles go on
			}
		})
	}
	wg.Wait()
	close(stop)
	cycles.Wait()
	require.NoError(t, ch.Stop(context.Background()))

	done := 0
	for i, res := range results {
		rec, gerr := st.Get(t.Context(), msgs[i].ID)
		if res.Err == nil {
			done++
			assert.Equal(t, store.Done, res.State)
			assert.Equal(t, true, res.Message.Context["b"], "ran completely")
			require.NoError(t, gerr)
			assert.Equal(t, store.Done, rec.State)
			continue
		}
		require.ErrorIs(t, res.Err, channel.ErrStopped, "message %d", i)
		assert.Equal(t, channel.Leave, res.Settle)
		require.ErrorIs(t, gerr, store.ErrNotFound, "message %d: refused, nothing stored", i)
	}
	owed, err := st.Search(t.Context(), store.Query{States: []store.State{store.Pending, store.Processing}})
	require.NoError(t, err)
	assert.Empty(t, owed, "nothing left pending or processing")
	total, err := st.Count(t.Context(), store.Query{})
	require.NoError(t, err)
	assert.Equal(t, done, total, "every stored message is done")
	t.Logf("%d start/stop cycles: %d done, %d refused", starts.Load(), done, n-done)
	assert.Positive(t, done, "some ran while the channel was running")
	assert.Less(t, done, n, "some were refused while it was stopped")
}

// TestDrop: a Drop consumes the message silently: acked, stored as done
// with outcome dropped and the reason, counted as dropped; delivered
// again it is answered from the store as dropped.
func TestDrop(t *testing.T) {
	st := store.NewMemory()
	f := flow.New("f", flow.Step("filter", func(ctx context.Context, c *fc.Context) error {
		if c.View()["type"] != "order" {
			return errors.Dropf("type %v: not an order", c.View()["type"])
		}
		return nil
	})).MustBuild()
	ch := running(t, mustNew(t, channel.Config{Name: "c", Flow: f, Store: st, Logger: quiet()}))
	m := jsonMsg(t, map[string]any{"type": "ping"})
	res := ch.Handle(t.Context(), m)
	assert.Equal(t, channel.Ack, res.Settle)
	assert.Equal(t, errors.KindDropped, res.Outcome)
	assert.Equal(t, store.Done, res.State)
	require.ErrorIs(t, res.Err, errors.ErrDrop)
	rec := mustGet(t, st, m.ID)
	assert.Equal(t, store.Done, rec.State)
	assert.Equal(t, errors.KindDropped, rec.Outcome)
	assert.Equal(t, "type ping: not an order", rec.Reason)
	assert.Contains(t, string(rec.Message.Trace), `"outcome":"dropped"`)

	again := ch.Handle(t.Context(), m.Clone())
	assert.Equal(t, errors.KindDropped, again.Outcome, "a duplicate is answered from the store")
	de, ok := errors.AsType[*errors.DropError](again.Err)
	require.True(t, ok)
	assert.Equal(t, "type ping: not an order", de.Reason)

	require.NoError(t, ch.Handle(t.Context(), jsonMsg(t, map[string]any{"type": "order"})).Err)
	s := ch.Status()
	assert.Equal(t, int64(1), s.Outcomes["dropped"])
	assert.Equal(t, int64(1), s.Outcomes["done"], "a dropped message is not counted done")
	assert.Empty(t, s.LastError, "a drop is no error")
}

func mustNew(t *testing.T, cfg channel.Config) *channel.Channel {
	t.Helper()
	ch, err := channel.New(cfg)
	require.NoError(t, err)
	return ch
}

// recorder is a hook flow that records what it is run with.
type recorder struct {
	mu   sync.Mutex
	seen []map[string]any
	fail bool
}

func (r *recorder) flow(name string) *flow.Flow {
	return flow.New(name, flow.Step("record", func(ctx context.Context, c *fc.Context) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.seen = append(r.seen, c.Map())
		c.Set("written_by_hook", true)
		if r.fail {
			return errors.New("hook broke")
		}
		return nil
	})).MustBuild()
}

func (r *recorder) outcomes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.seen {
		o := m[channel.OutcomeKey].(map[string]any)
		out = append(out, o["kind"].(string)+"/"+o["state"].(string))
	}
	return out
}

// TestHooks: each outcome runs its hook, then finally, with the final
// context and the outcome; a failing hook is counted and changes
// nothing; what hooks write is discarded.
func TestHooks(t *testing.T) {
	var ok, fail, reject, drop, fin recorder
	fin.fail = true
	f := flow.New("f", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
		c.Set("seen", true)
		switch c.View()["kind"] {
		case "stop":
			return errors.Stop("invalid")
		case "drop":
			return errors.Drop("not ours")
		case "fail":
			return errors.New("broken")
		}
		return nil
	})).MustBuild()
	st := store.NewMemory()
	ch := running(t, mustNew(t, channel.Config{Name: "c", Flow: f, Store: st, Logger: quiet(), Hooks: channel.Hooks{
		OnOK: ok.flow("ok"), OnFailure: fail.flow("fail"), OnReject: reject.flow("reject"), OnDrop: drop.flow("drop"), Finally: fin.flow("fin"),
	}}))
	want := map[string]channel.Settle{"ok": channel.Ack, "stop": channel.Ack, "drop": channel.Ack, "fail": channel.Fail}
	for _, kind := range []string{"ok", "stop", "drop", "fail"} {
		m := jsonMsg(t, map[string]any{"kind": kind})
		res := ch.Handle(t.Context(), m)
		assert.Equal(t, want[kind], res.Settle, "the failing finally hook changes nothing")
		assert.NotContains(t, res.Message.Context, "written_by_hook")
		assert.NotContains(t, mustGet(t, st, m.ID).Message.Context, "written_by_hook")
	}
	assert.Equal(t, []string{"ok/done"}, ok.outcomes())
	assert.Equal(t, []string{"stop/rejected"}, reject.outcomes())
	assert.Equal(t, []string{"dropped/done"}, drop.outcomes())
	assert.Equal(t, []string{"failed/error"}, fail.outcomes())
	assert.Equal(t, []string{"ok/done", "stop/rejected", "dropped/done", "failed/error"}, fin.outcomes())
	assert.Equal(t, true, reject.seen[0]["seen"], "the final context")
	assert.Equal(t, "invalid", reject.seen[0][channel.OutcomeKey].(map[string]any)["reason"])
	assert.Equal(t, "not ours", drop.seen[0][channel.OutcomeKey].(map[string]any)["reason"])
	assert.Contains(t, fail.seen[0][channel.OutcomeKey].(map[string]any)["error"], "broken")
	assert.Equal(t, int64(4), ch.Status().HookErrors, "finally failed 4 times")
	assert.Equal(t, int64(1), ch.Status().Outcomes["error"], "hook failures are not message failures")

	// A duplicate delivery is answered from the store: no hook runs.
	m := jsonMsg(t, map[string]any{"kind": "ok"})
	ch.Handle(t.Context(), m)
	ch.Handle(t.Context(), m.Clone())
	assert.Len(t, ok.outcomes(), 2)
}

// TestHooksAreInitialisedAndClosedWithTheChannel: the hooks' services
// live from Start to Stop, like the flow's.
func TestHooksAreInitialisedAndClosedWithTheChannel(t *testing.T) {
	svc := &flaky{}
	hook := flow.New("hook", svc).MustBuild()
	ch := mustNew(t, channel.Config{Name: "c", Flow: orderFlow(t), Logger: quiet(), Hooks: channel.Hooks{Finally: hook}})
	require.NoError(t, ch.Start(t.Context()))
	assert.Equal(t, int32(1), svc.inits.Load())
	require.NoError(t, ch.Stop(t.Context()))
	assert.Equal(t, int32(1), svc.closes.Load())
}

// TestStateChanges: every state change is told with its cause, in order.
func TestStateChanges(t *testing.T) {
	var mu sync.Mutex
	var got []string
	var causes []error
	observe := func(sc channel.StateChange) {
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, "c", sc.Channel)
		assert.False(t, sc.At.IsZero())
		got = append(got, sc.From+">"+sc.To)
		causes = append(causes, sc.Cause)
	}
	svc := &flaky{fatals: 1} // the first call is Fatal: one restart
	ch := mustNew(t, channel.Config{Name: "c", Flow: flow.New("f", svc).MustBuild(), Logger: quiet(), OnStateChange: observe,
		Restart: &errors.Policy{Initial: 1, MaxAttempts: 3}})
	require.NoError(t, ch.Start(t.Context()))
	require.NoError(t, ch.Handle(t.Context(), jsonMsg(t, map[string]any{})).Err)
	require.NoError(t, ch.Stop(t.Context()))
	mu.Lock()
	assert.Equal(t, []string{"stopped>starting", "starting>running", "running>restarting", "restarting>running",
		"running>stopping", "stopping>stopped"}, got)
	require.ErrorIs(t, causes[2], errors.ErrFatal, "a restart's cause is the Fatal error")
	assert.NoError(t, causes[3])
	mu.Unlock()

	// A start that fails goes back to stopped with the cause.
	got, causes = nil, nil
	closed := store.NewMemory()
	require.NoError(t, closed.Close())
	bad := mustNew(t, channel.Config{Name: "c", Flow: orderFlow(t), Store: closed, Logger: quiet(), OnStateChange: observe})
	require.Error(t, bad.Start(t.Context()))
	assert.Equal(t, []string{"stopped>starting", "starting>stopped"}, got)
	require.ErrorIs(t, causes[1], channel.ErrStoreNotWritable)
}

// TestChannelWithoutSteps: a channel with no flow records each message
// and answers it with its context.
func TestChannelWithoutSteps(t *testing.T) {
	st := store.NewMemory()
	ch := running(t, mustNew(t, channel.Config{Name: "log", Store: st, Logger: quiet()}))
	m := jsonMsg(t, map[string]any{"order": "o-1"})
	res := ch.Handle(t.Context(), m)
	require.NoError(t, res.Err)
	assert.Equal(t, store.Done, res.State)
	assert.Equal(t, "o-1", res.Message.Context["order"])
	rec := mustGet(t, st, m.ID)
	assert.Equal(t, store.Done, rec.State)
	assert.Equal(t, "o-1", rec.Message.Context["order"])
	assert.Equal(t, "log", ch.Flow().Name())
}

// TestChannelOnNullStore: a channel on the null store runs and answers
// every message and keeps none: nothing to search, replay or recover, and
// a message delivered twice runs twice.
func TestChannelOnNullStore(t *testing.T) {
	var runs atomic.Int32
	f := flow.New("f", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
		runs.Add(1)
		c.Set("ok", true)
		return nil
	})).MustBuild()
	ch := running(t, mustNew(t, channel.Config{Name: "c", Flow: f, Store: store.None(), Logger: quiet()}))
	m := jsonMsg(t, map[string]any{"a": 1})
	res := ch.Handle(t.Context(), m)
	require.NoError(t, res.Err)
	assert.Equal(t, store.Done, res.State)
	assert.Equal(t, true, res.Message.Context["ok"])
	res = ch.Handle(t.Context(), m.Clone())
	require.NoError(t, res.Err)
	assert.Equal(t, int32(2), runs.Load(), "no record: a duplicate runs again")
	n, err := ch.Store().Count(t.Context(), store.Query{})
	require.NoError(t, err)
	assert.Zero(t, n)
	_, err = ch.Replay(t.Context(), m.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	assert.Equal(t, int64(2), ch.Status().Outcomes["done"])
}

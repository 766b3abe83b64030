package bus_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/bus"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recorder is an action that records the bodies it runs, in order.
type recorder struct {
	mu   sync.Mutex
	seen []map[string]any
}

func (r *recorder) action(name string) flow.Service {
	return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
		r.mu.Lock()
		r.seen = append(r.seen, c.Map())
		r.mu.Unlock()
		return nil
	})
}

func (r *recorder) all() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func newBus(t *testing.T, opts bus.Options, svcs ...bus.Service) *bus.Bus {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	b := bus.New(opts)
	for _, s := range svcs {
		require.NoError(t, b.Add(s))
	}
	require.NoError(t, b.Start(t.Context()))
	return b
}

func stop(t *testing.T, b *bus.Bus) {
	t.Helper()
	require.NoError(t, b.Stop(context.Background()))
}

func TestOrderPerServiceUnderConcurrentSubmitters(t *testing.T) {
	const submitters, each = 8, 200
	var running, overlap atomic.Int32
	var mu sync.Mutex
	var got []string
	act := flow.Step("record", func(ctx context.Context, c *fc.Context) error {
		if running.Add(1) > 1 {
			overlap.Add(1)
		}
		defer running.Add(-1)
		who, _ := c.Get("who")
		n, _ := c.Get("n")
		mu.Lock()
		got = append(got, fmt.Sprint(who, ":", n))
		mu.Unlock()
		return nil
	})
	b := newBus(t, bus.Options{}, bus.Service{Name: "svc", Mailbox: 16, Actions: bus.Actions{bus.Process: act}})
	var wg sync.WaitGroup
	for w := range submitters {
		wg.Go(func() {
			for i := range each {
				assert.NoError(t, b.Submit(t.Context(), "svc", bus.Process, map[string]any{"who": w, "n": i}))
			}
		})
	}
	wg.Wait()
	stop(t, b) // drains the mailbox
	require.Len(t, got, submitters*each, "every message ran once")
	assert.Zero(t, overlap.Load(), "one message at a time")
	next := map[string]int{}
	for _, g := range got {
		var who string
		var n int
		_, err := fmt.Sscanf(g, "%s", &who)
		require.NoError(t, err)
		var w int
		_, err = fmt.Sscanf(g, "%d:%d", &w, &n)
		require.NoError(t, err)
		key := fmt.Sprint(w)
		assert.Equal(t, next[key], n, "submitter %d's messages run in the order it submitted them", w)
		next[key] = n + 1
	}
}

func TestBackPressureFullMailboxBlocksWithoutLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		rec := &recorder{}
		act := flow.Step("slow", func(ctx context.Context, c *fc.Context) error {
			<-gate
			return rec.action("r").Call(ctx, c)
		})
		b := newBus(t, bus.Options{}, bus.Service{Name: "svc", Mailbox: 2, Actions: bus.Actions{bus.Process: act}})
		var queued atomic.Int32
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Go(func() {
				assert.NoError(t, b.Submit(context.Background(), "svc", bus.Process, map[string]any{"i": i}))
				queued.Add(1)
			})
		}
		synctest.Wait()
		// one message runs (held by the gate), two wait in the mailbox,
		// the other submitters wait for room
		assert.Equal(t, int32(3), queued.Load())
		st := b.Status()[0]
		assert.Equal(t, 2, st.Queued)
		close(gate)
		wg.Wait()
		stop(t, b)
		assert.Equal(t, 10, rec.len(), "nothing lost")
	})
}

func TestFullMailboxFailsByPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		act := flow.Step("slow", func(ctx context.Context, c *fc.Context) error { <-gate; return nil })
		b := newBus(t, bus.Options{}, bus.Service{Name: "svc", Mailbox: 1, WhenFull: bus.Fail, Actions: bus.Actions{bus.Process: act}})
		require.NoError(t, b.Submit(t.Context(), "svc", bus.Process, nil))
		synctest.Wait() // the first runs
		require.NoError(t, b.Submit(t.Context(), "svc", bus.Process, nil))
		err := b.Submit(t.Context(), "svc", bus.Process, nil)
		require.ErrorIs(t, err, bus.ErrMailboxFull)
		assert.Contains(t, err.Error(), `"svc"`)
		close(gate)
		stop(t, b)
		assert.Equal(t, int64(2), b.Status()[0].Processed)
	})
}

func TestSubmitWaitingForRoomGivesUpWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		act := flow.Step("slow", func(ctx context.Context, c *fc.Context) error { <-gate; return nil })
		b := newBus(t, bus.Options{}, bus.Service{Name: "svc", Mailbox: 1, Actions: bus.Actions{bus.Process: act}})
		require.NoError(t, b.Submit(t.Context(), "svc", bus.Process, nil))
		synctest.Wait()
		require.NoError(t, b.Submit(t.Context(), "svc", bus.Process, nil))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err := b.Submit(ctx, "svc", bus.Process, nil)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "mailbox full")
		close(gate)
		stop(t, b)
		assert.Equal(t, int64(2), b.Status()[0].Processed, "the refused message never ran")
	})
}

func TestBroadcastReachesEveryRunningServiceOnce(t *testing.T) {
	recs := map[string]*recorder{}
	var svcs []bus.Service
	for _, name := range []string{"a", "b", "c", "d"} {
		recs[name] = &recorder{}
		svcs = append(svcs, bus.Service{Name: name, Internal: name == "a",
			Actions: bus.Actions{"Ping": recs[name].action("ping"), bus.Process: recs[name].action("p")}})
	}
	other := &recorder{}
	svcs = append(svcs, bus.Service{Name: "noping", Actions: bus.Actions{bus.Process: other.action("p")}})
	b := newBus(t, bus.Options{}, svcs...)
	require.NoError(t, b.StopService(t.Context(), "d"))
	require.NoError(t, b.Submit(t.Context(), bus.Broadcast, "Ping", map[string]any{"x": 1}))
	stop(t, b)
	for _, name := range []string{"a", "b", "c"} {
		assert.Len(t, recs[name].all(), 1, "service %s", name)
		assert.Equal(t, 1, recs[name].all()[0]["x"])
	}
	assert.Empty(t, recs["d"].all(), "a stopped service gets nothing")
	assert.Empty(t, other.all(), "a service without the action gets nothing")
}

func TestRequestReply(t *testing.T) {
	double := flow.Func("double", func(ctx context.Context, in struct{ N float64 }) (struct{ Twice float64 }, error) {
		return struct{ Twice float64 }{in.N * 2}, nil
	})
	reject := flow.Step("reject", func(ctx context.Context, c *fc.Context) error {
		return errors.Stop("no email address")
	})
	b := newBus(t, bus.Options{}, bus.Service{Name: "calc", Actions: bus.Actions{"Double": double, "Reject": reject}})
	defer stop(t, b)

	out, err := b.Request(t.Context(), "calc", "Double", map[string]any{"n": 21.0})
	require.NoError(t, err)
	assert.Equal(t, 42.0, out["twice"])
	assert.NotContains(t, out, "meta")

	_, err = b.Request(t.Context(), "calc", "Reject", nil)
	require.Error(t, err)
	assert.Equal(t, errors.KindStop, errors.KindOf(err))
	se, ok := errors.AsType[*errors.StopError](err)
	require.True(t, ok)
	assert.Equal(t, "no email address", se.Reason)
	assert.Contains(t, err.Error(), `"calc" action "Reject"`)
}

func TestRequestTimesOutAndCancels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var ran []string
		var mu sync.Mutex
		act := flow.Step("wait", func(ctx context.Context, c *fc.Context) error {
			name, _ := c.Get("name")
			mu.Lock()
			ran = append(ran, name.(string))
			mu.Unlock()
			select {
			case <-gate:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		b := newBus(t, bus.Options{RequestTimeout: 5 * time.Second}, bus.Service{Name: "svc", Actions: bus.Actions{bus.Process: act}})

		// no deadline: Options.RequestTimeout applies; the running action is canceled
		start := time.Now()
		_, err := b.Request(context.Background(), "svc", bus.Process, map[string]any{"name": "first"})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 5*time.Second, time.Since(start))

		// canceled while queued behind a running message: it never runs
		require.NoError(t, b.Submit(t.Context(), "svc", bus.Process, map[string]any{"name": "blocker"}))
		synctest.Wait()
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := b.Request(ctx, "svc", bus.Process, map[string]any{"name": "queued"})
			errc <- err
		}()
		synctest.Wait()
		cancel()
		require.ErrorIs(t, <-errc, context.Canceled)
		close(gate)
		out, err := b.Request(t.Context(), "svc", bus.Process, map[string]any{"name": "last"})
		require.NoError(t, err)
		assert.Equal(t, "last", out["name"])
		stop(t, b)
		assert.Equal(t, []string{"first", "blocker", "last"}, ran)
	})
}

func TestUnknownDestinationAndAction(t *testing.T) {
	rec := &recorder{}
	b := newBus(t, bus.Options{}, bus.Service{Name: "svc", Actions: bus.Actions{bus.Process: rec.action("p")}})
	defer stop(t, b)
	err := b.Submit(t.Context(), "nope", bus.Process, nil)
	require.ErrorIs(t, err, bus.ErrUnknownDestination)
	assert.Contains(t, err.Error(), `"nope"`)
	assert.Contains(t, err.Error(), "expected svc")
	err = b.Submit(t.Context(), "svc", "SendEmail", nil)
	require.ErrorIs(t, err, bus.ErrUnknownAction)
	assert.Contains(t, err.Error(), "the service has Process")
	_, err = b.Request(t.Context(), "nope", bus.Process, nil)
	require.ErrorIs(t, err, bus.ErrUnknownDestination)
	_, err = b.Request(t.Context(), bus.Broadcast, bus.Process, nil)
	require.Error(t, err)
}

func TestStoppedServiceRefusesMessages(t *testing.T) {
	rec := &recorder{}
	b := newBus(t, bus.Options{}, bus.Service{Name: "svc", Actions: bus.Actions{bus.Process: rec.action("p")}})
	defer stop(t, b)
	require.NoError(t, b.StopService(t.Context(), "svc"))
	err := b.Submit(t.Context(), "svc", bus.Process, nil)
	require.ErrorIs(t, err, bus.ErrStopped)
	_, err = b.Request(t.Context(), "svc", bus.Process, nil)
	require.ErrorIs(t, err, bus.ErrStopped)
	require.NoError(t, b.StartService(t.Context(), "svc"))
	_, err = b.Request(t.Context(), "svc", bus.Process, map[string]any{"k": 1})
	require.NoError(t, err)
	assert.Len(t, rec.all(), 1, "the refused messages never ran")
}

func TestAddRefusesBadServices(t *testing.T) {
	b := bus.New(bus.Options{Logger: quiet})
	rec := &recorder{}
	for _, s := range []bus.Service{
		{Name: "", Actions: bus.Actions{bus.Process: rec.action("p")}},
		{Name: "*", Actions: bus.Actions{bus.Process: rec.action("p")}},
		{Name: "x"},
		{Name: "x", Actions: bus.Actions{bus.Process: nil}},
		{Name: "x", Mailbox: -1, Actions: bus.Actions{bus.Process: rec.action("p")}},
	} {
		assert.Error(t, b.Add(s), "%+v", s)
	}
	require.NoError(t, b.Add(bus.Service{Name: "x", Actions: bus.Actions{bus.Process: rec.action("p")}}))
	assert.ErrorContains(t, b.Add(bus.Service{Name: "x", Actions: bus.Actions{bus.Process: rec.action("p")}}), "declared twice")
}

func TestStateUpdateDisablesAndEnablesCustomServices(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	com, sensor, logger2 := &recorder{}, &recorder{}, &recorder{}
	debugLog := flow.Step("debug", func(ctx context.Context, c *fc.Context) error {
		bus.From(ctx).Debug("reading seen")
		return nil
	})
	b := newBus(t, bus.Options{Logger: logger},
		bus.Service{Name: "com", Internal: true, Actions: bus.Actions{bus.Process: com.action("p"), bus.StateUpdate: com.action("s")}},
		bus.Service{Name: "logger", Internal: true, Actions: bus.Actions{bus.StateUpdate: logger2.action("s")}},
		bus.Service{Name: "sensor", Actions: bus.Actions{bus.Process: debugLog, bus.StateUpdate: sensor.action("s")}},
	)
	defer stop(t, b)

	require.NoError(t, b.SetState(t.Context(), bus.State{Enabled: false, Values: map[string]any{"region": "eu"}}))
	assert.False(t, b.State().Enabled)
	err := b.Submit(t.Context(), "sensor", bus.Process, nil)
	require.ErrorIs(t, err, bus.ErrDisabled)
	assert.Contains(t, err.Error(), "enabled: false")
	require.NoError(t, b.Submit(t.Context(), "com", bus.Process, map[string]any{"t": 1}), "internal services keep running")
	assert.ErrorIs(t, b.StopService(t.Context(), "com"), bus.ErrInternal)
	assert.ErrorIs(t, b.StartService(t.Context(), "sensor"), bus.ErrDisabled)
	// the disabled service ran its StateUpdate before stopping
	require.Len(t, sensor.all(), 1)
	assert.Equal(t, false, sensor.all()[0]["enabled"])
	assert.Equal(t, "eu", sensor.all()[0]["region"])
	st := statusOf(b, "sensor")
	assert.Equal(t, bus.StateStopped, st.State)
	assert.True(t, st.Disabled)

	require.NoError(t, b.SetState(t.Context(), bus.State{Enabled: true, Debug: true}))
	_, err = b.Request(t.Context(), "sensor", bus.Process, nil)
	require.NoError(t, err, "enabled again")
	_, err = b.Request(t.Context(), "sensor", bus.StateUpdate, map[string]any{"probe": true})
	require.NoError(t, err)
	require.Len(t, sensor.all(), 3)
	assert.Equal(t, true, sensor.all()[1]["debug"], "re-enabled services get the state update too")
	assert.Contains(t, logs.String(), "reading seen", "debug: the services log at debug level")
	_, err = b.Request(t.Context(), "logger", bus.StateUpdate, map[string]any{"probe": true})
	require.NoError(t, err)
	_, err = b.Request(t.Context(), "com", bus.Process, map[string]any{"probe": true})
	require.NoError(t, err)
	states := 0
	for _, m := range com.all() {
		if _, ok := m["enabled"]; ok {
			states++
		}
	}
	assert.Equal(t, 2, states, "the internal service got both state updates")
	assert.Len(t, logger2.all(), 3, "two updates and the probe")

	require.NoError(t, b.SetState(t.Context(), bus.State{Enabled: true, Debug: false}))
	before := len(logs.String())
	_, err = b.Request(t.Context(), "sensor", bus.Process, nil)
	require.NoError(t, err)
	assert.NotContains(t, logs.String()[before:], "reading seen", "debug off again")
}

func statusOf(b *bus.Bus, name string) bus.ServiceStatus {
	for _, st := range b.Status() {
		if st.Name == name {
			return st
		}
	}
	return bus.ServiceStatus{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

func TestStopLeavesSubmitsForTheNextStartAndFailsWaitingRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		rec := &recorder{}
		act := flow.Step("slow", func(ctx context.Context, c *fc.Context) error {
			if v, _ := c.Get("block"); v == true {
				select {
				case <-gate:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return rec.action("r").Call(ctx, c)
		})
		b := newBus(t, bus.Options{}, bus.Service{Name: "svc", Actions: bus.Actions{bus.Process: act}})
		require.NoError(t, b.Submit(t.Context(), "svc", bus.Process, map[string]any{"block": true, "n": 1}))
		require.NoError(t, b.Submit(t.Context(), "svc", bus.Process, map[string]any{"n": 2}))
		errc := make(chan error, 1)
		go func() {
			_, err := b.Request(context.Background(), "svc", bus.Process, map[string]any{"n": 3})
			errc <- err
		}()
		synctest.Wait()
		ctx, cancel := context.WithCancel(t.Context())
		cancel() // no time to drain
		require.ErrorIs(t, b.StopService(ctx, "svc"), context.Canceled)
		err := <-errc
		require.ErrorIs(t, err, bus.ErrStopped, "a waiting request is answered")
		assert.Equal(t, int64(2), statusOf(b, "svc").Pending, "the canceled run and the submit are kept")

		close(gate)
		require.NoError(t, b.StartService(t.Context(), "svc"))
		stop(t, b)
		var ns []any
		for _, m := range rec.all() {
			ns = append(ns, m["n"])
		}
		assert.Equal(t, []any{1, 2}, ns, "the kept messages ran first, in order; the request did not run")
	})
}

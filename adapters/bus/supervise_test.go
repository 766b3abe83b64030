package bus_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/bus"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// lifecycle is an action with Init and Close, counting them.
type lifecycle struct {
	flow.Service
	inits, closes atomic.Int32
}

func (l *lifecycle) Init(ctx context.Context) error  { l.inits.Add(1); return nil }
func (l *lifecycle) Close(ctx context.Context) error { l.closes.Add(1); return nil }

func TestPanicRestartsTheServiceWithBackoffAndKeepsTheMailbox(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var ran []string
		var restartedAt []time.Duration
		start := time.Now()
		act := &lifecycle{Service: flow.Step("maybe-panic", func(ctx context.Context, c *fc.Context) error {
			name, _ := c.Get("name")
			mu.Lock()
			ran = append(ran, name.(string))
			mu.Unlock()
			if name == "boom" {
				panic("sensor exploded")
			}
			return nil
		})}
		var starts atomic.Int32
		onStart := func(ctx context.Context, self *bus.Self) error {
			if starts.Add(1) > 1 {
				mu.Lock()
				restartedAt = append(restartedAt, time.Since(start))
				mu.Unlock()
			}
			return nil
		}
		b := newBus(t, bus.Options{Restart: &errors.Policy{Initial: time.Second, Multiplier: 2, MaxInterval: time.Minute}},
			bus.Service{Name: "svc", Actions: bus.Actions{bus.Process: act}, OnStart: onStart})
		errc := make(chan error, 1)
		go func() {
			_, err := b.Request(context.Background(), "svc", bus.Process, map[string]any{"name": "boom"})
			errc <- err
		}()
		synctest.Wait()
		// queued while the service restarts
		require.NoError(t, b.Submit(t.Context(), "svc", bus.Process, map[string]any{"name": "boom"}))
		require.NoError(t, b.Submit(t.Context(), "svc", bus.Process, map[string]any{"name": "after"}))
		err := <-errc
		require.Error(t, err)
		assert.Equal(t, errors.KindPanic, errors.KindOf(err))
		pe, ok := errors.AsType[*errors.PanicError](err)
		require.True(t, ok)
		assert.Equal(t, "sensor exploded", pe.Value)

		out, err := b.Request(t.Context(), "svc", bus.Process, map[string]any{"name": "last"})
		require.NoError(t, err)
		assert.Equal(t, "last", out["name"])
		assert.Equal(t, []string{"boom", "boom", "after", "last"}, ran, "the mailbox was kept across restarts")
		assert.Equal(t, []time.Duration{time.Second, 3 * time.Second}, restartedAt, "backoff grows while crashes follow each other: 1s, then 2s more")
		st := b.Status()[0]
		assert.Equal(t, int64(2), st.Restarts)
		assert.Equal(t, int64(2), st.Panics)
		assert.Equal(t, int64(2), st.Failed)
		assert.Contains(t, st.LastError, "sensor exploded")
		assert.Equal(t, int32(3), act.inits.Load(), "actions initialised at start and at each restart")
		assert.Equal(t, int32(2), act.closes.Load())
		stop(t, b)
		assert.Equal(t, int32(3), act.closes.Load())
	})
}

func TestFatalRestartsAndRunsTheMessageAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		act := &lifecycle{Service: flow.Step("db", func(ctx context.Context, c *fc.Context) error {
			if calls.Add(1) <= 2 {
				return errors.Fatal(errors.New("connection lost"))
			}
			c.Set("saved", true)
			return nil
		})}
		b := newBus(t, bus.Options{Restart: &errors.Policy{Initial: 100 * time.Millisecond, MaxInterval: time.Second}},
			bus.Service{Name: "db", Actions: bus.Actions{bus.Process: act}})
		start := time.Now()
		out, err := b.Request(t.Context(), "db", bus.Process, nil)
		require.NoError(t, err)
		assert.Equal(t, true, out["saved"])
		assert.Equal(t, 300*time.Millisecond, time.Since(start), "waits 100ms then 200ms")
		assert.Equal(t, int64(2), b.Status()[0].Restarts)
		assert.Equal(t, int32(3), act.inits.Load())
		stop(t, b)
	})
}

func TestFatalGivesUpAfterMaxRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		act := flow.Step("db", func(ctx context.Context, c *fc.Context) error {
			return errors.Fatal(errors.New("connection lost"))
		})
		b := newBus(t, bus.Options{Restart: &errors.Policy{Initial: time.Millisecond, MaxAttempts: 3}},
			bus.Service{Name: "db", Actions: bus.Actions{bus.Process: act}})
		_, err := b.Request(t.Context(), "db", bus.Process, nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "gave up after 3 restarts")
		assert.Equal(t, errors.KindFatal, errors.KindOf(err))
		stop(t, b)
	})
}

func TestStopDuringRestartBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		act := flow.Step("boom", func(ctx context.Context, c *fc.Context) error { panic("x") })
		b := newBus(t, bus.Options{Restart: &errors.Policy{Initial: time.Hour}},
			bus.Service{Name: "svc", Actions: bus.Actions{bus.Process: act}})
		require.NoError(t, b.Submit(t.Context(), "svc", bus.Process, nil))
		synctest.Wait()
		assert.Equal(t, bus.StateRestarting, b.Status()[0].State)
		start := time.Now()
		stop(t, b)
		assert.Zero(t, time.Since(start), "a stop does not wait for the backoff")
	})
}

func TestSelfSubmitsFromOnStartWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		com := &recorder{}
		sensor := bus.Service{
			Name:    "sensor",
			Actions: bus.Actions{bus.Process: flow.Step("noop", func(ctx context.Context, c *fc.Context) error { return nil })},
			OnStart: func(ctx context.Context, self *bus.Self) error {
				self.Go(func(ctx context.Context) {
					tick := time.NewTicker(time.Second)
					defer tick.Stop()
					for n := 1; ; n++ {
						select {
						case <-ctx.Done():
							return
						case <-tick.C:
							if err := self.SubmitMessage(ctx, map[string]any{"temperature": 20 + n}); err != nil {
								self.Logger().Error("submit", "error", err)
							}
						}
					}
				})
				return nil
			},
		}
		b := newBus(t, bus.Options{}, bus.Service{Name: "com", Internal: true, Actions: bus.Actions{bus.Process: com.action("hub")}}, sensor)
		time.Sleep(3500 * time.Millisecond)
		require.NoError(t, b.StopService(t.Context(), "sensor"))
		time.Sleep(5 * time.Second)
		stop(t, b)
		got := com.all()
		require.Len(t, got, 3, "one reading a second, none after the stop")
		for i, m := range got {
			assert.Equal(t, 21+i, m["temperature"])
			assert.Equal(t, "sensor", m["meta"].(map[string]any)["from"])
			assert.Equal(t, "com", m["meta"].(map[string]any)["destination"])
		}
	})
}

func TestSubmitToItselfFromARunFailsWhenFull(t *testing.T) {
	var self atomic.Int32
	act := flow.Step("loop", func(ctx context.Context, c *fc.Context) error {
		if _, again := c.Get("again"); again {
			return nil
		}
		var err error
		for range 3 {
			if err = bus.From(ctx).Submit(ctx, "svc", bus.Process, map[string]any{"again": true}); err != nil {
				self.Add(1)
			}
		}
		return nil
	})
	b := newBus(t, bus.Options{}, bus.Service{Name: "svc", Mailbox: 1, Actions: bus.Actions{bus.Process: act}})
	_, err := b.Request(t.Context(), "svc", bus.Process, nil)
	require.NoError(t, err)
	stop(t, b)
	assert.Equal(t, int32(2), self.Load(), "no deadlock: the second and third submit find the mailbox full")
}

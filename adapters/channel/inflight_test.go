package channel_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// gated is a flow whose runs on a payload with "hold" wait for release,
// counting how many wait at once.
type gated struct {
	release        chan struct{}
	now, most, all atomic.Int32
}

func newGated() *gated { return &gated{release: make(chan struct{})} }

func (g *gated) flow() *flow.Flow {
	return flow.New("f", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
		g.all.Add(1)
		if c.View()["hold"] == true {
			n := g.now.Add(1)
			for {
				m := g.most.Load()
				if n <= m || g.most.CompareAndSwap(m, n) {
					break
				}
			}
			defer g.now.Add(-1)
			select {
			case <-g.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		c.Set("ok", true)
		return nil
	})).MustBuild()
}

func TestMaxInFlightLeavesExcessBusy(t *testing.T) {
	g := newGated()
	st := store.NewMemory()
	ch, err := channel.New(channel.Config{Name: "c", Flow: g.flow(), Store: st, MaxInFlight: 2})
	require.NoError(t, err)
	running(t, ch)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			assert.Equal(t, store.Done, ch.Handle(t.Context(), jsonMsg(t, map[string]any{"hold": true})).State)
		})
	}
	require.Eventually(t, func() bool { return g.now.Load() == 2 }, waitLong, tick)

	m := jsonMsg(t, map[string]any{})
	res := ch.Handle(t.Context(), m)
	assert.Equal(t, channel.Leave, res.Settle)
	assert.ErrorIs(t, res.Err, channel.ErrBusy)
	assert.Equal(t, errors.KindRetry, res.Outcome)
	assert.Equal(t, channel.BusyRetryAfter, res.RetryAfter)
	_, err = st.Get(t.Context(), m.ID)
	assert.ErrorIs(t, err, store.ErrNotFound, "a busy delivery is not recorded")

	// A source that cannot redeliver soon waits for a slot instead.
	waited := make(chan channel.Result)
	go func() { waited <- ch.Handle(channel.WaitWhenBusy(t.Context()), m) }()
	close(g.release)
	assert.Equal(t, store.Done, (<-waited).State)
	wg.Wait()
	assert.Equal(t, int32(2), g.most.Load())
}

func TestRecoveryRunsInBackgroundWhileNewMessagesAreServed(t *testing.T) {
	g := newGated()
	st := store.NewMemory()
	const owed = 40
	for range owed {
		require.NoError(t, st.Begin(t.Context(), jsonMsg(t, map[string]any{"hold": true})))
	}
	ch, err := channel.New(channel.Config{Name: "c", Flow: g.flow(), Store: st, MaxInFlight: 8})
	require.NoError(t, err)
	require.NoError(t, ch.Start(t.Context()), "Start does not wait for the owed messages")
	require.Eventually(t, func() bool { return g.now.Load() == 4 }, waitLong, tick, "half of max_in_flight recovers")
	assert.Equal(t, int64(owed), ch.Status().Recovering, "the 4 running count until they end")
	assert.Equal(t, channel.StateRunning, ch.Status().State)

	for range 10 { // served at once, while recovery waits
		res := ch.Handle(t.Context(), jsonMsg(t, map[string]any{"new": true}))
		require.Equal(t, store.Done, res.State, "%v", res.Err)
	}
	close(g.release)
	require.Eventually(t, func() bool { return ch.Status().Recovering == 0 }, waitLong, tick)
	n, err := st.Count(t.Context(), store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, owed+10, n)
	assert.Equal(t, int32(4), g.most.Load())
	require.NoError(t, ch.Stop(t.Context()))
}

func TestStopDuringRecoveryLeavesTheRestOwed(t *testing.T) {
	g := newGated()
	st := store.NewMemory()
	for range 20 {
		require.NoError(t, st.Begin(t.Context(), jsonMsg(t, map[string]any{"hold": true})))
	}
	ch, err := channel.New(channel.Config{Name: "c", Flow: g.flow(), Store: st, MaxInFlight: 4})
	require.NoError(t, err)
	require.NoError(t, ch.Start(t.Context()))
	require.Eventually(t, func() bool { return g.now.Load() == 2 }, waitLong, tick)
	stopped := make(chan error)
	go func() { stopped <- ch.Stop(t.Context()) }()
	// Release the two running only once the stop is under way: released
	// earlier, recovery could run every owed message before Stop begins.
	require.Eventually(t, func() bool { return ch.Status().State == channel.StateStopping }, waitLong, tick)
	close(g.release) // the two running finish: a graceful stop drains them
	require.NoError(t, <-stopped)
	done, err := st.Count(t.Context(), store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	owedLeft, err := st.Count(t.Context(), store.Query{States: []store.State{store.Processing}})
	require.NoError(t, err)
	assert.Equal(t, 20, done+owedLeft)
	assert.Less(t, done, 20, "the rest stay owed for the next start")
}

package channel_test

import (
	"context"
	"math"
	"sync/atomic"
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

// crashed stores m as a previous process would leave it after n runs that
// each ended with the process.
func crashed(t *testing.T, st store.Store, m *message.Message, n int) {
	t.Helper()
	require.NoError(t, st.Begin(t.Context(), m))
	for range n - 1 {
		require.NoError(t, st.Transition(t.Context(), m.ID, store.Processing, store.Update{}))
	}
}

func countingFlow(runs *atomic.Int32) *flow.Flow {
	return flow.New("f", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
		runs.Add(1)
		c.Set("ok", true)
		return nil
	})).MustBuild()
}

func TestPoisonMessageIsSetAsideAfterCrashedRuns(t *testing.T) {
	st := store.NewMemory()
	poison := jsonMsg(t, map[string]any{"poison": true})
	twice := jsonMsg(t, map[string]any{"n": 2})
	crashed(t, st, poison, channel.DefaultMaxCrashes)
	crashed(t, st, twice, channel.DefaultMaxCrashes-1)
	var runs atomic.Int32
	ch, err := channel.New(channel.Config{Name: "c", Flow: countingFlow(&runs), Store: st})
	require.NoError(t, err)
	require.NoError(t, ch.Start(t.Context()))
	require.Eventually(t, func() bool { return ch.Status().Recovering == 0 }, waitLong, tick)
	defer func() { require.NoError(t, ch.Stop(t.Context())) }()

	rec, err := st.Get(t.Context(), poison.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Dead, rec.State, "set aside")
	assert.Equal(t, errors.KindFatal, rec.Outcome)
	assert.Equal(t, "gave up after 3 crashed runs", rec.Err)
	assert.True(t, channel.SetAside(rec))
	assert.Equal(t, 3, rec.Attempts, "not run again")

	rec, err = st.Get(t.Context(), twice.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Done, rec.State, "under the bound: run again")
	assert.Equal(t, int32(1), runs.Load())

	// A source delivering it again does not run it either.
	res := ch.Handle(t.Context(), poison)
	assert.Equal(t, channel.Fail, res.Settle)
	assert.Equal(t, store.Dead, res.State)
	assert.ErrorIs(t, res.Err, channel.ErrSetAside)
	assert.NotEmpty(t, res.ErrorID)
	assert.Equal(t, int32(1), runs.Load())

	// Replayed by hand, it runs.
	res, err = ch.Replay(t.Context(), poison.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Done, res.State)
	assert.Equal(t, int32(2), runs.Load())
}

func TestPoisonMessageDeliveredAgainIsSetAside(t *testing.T) {
	st := store.NewMemory()
	poison := jsonMsg(t, map[string]any{"poison": true})
	crashed(t, st, poison, 2)
	var runs atomic.Int32
	ch, err := channel.New(channel.Config{Name: "c", Flow: countingFlow(&runs), Store: st, MaxCrashes: 2})
	require.NoError(t, err)
	running(t, ch)
	res := ch.Handle(t.Context(), poison) // a client's retry, before any recovery
	assert.Equal(t, channel.Fail, res.Settle)
	assert.ErrorIs(t, res.Err, channel.ErrSetAside)
	assert.Zero(t, runs.Load())
	rec, err := st.Get(t.Context(), poison.ID)
	require.NoError(t, err)
	assert.Equal(t, "gave up after 2 crashed runs", rec.Err)

	// Negative: never set aside.
	other := jsonMsg(t, map[string]any{})
	crashed(t, st, other, 10)
	ch, err = channel.New(channel.Config{Name: "c", Flow: countingFlow(&runs), Store: st, MaxCrashes: -1})
	require.NoError(t, err)
	running(t, ch)
	res = ch.Handle(t.Context(), other)
	assert.Equal(t, store.Done, res.State)
}

func TestUnstorableResultEndsInError(t *testing.T) {
	for _, kind := range []string{"ok", "stop", "nan"} {
		t.Run(kind, func(t *testing.T) {
			st := store.NewMemory()
			f := flow.New("f", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
				c.Set("total", 1e308*float64(c.View()["x"].(float64)))
				switch kind {
				case "stop":
					return errors.Stop("no")
				case "nan":
					c.Set("total", math.NaN())
				}
				return nil
			})).MustBuild()
			ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st})
			require.NoError(t, err)
			running(t, ch)
			m := jsonMsg(t, map[string]any{"x": 10})
			res := ch.Handle(t.Context(), m)
			assert.Equal(t, channel.Fail, res.Settle)
			assert.Equal(t, store.Error, res.State)
			assert.Equal(t, errors.KindFailed, res.Outcome)
			assert.NotEmpty(t, res.ErrorID)
			assert.ErrorIs(t, res.Err, store.ErrInvalid)
			rec, err := st.Get(t.Context(), m.ID)
			require.NoError(t, err)
			assert.Equal(t, store.Error, rec.State, "never left processing")
			assert.Equal(t, errors.KindFailed, rec.Outcome)
			assert.Contains(t, rec.Err, "the result cannot be stored")
			assert.Equal(t, int64(1), ch.Status().Outcomes["error"])
		})
	}
}

const (
	waitLong = 10 * time.Second
	tick     = 5 * time.Millisecond
)

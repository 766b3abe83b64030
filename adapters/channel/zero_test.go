package channel_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
)

// TestZeroChannel: a Channel that New did not make does nothing: every
// method that returns an error returns one wrapping ErrNotBuilt, Handle
// and Inject a Fail result carrying it, the others an empty value; none
// panics and none succeeds.
func TestZeroChannel(t *testing.T) {
	for name, ch := range map[string]*channel.Channel{"zero": {}, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			notBuilt := func(t *testing.T, err error) {
				t.Helper()
				require.ErrorIs(t, err, channel.ErrNotBuilt)
				assert.Contains(t, err.Error(), "make one with channel.New")
			}
			failed := func(t *testing.T, res channel.Result) {
				t.Helper()
				notBuilt(t, res.Err)
				assert.Equal(t, channel.Fail, res.Settle)
				assert.Equal(t, errors.KindFailed, res.Outcome)
				assert.Equal(t, store.Error, res.State)
			}
			ctx := t.Context()
			t.Run("Name", func(t *testing.T) { assert.Empty(t, ch.Name()) })
			t.Run("Store", func(t *testing.T) { assert.Nil(t, ch.Store()) })
			t.Run("Flow", func(t *testing.T) { assert.Nil(t, ch.Flow()) })
			t.Run("Start", func(t *testing.T) { notBuilt(t, ch.Start(ctx)) })
			t.Run("Stop", func(t *testing.T) { notBuilt(t, ch.Stop(ctx)) })
			t.Run("Status", func(t *testing.T) {
				st := ch.Status()
				assert.Equal(t, channel.StateStopped, st.State)
				assert.Zero(t, st.InFlight)
				assert.Empty(t, st.Outcomes)
				assert.Contains(t, st.LastError, "not built")
			})
			t.Run("Handle", func(t *testing.T) {
				m := jsonMsg(t, map[string]any{"a": 1})
				res := ch.Handle(ctx, m)
				failed(t, res)
				assert.Same(t, m, res.Message)
			})
			t.Run("Handle nil message", func(t *testing.T) { failed(t, ch.Handle(ctx, nil)) })
			t.Run("Inject", func(t *testing.T) { failed(t, ch.Inject(ctx, jsonMsg(t, map[string]any{"a": 1}), "validate")) })
			t.Run("Replay", func(t *testing.T) {
				res, err := ch.Replay(ctx, "some-id")
				notBuilt(t, err)
				assert.Equal(t, channel.Result{}, res)
			})
		})
	}
}

package channel_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/internal/jsonenc"
)

// TestCycleInResultEndsInError: a run whose context contains itself (a Go
// step put it there; expressions cannot, $env being a copy) ends the
// message in error with the reason: the encoder reports the cycle instead
// of overflowing the stack, and nothing is left processing.
func TestCycleInResultEndsInError(t *testing.T) {
	for _, tc := range []struct {
		name string
		step func(ctx context.Context, c *fc.Context) error
		want string
		is   error
	}{
		{"cycle", func(ctx context.Context, c *fc.Context) error {
			c.Set("audit", map[string]any{})
			c.View()["audit"].(map[string]any)["ctx"] = c.View()
			return nil
		}, `invalid argument: encode context: key "audit": key "ctx": key "audit": key "ctx": `, jsonenc.ErrCycle},
		{"stop with a cycle", func(ctx context.Context, c *fc.Context) error {
			c.Set("self", c.View())
			return errors.Stop("no")
		}, `value contains itself`, jsonenc.ErrCycle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := store.NewMemory()
			f := flow.New("f", flow.Step("s", tc.step)).MustBuild()
			ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st})
			require.NoError(t, err)
			running(t, ch)
			m := jsonMsg(t, map[string]any{"a": 1})
			res := ch.Handle(t.Context(), m)
			assert.Equal(t, channel.Fail, res.Settle)
			assert.Equal(t, store.Error, res.State)
			assert.NotEmpty(t, res.ErrorID)
			require.ErrorContains(t, res.Err, tc.want)
			assert.ErrorContains(t, res.Err, "result cannot be stored")
			if tc.is != nil {
				assert.ErrorIs(t, res.Err, tc.is)
			}
			rec, err := st.Get(t.Context(), m.ID)
			require.NoError(t, err)
			assert.Equal(t, store.Error, rec.State, "not left processing")
			assert.Contains(t, rec.Err, tc.want)
			assert.Equal(t, errors.KindFailed, rec.Outcome)
			owed, err := store.Recover(t.Context(), st)
			require.NoError(t, err)
			assert.Empty(t, owed, "nothing to run again on the next start")
			assert.Equal(t, map[string]int64{"done": 0, "rejected": 0, "error": 1, "left": 0, "duplicate": 0, "waiting": 0, "dropped": 0}, ch.Status().Outcomes)
		})
	}
}

package channel_test

import (
	"context"
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

// TestIDReusedWithAnotherRequest: a message whose ID is stored with
// another request hash is a Stop wrapping ErrIDReused, runs nothing and
// does not show the stored message; the same hash, or a message or a
// record without one, is answered from the store as before.
func TestIDReusedWithAnotherRequest(t *testing.T) {
	runs := 0
	f := flow.New("f", flow.Step("count", func(_ context.Context, c *fc.Context) error {
		runs++
		c.Set("secret", "first client's output")
		return nil
	})).MustBuild()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: store.NewMemory()})
	require.NoError(t, err)
	running(t, ch)
	ctx := context.Background()
	msg := func(id, hash string) *message.Message {
		m := message.New("application/json", []byte(`{}`), map[string]string{})
		m.ID = id
		if hash != "" {
			m.Meta[message.MetaRequestHash] = hash
		}
		return m
	}

	require.Equal(t, store.Done, ch.Handle(ctx, msg("a", "h1")).State)
	res := ch.Handle(ctx, msg("a", "h2"))
	assert.Equal(t, channel.Ack, res.Settle)
	assert.Equal(t, errors.KindStop, res.Outcome)
	assert.ErrorIs(t, res.Err, channel.ErrIDReused)
	assert.NotContains(t, res.Message.Context, "secret")

	for _, h := range []string{"h1", ""} {
		res = ch.Handle(ctx, msg("a", h))
		assert.NoError(t, res.Err, h)
		assert.Equal(t, "first client's output", res.Message.Context["secret"], h)
	}
	// A record stored without a hash (an older version) cannot be told
	// apart: answered from the store.
	require.Equal(t, store.Done, ch.Handle(ctx, msg("b", "")).State)
	res = ch.Handle(ctx, msg("b", "h3"))
	assert.NoError(t, res.Err)
	assert.Equal(t, 2, runs)
}

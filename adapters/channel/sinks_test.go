package channel_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
)

// listSink keeps what it is sent; fail makes Send fail.
type listSink struct {
	mu     sync.Mutex
	got    []*message.Message
	fail   error
	closed bool
}

func (s *listSink) Name() string { return "list" }

func (s *listSink) Send(ctx context.Context, m *message.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.got = append(s.got, m)
	return nil
}

func (s *listSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// TestSinks: the output of a run that succeeds goes to every sink before
// the outcome is recorded; a run that stops sends nothing; a sink that
// fails makes the message a retriable failure (Nack, state error, the
// sink's error); the channel closes its sinks when it stops.
func TestSinks(t *testing.T) {
	st := store.NewMemory()
	a, b := &listSink{}, &listSink{}
	ch, err := channel.New(channel.Config{Name: "orders", Flow: orderFlow(t), Store: st, Sinks: []channel.Sink{a, b}})
	require.NoError(t, err)
	require.NoError(t, ch.Start(t.Context()))

	m := jsonMsg(t, map[string]any{"kind": "ok"})
	res := ch.Handle(t.Context(), m)
	require.NoError(t, res.Err)
	assert.Equal(t, channel.Ack, res.Settle)
	for _, s := range []*listSink{a, b} {
		require.Len(t, s.got, 1)
		assert.Equal(t, m.ID, s.got[0].ID)
		assert.Equal(t, true, s.got[0].Context["valid"], "the run's output")
		assert.Equal(t, m.ID, s.got[0].Context["meta"].(map[string]any)["id"])
	}
	res = ch.Handle(t.Context(), jsonMsg(t, map[string]any{"kind": "stop"}))
	assert.Equal(t, errors.KindStop, res.Outcome)
	assert.Len(t, a.got, 1, "a rejected message is not sent on")

	b.fail = errors.New("broker down")
	m = jsonMsg(t, map[string]any{"kind": "ok"})
	res = ch.Handle(t.Context(), m)
	assert.Equal(t, channel.Nack, res.Settle)
	assert.Equal(t, errors.KindRetry, res.Outcome)
	assert.ErrorContains(t, res.Err, "sink list: broker down")
	rec, err := st.Get(t.Context(), m.ID)
	require.NoError(t, err)
	assert.Equal(t, store.Error, rec.State)
	assert.Contains(t, rec.Err, "sink list: broker down")

	b.fail = nil
	res = ch.Handle(t.Context(), m) // delivered again: sent to every sink again
	require.NoError(t, res.Err)
	assert.Len(t, a.got, 3)
	assert.Len(t, b.got, 2)

	require.NoError(t, ch.Stop(t.Context()))
	assert.True(t, a.closed)
	assert.True(t, b.closed)
}

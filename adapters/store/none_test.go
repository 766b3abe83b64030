package store_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
)

// TestNone: the null store's writes succeed and keep nothing.
func TestNone(t *testing.T) {
	s := store.None()
	assert.True(t, store.IsNone(s))
	assert.False(t, store.IsNone(store.NewMemory()))
	ctx := t.Context()
	m := message.New("application/json", []byte(`{"a":1}`), nil)
	require.NoError(t, s.Put(ctx, m))
	require.NoError(t, s.Begin(ctx, m), "the same ID again: nothing was kept to clash with")
	require.NoError(t, s.Transition(ctx, m.ID, store.Done, store.Update{}))
	require.NoError(t, s.Transition(ctx, "never-seen", store.Done, store.Update{}))
	require.ErrorIs(t, s.Transition(ctx, m.ID, "bogus", store.Update{}), store.ErrInvalid)
	require.ErrorIs(t, s.Put(ctx, &message.Message{}), store.ErrInvalid)
	_, err := s.Get(ctx, m.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	recs, err := s.Search(ctx, store.Query{})
	require.NoError(t, err)
	assert.Empty(t, recs)
	n, err := s.Count(ctx, store.Query{})
	require.NoError(t, err)
	assert.Zero(t, n)
	owed, err := store.Recover(ctx, s)
	require.NoError(t, err)
	assert.Empty(t, owed, "recovery has nothing to do")
	require.NoError(t, s.Close())
}

package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/message"
)

func TestMemoryMaxFinished(t *testing.T) {
	ctx := context.Background()
	s := NewMemory(WithMaxFinished(3))
	finish := func(id string) {
		require.NoError(t, s.Transition(ctx, id, Processing, Update{}))
		require.NoError(t, s.Transition(ctx, id, Done, Update{}))
	}
	put := func(i int) string {
		m := message.New("application/json", []byte(`{}`), nil)
		m.ID = fmt.Sprintf("m%d", i)
		require.NoError(t, s.Put(ctx, m))
		return m.ID
	}
	for i := range 4 {
		id := put(i)
		if i == 1 {
			continue // m1 stays owed: never dropped
		}
		finish(id)
	}
	finish("m0") // replayed: now the newest finished
	finish(put(4))
	finish(put(5))
	n, err := s.Count(ctx, Query{})
	require.NoError(t, err)
	assert.Equal(t, 4, n, "three finished plus the owed one")
	for _, id := range []string{"m0", "m1", "m4", "m5"} {
		_, err := s.Get(ctx, id)
		assert.NoError(t, err, id)
	}
	for _, id := range []string{"m2", "m3"} {
		_, err := s.Get(ctx, id)
		assert.ErrorIs(t, err, ErrNotFound, id)
	}
}

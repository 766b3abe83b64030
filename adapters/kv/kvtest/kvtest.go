// Package kvtest is the conformance suite of kv.Backend: every backend,
// yours included, runs it.
//
//	func TestMyBackend(t *testing.T) {
//		kvtest.Run(t, func(t *testing.T) kv.Backend { return newMyBackend(t) })
//	}
package kvtest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/kv"
)

// Run checks the contract of the backends open makes (a new, empty one
// per call; Run closes them): values by scope and key, replaced by a
// put, removed by a delete, scopes apart, concurrent use, and ErrClosed
// after Close.
func Run(t *testing.T, open func(t *testing.T) kv.Backend) {
	t.Run("PutGetDelete", func(t *testing.T) {
		b := open(t)
		defer b.Close()
		ctx := context.Background()
		_, found, err := b.Get(ctx, "c/n", "k")
		require.NoError(t, err)
		assert.False(t, found, "an empty backend has nothing")
		require.NoError(t, b.Put(ctx, "c/n", "k", []byte(`{"a":1}`)))
		v, found, err := b.Get(ctx, "c/n", "k")
		require.NoError(t, err)
		assert.True(t, found)
		assert.JSONEq(t, `{"a":1}`, string(v))
		require.NoError(t, b.Put(ctx, "c/n", "k", []byte(`2`)))
		v, _, err = b.Get(ctx, "c/n", "k")
		require.NoError(t, err)
		assert.Equal(t, "2", string(v), "a put replaces")
		require.NoError(t, b.Delete(ctx, "c/n", "k"))
		_, found, err = b.Get(ctx, "c/n", "k")
		require.NoError(t, err)
		assert.False(t, found, "deleted")
		require.NoError(t, b.Delete(ctx, "c/n", "k"), "deleting what is not there is no error")
	})
	t.Run("ScopesApart", func(t *testing.T) {
		b := open(t)
		defer b.Close()
		ctx := context.Background()
		require.NoError(t, b.Put(ctx, "a/n", "k", []byte(`"a"`)))
		require.NoError(t, b.Put(ctx, "b/n", "k", []byte(`"b"`)))
		require.NoError(t, b.Put(ctx, "a/m", "k", []byte(`"m"`)))
		for scope, want := range map[string]string{"a/n": `"a"`, "b/n": `"b"`, "a/m": `"m"`} {
			v, found, err := b.Get(ctx, scope, "k")
			require.NoError(t, err)
			assert.True(t, found, scope)
			assert.Equal(t, want, string(v), scope)
		}
		_, found, err := b.Get(ctx, "a/", "nk")
		require.NoError(t, err)
		assert.False(t, found, "a scope and key are not joined text")
	})
	t.Run("Concurrent", func(t *testing.T) {
		b := open(t)
		defer b.Close()
		ctx := context.Background()
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				for j := range 20 {
					k := fmt.Sprintf("k%d-%d", i, j)
					assert.NoError(t, b.Put(ctx, "s", k, []byte(`1`)))
					_, found, err := b.Get(ctx, "s", k)
					assert.NoError(t, err)
					assert.True(t, found)
				}
			})
		}
		wg.Wait()
	})
	t.Run("Closed", func(t *testing.T) {
		b := open(t)
		require.NoError(t, b.Close())
		assert.ErrorIs(t, b.Put(context.Background(), "s", "k", []byte(`1`)), kv.ErrClosed)
		_, _, err := b.Get(context.Background(), "s", "k")
		assert.ErrorIs(t, err, kv.ErrClosed)
	})
}

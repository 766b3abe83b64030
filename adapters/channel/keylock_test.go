package channel

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeyedLockFIFO(t *testing.T) {
	var k keyedLock
	ctx := context.Background()
	require.NoError(t, k.lock(ctx, "a"))
	require.NoError(t, k.lock(ctx, "b"), "another key is free")

	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			require.NoError(t, k.lock(ctx, "a"))
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			k.unlock("a")
		})
		// Wait until waiter i is queued, so the queue order is known.
		require.Eventually(t, func() bool {
			k.mu.Lock()
			defer k.mu.Unlock()
			return len(k.q["a"]) == i+1
		}, 5*time.Second, time.Millisecond)
	}
	k.unlock("a")
	wg.Wait()
	assert.Equal(t, []int{0, 1, 2, 3, 4}, order)
	k.unlock("b")
	assert.Empty(t, k.q, "no key is held")
}

func TestKeyedLockCancel(t *testing.T) {
	var k keyedLock
	require.NoError(t, k.lock(context.Background(), "a"))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- k.lock(ctx, "a") }()
	require.Eventually(t, func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return len(k.q["a"]) == 1
	}, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	k.unlock("a")
	assert.Empty(t, k.q, "the canceled waiter left the queue")

	// A waiter canceled as the key is handed to it passes the key on.
	for range 200 {
		require.NoError(t, k.lock(context.Background(), "a"))
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error)
		go func() { errc <- k.lock(ctx, "a") }()
		for {
			k.mu.Lock()
			n := len(k.q["a"])
			k.mu.Unlock()
			if n == 1 {
				break
			}
			time.Sleep(10 * time.Microsecond)
		}
		go cancel()
		k.unlock("a")
		if err := <-errc; err == nil {
			k.unlock("a")
		}
		free, stop := context.WithTimeout(context.Background(), 5*time.Second)
		require.NoError(t, k.lock(free, "a"), "the key is free again")
		stop()
		k.unlock("a")
		assert.Empty(t, k.q)
	}
}

package channel

import (
	"context"
	"slices"
	"sync"
)

// keyedLock serialises work per key, first come first served. A key is
// held while it is in the map; its slice queues the waiters, so taking a
// free key allocates nothing.
type keyedLock struct {
	mu sync.Mutex
	q  map[string][]chan struct{}
}

// lock blocks until the caller holds key, or ctx ends.
func (k *keyedLock) lock(ctx context.Context, key string) error {
	k.mu.Lock()
	if k.q == nil {
		k.q = map[string][]chan struct{}{}
	}
	q, held := k.q[key]
	if !held {
		k.q[key] = nil
		k.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	k.q[key] = append(q, ch)
	k.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		k.mu.Lock()
		q := k.q[key]
		i := slices.Index(q, ch)
		if i < 0 { // handed the key meanwhile: pass it on
			k.mu.Unlock()
			k.unlock(key)
			return ctx.Err()
		}
		k.q[key] = slices.Delete(q, i, i+1)
		k.mu.Unlock()
		return ctx.Err()
	}
}

// unlock releases key to the next waiter.
func (k *keyedLock) unlock(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	q := k.q[key]
	if len(q) == 0 {
		delete(k.q, key)
		return
	}
	k.q[key] = q[1:]
	close(q[0])
}

package channel

import (
	"context"
	"slices"
	"sync"
)

// keyedLock serialises work per key, first come first served.
type keyedLock struct {
	mu sync.Mutex
	q  map[string][]chan struct{} // head holds the lock; the rest wait
}

// lock blocks until the caller holds key, or ctx ends.
func (k *keyedLock) lock(ctx context.Context, key string) error {
	k.mu.Lock()
	if k.q == nil {
		k.q = map[string][]chan struct{}{}
	}
	ch := make(chan struct{})
	q := k.q[key]
	k.q[key] = append(q, ch)
	if len(q) == 0 {
		close(ch)
	}
	k.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		k.mu.Lock()
		q := k.q[key]
		i := slices.Index(q, ch)
		if i == 0 { // became the holder meanwhile: pass it on
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
	q := k.q[key][1:]
	if len(q) == 0 {
		delete(k.q, key)
		return
	}
	k.q[key] = q
	close(q[0])
}

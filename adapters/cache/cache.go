// Package cache is a key-value cache with expiry, in memory ([NewMemory])
// or in an SQLite file ([OpenSQLite]) that outlives restarts: the cache
// the fulfillment framework's transactions are given. Values are stored
// as JSON, so both backends return what [Cache.Get] decodes into the
// destination the caller gives, alike.
//
// The package registers a provider component named cache: a
// configuration's providers: section makes one, and a flow's [flow.Func]
// steps receive it in an input field of type [Cache] tagged `provide:""`
// (or `provide:"name"` with the name the configuration gives it):
//
//	providers:
//	  cache: {cache: {backend: sqlite, path: cache.db, ttl: 10m}}
//
// In Go, register it in a provide.Container yourself:
//
//	provide.Register[cache.Cache](c, func() (cache.Cache, error) {
//		return cache.OpenSQLite("cache.db", cache.Options{TTL: 10 * time.Minute})
//	})
//
// Importing the package links the pure-Go SQLite driver.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Cache stores values under keys until they expire. Implementations are
// safe for concurrent use.
type Cache interface {
	// Get decodes the value under key into dst (a pointer, as for
	// json.Unmarshal) and reports whether there was one that had not
	// expired.
	Get(ctx context.Context, key string, dst any) (found bool, err error)
	// Put stores v (encoded as JSON) under key for ttl: 0 uses the
	// cache's default (see [Options]), a negative ttl never expires.
	Put(ctx context.Context, key string, v any, ttl time.Duration) error
	// Delete removes the value under key, if any.
	Delete(ctx context.Context, key string) error
	// Close releases the cache's resources.
	Close() error
}

// Options configures a cache.
type Options struct {
	// TTL is how long a value put with ttl 0 lives (0: until deleted).
	TTL time.Duration
	// Now is the clock (nil: time.Now), for tests.
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// expiry returns when a value put now for ttl expires (zero: never).
func (o Options) expiry(ttl time.Duration) time.Time {
	if ttl == 0 {
		ttl = o.TTL
	}
	if ttl <= 0 {
		return time.Time{}
	}
	return o.now().Add(ttl)
}

// ErrClosed is returned (wrapped) by a use of a closed cache.
var ErrClosed = errors.New("cache closed")

// Remember returns the value under key, or, when there is none, calls fn,
// stores what it returns for ttl, and returns it. An error from fn is
// returned and nothing is stored.
func Remember[T any](ctx context.Context, c Cache, key string, ttl time.Duration, fn func(ctx context.Context) (T, error)) (T, error) {
	var v T
	found, err := c.Get(ctx, key, &v)
	if err != nil || found {
		return v, err
	}
	if v, err = fn(ctx); err != nil {
		return v, err
	}
	return v, c.Put(ctx, key, v, ttl)
}

// Memory is a [Cache] in memory. Expired values are dropped when read
// and when the cache is swept (every 1024 puts).
type Memory struct {
	opts   Options
	mu     sync.Mutex
	m      map[string]entry
	puts   int
	closed bool
}

type entry struct {
	data    []byte
	expires time.Time // zero: never
}

// NewMemory returns an empty cache in memory.
func NewMemory(opts Options) *Memory { return &Memory{opts: opts, m: map[string]entry{}} }

// Get implements [Cache].
func (c *Memory) Get(ctx context.Context, key string, dst any) (bool, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return false, fmt.Errorf("cache get %q: %w", key, ErrClosed)
	}
	e, ok := c.m[key]
	if ok && !e.expires.IsZero() && !c.opts.now().Before(e.expires) {
		delete(c.m, key)
		ok = false
	}
	c.mu.Unlock()
	if !ok {
		return false, nil
	}
	if err := json.Unmarshal(e.data, dst); err != nil {
		return false, fmt.Errorf("cache get %q: %w", key, err)
	}
	return true, nil
}

// Put implements [Cache].
func (c *Memory) Put(ctx context.Context, key string, v any, ttl time.Duration) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cache put %q: %w", key, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("cache put %q: %w", key, ErrClosed)
	}
	c.m[key] = entry{data: data, expires: c.opts.expiry(ttl)}
	if c.puts++; c.puts%1024 == 0 {
		now := c.opts.now()
		for k, e := range c.m {
			if !e.expires.IsZero() && !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
	}
	return nil
}

// Delete implements [Cache].
func (c *Memory) Delete(ctx context.Context, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("cache delete %q: %w", key, ErrClosed)
	}
	delete(c.m, key)
	return nil
}

// Close implements [Cache]: the values are dropped.
func (c *Memory) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed, c.m = true, nil
	return nil
}

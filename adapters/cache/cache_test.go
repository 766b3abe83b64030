package cache_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/cache"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/provide"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a fake clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type account struct {
	ID    string   `json:"id"`
	Seats int      `json:"seats"`
	Tags  []string `json:"tags"`
}

// backends opens each backend with the options.
func backends(t *testing.T) map[string]func(cache.Options) cache.Cache {
	return map[string]func(cache.Options) cache.Cache{
		"memory": func(o cache.Options) cache.Cache { return cache.NewMemory(o) },
		"sqlite": func(o cache.Options) cache.Cache {
			c, err := cache.OpenSQLite(filepath.Join(t.TempDir(), "cache.db"), o)
			require.NoError(t, err)
			return c
		},
	}
}

func TestCacheBackendsAgree(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			clk := &clock{now: time.Unix(1_700_000_000, 0)}
			c := open(cache.Options{TTL: time.Minute, Now: clk.Now})
			defer c.Close()
			ctx := t.Context()
			var got account
			found, err := c.Get(ctx, "a", &got)
			require.NoError(t, err)
			assert.False(t, found)

			want := account{ID: "acc-1", Seats: 3, Tags: []string{"x"}}
			require.NoError(t, c.Put(ctx, "a", want, 0))            // default ttl: a minute
			require.NoError(t, c.Put(ctx, "short", 1, time.Second)) // its own
			require.NoError(t, c.Put(ctx, "forever", "v", -1))      // never expires
			found, err = c.Get(ctx, "a", &got)
			require.NoError(t, err)
			assert.True(t, found)
			assert.Equal(t, want, got)

			clk.Add(time.Second)
			var n int
			found, err = c.Get(ctx, "short", &n)
			require.NoError(t, err)
			assert.False(t, found, "expired at its ttl")
			found, err = c.Get(ctx, "a", &got)
			require.NoError(t, err)
			assert.True(t, found)

			clk.Add(time.Hour)
			found, err = c.Get(ctx, "a", &got)
			require.NoError(t, err)
			assert.False(t, found, "expired at the default ttl")
			var s string
			found, err = c.Get(ctx, "forever", &s)
			require.NoError(t, err)
			assert.True(t, found)
			assert.Equal(t, "v", s)

			require.NoError(t, c.Delete(ctx, "forever"))
			found, err = c.Get(ctx, "forever", &s)
			require.NoError(t, err)
			assert.False(t, found)

			assert.Error(t, c.Put(ctx, "bad", func() {}, 0), "not JSON")
			require.NoError(t, c.Put(ctx, "str", "text", 0))
			found, err = c.Get(ctx, "str", &n)
			assert.Error(t, err, "decoding into the wrong type")
			assert.False(t, found)

			require.NoError(t, c.Close())
			_, err = c.Get(ctx, "a", &got)
			assert.ErrorIs(t, err, cache.ErrClosed)
			assert.ErrorIs(t, c.Put(ctx, "a", 1, 0), cache.ErrClosed)
		})
	}
}

func TestRemember(t *testing.T) {
	c := cache.NewMemory(cache.Options{})
	calls := 0
	load := func(ctx context.Context) (account, error) {
		calls++
		return account{ID: "acc-1"}, nil
	}
	for range 3 {
		a, err := cache.Remember(t.Context(), c, "acc", 0, load)
		require.NoError(t, err)
		assert.Equal(t, "acc-1", a.ID)
	}
	assert.Equal(t, 1, calls)
	_, err := cache.Remember(t.Context(), c, "other", 0, func(ctx context.Context) (int, error) { return 0, errors.New("down") })
	assert.EqualError(t, err, "down")
	found, err := c.Get(t.Context(), "other", new(int))
	require.NoError(t, err)
	assert.False(t, found, "an error is not stored")
}

func TestSQLiteOutlivesRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	c, err := cache.OpenSQLite(path, cache.Options{Now: clk.Now})
	require.NoError(t, err)
	require.NoError(t, c.Put(t.Context(), "kept", 7, -1))
	require.NoError(t, c.Put(t.Context(), "gone", 8, time.Minute))
	require.NoError(t, c.Close())
	clk.Add(time.Hour)
	c, err = cache.OpenSQLite(path, cache.Options{Now: clk.Now})
	require.NoError(t, err)
	defer c.Close()
	var n int
	found, err := c.Get(t.Context(), "kept", &n)
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, 7, n)
	found, err = c.Get(t.Context(), "gone", &n)
	require.NoError(t, err)
	assert.False(t, found)
}

func TestComponent(t *testing.T) {
	comp, ok := component.Default().Lookup(component.KindProvider, "cache")
	require.True(t, ok, "registered from init")
	dir := t.TempDir()
	v, err := comp.Build(component.Env{Name: "sessions", DataDir: dir}, cache.Spec{Backend: "sqlite", TTL: time.Minute})
	require.NoError(t, err)
	def, ok := v.(*provide.Definition)
	require.True(t, ok, "a provider definition, %T", v)
	c := provide.New()
	require.NoError(t, c.Add(def, provide.Named("sessions")))
	assert.NoFileExists(t, filepath.Join(dir, "sessions.cache.db"), "building opens nothing")
	cc, err := provide.Get[cache.Cache](t.Context(), c, "sessions")
	require.NoError(t, err)
	require.NoError(t, cc.Put(t.Context(), "k", "v", 0))
	assert.FileExists(t, filepath.Join(dir, "sessions.cache.db"))
	require.NoError(t, c.Close(t.Context()))
	assert.ErrorIs(t, cc.Put(t.Context(), "k", "v", 0), cache.ErrClosed, "closed with its container")

	v, err = comp.Build(component.Env{Name: "x"}, cache.Spec{})
	require.NoError(t, err)
	require.NoError(t, provide.New().Add(v.(*provide.Definition)))

	for _, bad := range []struct {
		spec  cache.Spec
		field string
	}{
		{cache.Spec{Backend: "redis"}, "backend"},
		{cache.Spec{Path: "x.db"}, "path"},
		{cache.Spec{TTL: -time.Second}, "ttl"},
	} {
		_, err := comp.Build(component.Env{Name: "x"}, bad.spec)
		var fe *component.FieldError
		require.ErrorAs(t, err, &fe)
		assert.Equal(t, bad.field, fe.Field)
	}
}

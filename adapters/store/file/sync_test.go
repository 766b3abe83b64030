package file

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/storetest"
)

func TestConformanceSyncFull(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := OpenOptions(t.TempDir(), Options{Sync: SyncFull})
		require.NoError(t, err)
		return s
	})
}

// blockingSync is a sync that waits for release, counting its runs.
type blockingSync struct {
	entered chan struct{}
	release chan error
}

func (b *blockingSync) run() error {
	b.entered <- struct{}{}
	return <-b.release
}

// startCallers calls g.sync(f) from n goroutines and returns their errors.
func startCallers(g *groupSync, f func() error, n int) (errs chan error) {
	errs = make(chan error, n)
	for range n {
		go func() { errs <- g.sync(f) }()
	}
	return errs
}

func TestGroupSyncShares(t *testing.T) {
	var g groupSync
	b := &blockingSync{entered: make(chan struct{}), release: make(chan error)}
	first := startCallers(&g, b.run, 1)
	<-b.entered // the first sync runs
	// Ten callers come while it runs: they need a sync that starts after
	// them, and share one.
	const n = 10
	errs := startCallers(&g, b.run, n)
	for !g.hasWaiting(n) {
		runtime.Gosched()
	}
	b.release <- nil
	require.NoError(t, <-first)
	<-b.entered // the shared sync runs
	b.release <- nil
	for range n {
		assert.NoError(t, <-errs)
	}
	assert.Equal(t, uint64(2), g.runs, "one sync for the first caller, one for the ten")
}

func TestGroupSyncFailureReachesEachCaller(t *testing.T) {
	var g groupSync
	b := &blockingSync{entered: make(chan struct{}), release: make(chan error)}
	first := startCallers(&g, b.run, 1)
	<-b.entered
	const n = 5
	errs := startCallers(&g, b.run, n)
	for !g.hasWaiting(n) {
		runtime.Gosched()
	}
	b.release <- nil
	require.NoError(t, <-first)
	<-b.entered
	boom := errors.New("input/output error")
	b.release <- boom
	for range n {
		assert.ErrorIs(t, <-errs, boom, "every caller of the failed sync is told")
	}
	// The next caller needs a sync of its own, which succeeds.
	assert.NoError(t, g.sync(func() error { return nil }))
}

func TestBeginWritesOnce(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	m := &message.Message{ID: "a", ContentType: "text/plain", Payload: []byte("x")}
	require.NoError(t, s.Begin(ctx, m))
	rec, err := s.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, store.Processing, rec.State)
	assert.Equal(t, 1, rec.Attempts)
	assert.Equal(t, rec.History[0].At, rec.History[1].At, "one write, one time")
	err = s.Begin(ctx, m)
	assert.ErrorIs(t, err, store.ErrExists)
	assert.ErrorContains(t, err, `store file: begin "a"`)
}

func TestSyncFullGroupsConcurrentWriters(t *testing.T) {
	s, err := OpenOptions(t.TempDir(), Options{Sync: SyncFull})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	const writers, each = 16, 10
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				assert.NoError(t, s.Begin(ctx, &message.Message{ID: id, Payload: []byte("x")}))
				assert.NoError(t, s.Transition(ctx, id, store.Done, store.Update{}))
			}
		})
	}
	wg.Wait()
	n, err := s.Count(ctx, store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, writers*each, n)
	assert.LessOrEqual(t, s.dirSync.runs, uint64(2*writers*each), "at most one directory sync per write")
	assert.Positive(t, s.dirSync.runs)
}

func TestSyncNormalSyncsNoDirectory(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Begin(context.Background(), &message.Message{ID: "a"}))
	assert.Zero(t, s.dirSync.runs)
}

func TestComponentOptions(t *testing.T) {
	reg, err := component.NewRegistry(Component)
	require.NoError(t, err)
	open := func(url string) (*Store, error) {
		ref, err := reg.ParseURL(component.KindStore, url)
		require.NoError(t, err)
		o, err := ref.Store(component.Env{})
		if err != nil {
			return nil, err
		}
		st, err := o()
		if err != nil {
			return nil, err
		}
		return st.(*Store), nil
	}
	dir := filepath.Join(t.TempDir(), "msgs")
	s, err := open("file:" + dir + "?sync=full")
	require.NoError(t, err)
	assert.Equal(t, SyncFull, s.opts.Sync)
	assert.Equal(t, dir, s.dir)
	require.NoError(t, s.Close())
	s, err = open("file:" + dir)
	require.NoError(t, err)
	assert.Equal(t, SyncNormal, s.opts.Sync)
	require.NoError(t, s.Close())
	_, err = open("file:" + dir + "?sync=sometimes")
	assert.ErrorIs(t, err, component.ErrInvalid)
	assert.ErrorContains(t, err, `sync "sometimes": want normal or full`)
	_, err = open("file:" + dir + "?fsync=1")
	assert.ErrorContains(t, err, `unknown option "fsync"`)
}

func TestKill(t *testing.T) {
	storetest.RunKill(t, storetest.KillOptions{},
		func(t *testing.T) string { return filepath.Join(t.TempDir(), "msgs") },
		func(t *testing.T, dir string) store.Store {
			s, err := Open(dir)
			require.NoError(t, err)
			return s
		})
}

func TestKillSyncFull(t *testing.T) {
	storetest.RunKill(t, storetest.KillOptions{Kills: 3},
		func(t *testing.T) string { return filepath.Join(t.TempDir(), "msgs") },
		func(t *testing.T, dir string) store.Store {
			s, err := OpenOptions(dir, Options{Sync: SyncFull})
			require.NoError(t, err)
			return s
		})
}

// hasWaiting reports whether n callers wait for a sync, for tests.
func (g *groupSync) hasWaiting(n int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiting >= n
}

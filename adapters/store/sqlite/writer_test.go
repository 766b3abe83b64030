package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/storetest"
)

// hold is a wait longer than any test: a batch commits only when full.
const hold = time.Hour

func TestGroupCommitConcurrentWriters(t *testing.T) {
	const writers, rounds = 32, 20
	// Batches commit only when full, so the count of transactions is
	// known: one for the 32 Begins of a round, one for its 32
	// Transitions.
	s, err := OpenOptions(filepath.Join(t.TempDir(), "s.db"), Options{MaxBatch: writers, MaxWait: hold})
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				id := fmt.Sprintf("w%d-%d", w, i)
				if !assert.NoError(t, s.Begin(ctx, newMessage(id, map[string]string{"w": fmt.Sprint(w)}))) {
					return
				}
				if !assert.NoError(t, s.Transition(ctx, id, store.Done, store.Update{Context: map[string]any{"i": float64(i)}})) {
					return
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(2*rounds), s.batches.Load(), "32 writes per transaction")
	n, err := s.Count(ctx, store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, writers*rounds, n)
	rec, err := s.Get(ctx, "w7-11")
	require.NoError(t, err)
	assert.Equal(t, []store.State{store.Pending, store.Processing, store.Done}, statesOf(rec))
	assert.Equal(t, map[string]any{"i": 11.0}, rec.Message.Context)
	assert.Equal(t, 1, rec.Attempts)
}

func TestGroupCommitUnderLoad(t *testing.T) {
	// The default: no waiting, batches are what queued meanwhile.
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer s.Close()
	ctx := context.Background()
	const writers, each = 16, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				assert.NoError(t, s.Put(ctx, newMessage(id, nil)))
				assert.NoError(t, s.Transition(ctx, id, store.Processing, store.Update{}))
				// Readers run beside the writer.
				_, err := s.Get(ctx, id)
				assert.NoError(t, err)
				assert.NoError(t, s.Transition(ctx, id, store.Rejected, store.Update{Reason: "r", Err: "stop: r"}))
			}
		})
	}
	wg.Wait()
	n, err := s.Count(ctx, store.Query{States: []store.State{store.Rejected}})
	require.NoError(t, err)
	assert.Equal(t, writers*each, n)
	assert.LessOrEqual(t, s.batches.Load(), int64(3*writers*each))
}

func statesOf(rec *store.Record) []store.State {
	var out []store.State
	for _, h := range rec.History {
		out = append(out, h.State)
	}
	return out
}

// batchOf runs f for each of ids at once and returns the errors by ID.
func batchOf(ids []string, f func(id string) error) map[string]error {
	var mu sync.Mutex
	errs := map[string]error{}
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			err := f(id)
			mu.Lock()
			errs[id] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return errs
}

func TestFailedBatchFailsEachCallerAndLosesNothingAcknowledged(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path)
	require.NoError(t, err)
	for i := range 20 {
		id := fmt.Sprintf("acked-%d", i)
		require.NoError(t, s.Begin(ctx, newMessage(id, nil)))
		if i%2 == 0 {
			require.NoError(t, s.Transition(ctx, id, store.Done, store.Update{}))
		}
	}
	// A message named poison-* makes its transaction fail when it
	// commits: a deferred foreign key that nothing satisfies, as a full
	// disk fails a commit whatever is in it.
	for _, q := range []string{
		`CREATE TABLE poison (ref TEXT REFERENCES messages (id) DEFERRABLE INITIALLY DEFERRED)`,
		`CREATE TRIGGER poison AFTER INSERT ON messages WHEN NEW.id LIKE 'poison-%' BEGIN INSERT INTO poison VALUES ('nowhere'); END`,
	} {
		_, err := s.w.Exec(q)
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())

	const size = 8
	s, err = OpenOptions(path, Options{MaxBatch: size, MaxWait: hold})
	require.NoError(t, err)
	defer s.Close()
	ids := []string{"poison-1"}
	for i := range size - 1 {
		ids = append(ids, fmt.Sprintf("fresh-%d", i))
	}
	errs := batchOf(ids, func(id string) error { return s.Begin(ctx, newMessage(id, nil)) })
	for _, id := range ids {
		err := errs[id]
		if assert.Error(t, err, id) {
			assert.Contains(t, err.Error(), "FOREIGN KEY constraint failed", id)
			assert.Contains(t, err.Error(), fmt.Sprintf(`begin %q: commit: `, id))
		}
		_, err = s.Get(ctx, id)
		assert.ErrorIs(t, err, store.ErrNotFound, "%s: the failed batch wrote nothing", id)
	}
	// Everything acknowledged before is there, as it was.
	for i := range 20 {
		rec, err := s.Get(ctx, fmt.Sprintf("acked-%d", i))
		require.NoError(t, err)
		want := store.Processing
		if i%2 == 0 {
			want = store.Done
		}
		assert.Equal(t, want, rec.State)
	}
	// The store goes on: the same writes, without the poison, commit.
	ids[0] = "fine-0"
	errs = batchOf(ids, func(id string) error { return s.Begin(ctx, newMessage(id, nil)) })
	for _, id := range ids {
		assert.NoError(t, errs[id], id)
	}
	n, err := s.Count(ctx, store.Query{})
	require.NoError(t, err)
	assert.Equal(t, 20+size, n)
}

func TestFailedWriteLeavesItsBatch(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Put(ctx, newMessage("dup", nil)))
	// A message named bad-* fails half-way: its row is inserted, its
	// history row is refused.
	_, err = s.w.Exec(`CREATE TRIGGER bad BEFORE INSERT ON history WHEN NEW.message_id LIKE 'bad-%' BEGIN SELECT RAISE(ABORT, 'no history for you'); END`)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	const size = 8
	s, err = OpenOptions(path, Options{MaxBatch: size, MaxWait: hold})
	require.NoError(t, err)
	defer s.Close()
	ids := []string{"bad-1", "dup", "bad-2", "ok-1", "ok-2", "ok-3", "ok-4", "ok-5"}
	errs := batchOf(ids, func(id string) error { return s.Begin(ctx, newMessage(id, nil)) })
	for _, id := range ids {
		switch id {
		case "bad-1", "bad-2":
			if assert.Error(t, errs[id]) {
				assert.Contains(t, errs[id].Error(), "no history for you")
			}
			_, err := s.Get(ctx, id)
			assert.ErrorIs(t, err, store.ErrNotFound, "%s: nothing of it is left", id)
		case "dup":
			assert.ErrorIs(t, errs[id], store.ErrExists)
		default:
			assert.NoError(t, errs[id], id)
			rec, err := s.Get(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, []store.State{store.Pending, store.Processing}, statesOf(rec))
		}
	}
	assert.Equal(t, int64(1), s.batches.Load(), "one batch, run again without each write that failed")
	// Transitions of unknown messages fail alone too.
	ids = []string{"ok-1", "nope", "ok-2", "ok-3", "ok-4", "ok-5", "none", "dup"}
	errs = batchOf(ids, func(id string) error { return s.Transition(ctx, id, store.Done, store.Update{}) })
	for _, id := range ids {
		if id == "nope" || id == "none" {
			assert.ErrorIs(t, errs[id], store.ErrNotFound)
			continue
		}
		assert.NoError(t, errs[id], id)
	}
}

func TestCanceledWhileQueuedIsNotWritten(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := OpenOptions(path, Options{MaxBatch: 1})
	require.NoError(t, err)
	defer s.Close()
	// Another connection holds the write lock: the writer's first batch
	// waits for it, and what comes next stays queued.
	other, err := sql.Open("sqlite", path+"?"+pragmas)
	require.NoError(t, err)
	defer other.Close()
	conn, err := other.Conn(ctx)
	require.NoError(t, err)
	defer conn.Close()
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	require.NoError(t, err)

	first := make(chan error)
	go func() { first <- s.Begin(ctx, newMessage("first", nil)) }()
	for s.batches.Load() == 0 {
		runtime.Gosched()
	}
	cctx, cancel := context.WithCancel(ctx)
	gaveUp := make(chan error)
	go func() { gaveUp <- s.Begin(cctx, newMessage("gave-up", nil)) }()
	for s.queued() == 0 {
		runtime.Gosched()
	}
	cancel()
	assert.ErrorIs(t, <-gaveUp, context.Canceled)

	_, err = conn.ExecContext(ctx, "ROLLBACK")
	require.NoError(t, err)
	assert.NoError(t, <-first)
	require.NoError(t, s.Begin(ctx, newMessage("next", nil)))
	_, err = s.Get(ctx, "gave-up")
	assert.ErrorIs(t, err, store.ErrNotFound, "a write given up in the queue is never run")
	assert.Equal(t, int64(2), s.batches.Load())

	// A done context fails before anything is queued.
	assert.ErrorIs(t, s.Put(cctx, newMessage("late", nil)), context.Canceled)
}

func TestSyncFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := OpenOptions(path, Options{Sync: SyncFull})
	require.NoError(t, err)
	assert.Equal(t, "2", pragma(t, s.w, "synchronous"), "FULL on the writing connection")
	require.NoError(t, s.Begin(context.Background(), newMessage("a", nil)))
	require.NoError(t, s.Close())

	_, err = OpenOptions(path, Options{Sync: "sometimes"})
	assert.ErrorIs(t, err, store.ErrInvalid)
	assert.ErrorContains(t, err, `sync "sometimes": want normal or full`)
	_, err = OpenOptions(path, Options{MaxBatch: -1})
	assert.ErrorIs(t, err, store.ErrInvalid)
}

func TestParseDSN(t *testing.T) {
	for dsn, want := range map[string]struct {
		path string
		o    Options
	}{
		"data/x.db":                         {"data/x.db", Options{}},
		"data/x.db?sync=full":               {"data/x.db", Options{Sync: SyncFull, MaxBatch: DefaultMaxBatch}},
		"x.db?sync=normal&batch=8&wait=2ms": {"x.db", Options{Sync: SyncNormal, MaxBatch: 8, MaxWait: 2 * time.Millisecond}},
		":memory:?sync=full":                {":memory:", Options{Sync: SyncFull, MaxBatch: DefaultMaxBatch}},
	} {
		path, o, err := ParseDSN(dsn)
		require.NoError(t, err, dsn)
		assert.Equal(t, want.path, path, dsn)
		assert.Equal(t, want.o, o, dsn)
	}
	for dsn, msg := range map[string]string{
		"x.db?sync=always": `sync "always": want normal or full`,
		"x.db?fsync=full":  `unknown option "fsync" (want sync, batch or wait)`,
		"x.db?batch=many":  `batch=many: not a number`,
		"x.db?wait=soon":   `wait=soon`,
		"x.db?batch=-2":    `negative batch size or wait`,
		"x.db?sync=%zz":    `options "sync=%zz"`,
	} {
		_, _, err := ParseDSN(dsn)
		assert.ErrorIs(t, err, store.ErrInvalid, dsn)
		assert.ErrorContains(t, err, msg, dsn)
	}
}

func TestKill(t *testing.T) {
	storetest.RunKill(t, storetest.KillOptions{},
		func(t *testing.T) string { return filepath.Join(t.TempDir(), "kill.db") },
		func(t *testing.T, path string) store.Store {
			s, err := Open(path)
			require.NoError(t, err)
			return s
		})
}

func TestKillSyncFull(t *testing.T) {
	storetest.RunKill(t, storetest.KillOptions{Kills: 3},
		func(t *testing.T) string { return filepath.Join(t.TempDir(), "kill.db") },
		func(t *testing.T, path string) store.Store {
			s, err := OpenOptions(path, Options{Sync: SyncFull})
			require.NoError(t, err)
			return s
		})
}

// queued returns how many writes wait in the queue.
func (s *Store) queued() int {
	s.wq.mu.Lock()
	defer s.wq.mu.Unlock()
	return len(s.wq.pending)
}

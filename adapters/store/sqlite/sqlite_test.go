package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "store.db"))
		require.NoError(t, err)
		return s
	})
}

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(":memory:")
		require.NoError(t, err)
		return s
	})
}

func TestDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	storetest.RunDurable(t, func(t *testing.T) store.Store {
		s, err := Open(path)
		require.NoError(t, err)
		return s
	})
}

// newMessage returns a small message with the given ID and meta.
func newMessage(id string, meta map[string]string) *message.Message {
	return &message.Message{ID: id, Time: time.Now().UTC(), ContentType: "text/plain", Payload: []byte("x"), Meta: meta}
}

func pragma(t *testing.T, db *sql.DB, name string) string {
	t.Helper()
	var v string
	require.NoError(t, db.QueryRow("PRAGMA "+name).Scan(&v))
	return v
}

func TestSettings(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	defer s.Close()
	for _, db := range []*sql.DB{s.w, s.r} {
		assert.Equal(t, "wal", pragma(t, db, "journal_mode"))
		assert.Equal(t, "1", pragma(t, db, "synchronous"), "NORMAL")
		assert.Equal(t, "10000", pragma(t, db, "busy_timeout"))
		assert.Equal(t, "1", pragma(t, db, "foreign_keys"))
		assert.Equal(t, fmt.Sprint(SchemaVersion), pragma(t, db, "user_version"))
	}
	assert.Equal(t, "1", pragma(t, s.r, "query_only"))
	assert.Equal(t, "0", pragma(t, s.w, "query_only"))

	// The indexes searches rely on exist.
	var n int
	require.NoError(t, s.w.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN ('messages_time', 'messages_state_time')`).Scan(&n))
	assert.Equal(t, 2, n)
}

func TestMemoryIsPrivate(t *testing.T) {
	ctx := context.Background()
	a, err := Open(":memory:")
	require.NoError(t, err)
	defer a.Close()
	b, err := Open(":memory:")
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, a.Put(ctx, newMessage("x", nil)))
	_, err = b.Get(ctx, "x")
	assert.ErrorIs(t, err, store.ErrNotFound)
	assert.Same(t, a.w, a.r)
}

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	// Opening again does not migrate again.
	s, err = Open(path)
	require.NoError(t, err)
	_, err = s.w.Exec(fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1))
	require.NoError(t, err)
	require.NoError(t, s.Close())

	_, err = Open(path)
	require.ErrorIs(t, err, ErrSchema)
	assert.Contains(t, err.Error(), "store sqlite: open")
}

func TestOpenErrors(t *testing.T) {
	_, err := Open("")
	assert.ErrorIs(t, err, store.ErrInvalid)

	_, err = Open(filepath.Join(t.TempDir(), "missing", "dir", "s.db"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "store sqlite: open")

	notDB := filepath.Join(t.TempDir(), "text.db")
	require.NoError(t, os.WriteFile(notDB, []byte("this is not a database, just some text that is long enough"), 0o600))
	_, err = Open(notDB)
	assert.Error(t, err)
}

func TestOddPaths(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"with space.db", "q?x=1.db", "hash#frag.db", "per%20cent.db"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			s, err := Open(path)
			require.NoError(t, err)
			require.NoError(t, s.Put(ctx, newMessage("a", nil)))
			require.NoError(t, s.Close())
			_, err = os.Stat(path)
			require.NoError(t, err, "the database is at the path given")

			s, err = Open(path)
			require.NoError(t, err)
			defer s.Close()
			_, err = s.Get(ctx, "a")
			assert.NoError(t, err)
		})
	}
}

func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	s, err := Open(":memory:")
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Put(ctx, newMessage("a", map[string]string{"k": "v"})))

	q := store.Query{States: []store.State{store.Pending}, Meta: map[string]string{"k": "v"}, Limit: 5}
	_, err = s.Search(ctx, q)
	require.NoError(t, err)
	n := len(s.cache)
	q.Meta["k"] = "other"
	q.Limit = 7
	_, err = s.Search(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, n, len(s.cache), "same shape, same statements")

	// Past the cache limit, queries still run.
	for i := range maxCachedStmts + 10 {
		q := store.Query{Meta: map[string]string{}}
		for j := range i%40 + 1 {
			q.Meta[fmt.Sprint("k", j)] = "v"
		}
		q.States = store.States[:i%len(store.States)+1]
		_, err := s.Search(ctx, q)
		require.NoError(t, err)
		_, err = s.Count(ctx, q)
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, len(s.cache), maxCachedStmts)
	recs, err := s.Search(ctx, store.Query{Meta: map[string]string{"k": "v"}})
	require.NoError(t, err)
	assert.Len(t, recs, 1)
}

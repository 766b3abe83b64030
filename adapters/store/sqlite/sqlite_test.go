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
	flowerrors "github.com/svcflow/svcflow/errors"
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
	assert.Contains(t, err.Error(), fmt.Sprintf("version %d, want at most %d", SchemaVersion+1, SchemaVersion))
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

// makeVersion1 makes at path a database as the version-1 schema and the
// statements of that version made it: a rejected message, a done one and
// a pending one.
func makeVersion1(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	for _, stmt := range migrations[0] {
		_, err := db.Exec(stmt)
		require.NoError(t, err)
	}
	const (
		insertMsg = `INSERT INTO messages (id, time, content_type, payload, meta, context, trace, state, err, attempts, updated)
			VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', '', 0, ?) ON CONFLICT (id) DO NOTHING`
		insertFirst = `INSERT INTO history (message_id, seq, state, at, err) VALUES (?, 1, 'pending', ?, '')`
		update      = `UPDATE messages SET state = ?, err = ?, attempts = attempts + ?, updated = ?,
			context = coalesce(?, context), trace = coalesce(?, trace) WHERE id = ?`
		insertHist = `INSERT INTO history (message_id, seq, state, at, err)
			VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM history WHERE message_id = ?1), ?2, ?3, ?4)`
	)
	exec := func(q string, args ...any) {
		t.Helper()
		_, err := db.Exec(q, args...)
		require.NoError(t, err)
	}
	at := "2025-01-02T03:04:06.000000000Z"
	for i, id := range []string{"rejected", "done", "pending"} {
		exec(insertMsg, id, fmt.Sprintf("2025-01-02T03:04:0%d.000000000Z", i), "application/json", []byte(`{"items":[]}`), `{"src":"http"}`, nil, nil, at)
		exec(insertFirst, id, at)
	}
	exec(update, "processing", "", 1, at, nil, nil, "rejected")
	exec(insertHist, "rejected", "processing", at, "")
	exec(update, "rejected", `flow "orders": step "check": stop: no items`, 0, at, `{"items":[]}`, `{"flow":"orders","outcome":"stop","reason":"no items"}`, "rejected")
	exec(insertHist, "rejected", "rejected", at, `flow "orders": step "check": stop: no items`)
	exec(update, "processing", "", 1, at, nil, nil, "done")
	exec(insertHist, "done", "processing", at, "")
	exec(update, "done", "", 0, at, `{"total":3}`, nil, "done")
	exec(insertHist, "done", "done", at, "")
	exec("PRAGMA user_version = 1")
}

// TestMigrateVersion1: a database of schema version 1 is migrated in
// place when opened; its records read back as they were, with a zero
// Outcome and an empty Reason, and take both on their next transition.
func TestMigrateVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	makeVersion1(t, path)

	s, err := Open(path)
	require.NoError(t, err)
	defer func() { assert.NoError(t, s.Close()) }()
	assert.Equal(t, "2", pragma(t, s.w, "user_version"))

	recs, err := s.Search(ctx, store.Query{})
	require.NoError(t, err)
	require.Equal(t, []string{"rejected", "done", "pending"}, []string{recs[0].Message.ID, recs[1].Message.ID, recs[2].Message.ID})
	rej := recs[0]
	assert.Equal(t, store.Rejected, rej.State)
	assert.Equal(t, `flow "orders": step "check": stop: no items`, rej.Err)
	assert.Equal(t, 1, rej.Attempts)
	assert.Equal(t, map[string]string{"src": "http"}, rej.Message.Meta)
	assert.Equal(t, []byte(`{"items":[]}`), rej.Message.Payload)
	assert.JSONEq(t, `{"flow":"orders","outcome":"stop","reason":"no items"}`, string(rej.Message.Trace))
	for _, r := range recs {
		assert.Zero(t, r.Outcome, r.Message.ID)
		assert.Empty(t, r.Reason, r.Message.ID)
		for _, h := range r.History {
			assert.Zero(t, h.Outcome, r.Message.ID)
			assert.Empty(t, h.Reason, r.Message.ID)
		}
	}
	assert.Equal(t, []store.State{store.Pending, store.Processing, store.Rejected}, []store.State{rej.History[0].State, rej.History[1].State, rej.History[2].State})
	got, err := s.Get(ctx, "rejected")
	require.NoError(t, err)
	assert.Equal(t, rej, got)
	n, err := s.Count(ctx, store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	owed, err := store.Recover(ctx, s)
	require.NoError(t, err)
	require.Len(t, owed, 1)
	assert.Equal(t, "pending", owed[0].Message.ID)

	// The migrated database takes outcomes and reasons, and keeps them.
	require.NoError(t, s.Transition(ctx, "pending", store.Processing, store.Update{}))
	require.NoError(t, s.Transition(ctx, "pending", store.Rejected, store.Update{Err: "stop: no items", Outcome: flowerrors.KindStop, Reason: "no items"}))
	require.NoError(t, s.Put(ctx, newMessage("new", nil)))
	require.NoError(t, s.Transition(ctx, "new", store.Error, store.Update{Err: "boom", Outcome: flowerrors.KindFailed}))
	require.NoError(t, s.Close())

	s, err = Open(path)
	require.NoError(t, err)
	got, err = s.Get(ctx, "pending")
	require.NoError(t, err)
	assert.Equal(t, flowerrors.KindStop, got.Outcome)
	assert.Equal(t, "no items", got.Reason)
	assert.Equal(t, store.Transition{State: store.Rejected, At: got.Updated, Err: "stop: no items", Outcome: flowerrors.KindStop, Reason: "no items"}, got.History[2])
	got, err = s.Get(ctx, "new")
	require.NoError(t, err)
	assert.Equal(t, flowerrors.KindFailed, got.Outcome)
	assert.Empty(t, got.Reason)
}

// TestOutcomeColumns: the outcome column holds a kind's name (the empty
// text when none was given), so that SQL run on the database reads it
// without this package; a name this program does not know is an error,
// not a wrong outcome.
func TestOutcomeColumns(t *testing.T) {
	ctx := context.Background()
	s, err := Open(":memory:")
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Begin(ctx, newMessage("a", nil)))
	require.NoError(t, s.Transition(ctx, "a", store.Error, store.Update{Err: "retries exhausted", Outcome: flowerrors.KindRetryExhausted}))
	rows, err := s.w.Query(`SELECT state, outcome, reason FROM history WHERE message_id = 'a' ORDER BY seq`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var state, outcome, reason string
		require.NoError(t, rows.Scan(&state, &outcome, &reason))
		got = append(got, state+"/"+outcome+"/"+reason)
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	assert.Equal(t, []string{"pending//", "processing//", "error/retry-exhausted/"}, got)
	var outcome string
	require.NoError(t, s.w.QueryRow(`SELECT outcome FROM messages WHERE id = 'a'`).Scan(&outcome))
	assert.Equal(t, "retry-exhausted", outcome)

	_, err = s.w.Exec(`UPDATE messages SET outcome = 'exploded' WHERE id = 'a'`)
	require.NoError(t, err)
	_, err = s.Get(ctx, "a")
	assert.ErrorContains(t, err, `message "a": outcome: errors: unknown kind "exploded"`)
}

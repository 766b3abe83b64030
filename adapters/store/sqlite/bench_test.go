package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
)

// benchPayload is a 200-byte JSON document.
var benchPayload = func() []byte {
	p := []byte(`{"order":12345,"customer":"c-0001","items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}],"note":"`)
	for len(p) < 198 {
		p = append(p, 'x')
	}
	return append(p, '"', '}')
}()

var benchMeta = map[string]string{"http.path": "/orders", "http.method": "POST"}

// benchStore runs perMessage for b.N messages of 200 bytes on a
// fresh SQLite store.
func benchStore(b *testing.B, perMessage func(ctx context.Context, s *Store, m *message.Message) error) {
	if len(benchPayload) != 200 {
		b.Fatalf("payload is %d bytes", len(benchPayload))
	}
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	ids := benchIDs(b.N)
	t0 := time.Now().UTC()
	b.SetBytes(int64(len(benchPayload)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m := &message.Message{ID: ids[i], Time: t0, ContentType: message.ContentTypeJSON, Payload: benchPayload, Meta: benchMeta}
		if err := perMessage(ctx, s, m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkB8Store measures Put, then Transition to Processing, then
// to Done: the three writes the baseline does by hand.
func BenchmarkB8Store(b *testing.B) {
	benchStore(b, func(ctx context.Context, s *Store, m *message.Message) error {
		if err := s.Put(ctx, m); err != nil {
			return err
		}
		if err := s.Transition(ctx, m.ID, store.Processing, store.Update{}); err != nil {
			return err
		}
		return s.Transition(ctx, m.ID, store.Done, store.Update{})
	})
}

// BenchmarkB8Begin is what a channel does per new message: Begin
// (put + processing in one transaction), then Done.
func BenchmarkB8Begin(b *testing.B) {
	benchStore(b, func(ctx context.Context, s *Store, m *message.Message) error {
		if err := s.Begin(ctx, m); err != nil {
			return err
		}
		return s.Transition(ctx, m.ID, store.Done, store.Update{})
	})
}

// BenchmarkB8Baseline does by hand, on database/sql with the same
// driver, pragmas and schema, the minimal SQL equivalent to
// BenchmarkB8Store: insert the message and its first history row,
// then twice update the state and insert a history row, each step in its
// own transaction.
func BenchmarkB8Baseline(b *testing.B) {
	path := filepath.Join(b.TempDir(), "baseline.db")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	db, err := sql.Open("sqlite", u.String()+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	for _, m := range migrations {
		for _, stmt := range m {
			if _, err := db.Exec(stmt); err != nil {
				b.Fatal(err)
			}
		}
	}
	prep := func(q string) *sql.Stmt {
		st, err := db.Prepare(q)
		if err != nil {
			b.Fatal(err)
		}
		return st
	}
	insMsg := prep(`INSERT INTO messages (id, time, content_type, payload, meta, context, trace, state, err, attempts, updated)
		VALUES (?, ?, ?, ?, ?, NULL, NULL, 'pending', '', 0, ?)`)
	insHist := prep(`INSERT INTO history (message_id, seq, state, at, err) VALUES (?, ?, ?, ?, '')`)
	upd := prep(`UPDATE messages SET state = ?, attempts = attempts + ?, updated = ? WHERE id = ?`)
	defer insMsg.Close()
	defer insHist.Close()
	defer upd.Close()
	meta := `{"http.method":"POST","http.path":"/orders"}`
	ids := benchIDs(b.N)
	tm := time.Now().UTC().Format(timeLayout)
	exec := func(tx *sql.Tx, st *sql.Stmt, args ...any) {
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...); err != nil {
			b.Fatal(err)
		}
	}
	step := func(f func(tx *sql.Tx)) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		f(tx)
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(benchPayload)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := ids[i]
		at := time.Now().UTC().Format(timeLayout)
		step(func(tx *sql.Tx) {
			exec(tx, insMsg, id, tm, "application/json", benchPayload, meta, at)
			exec(tx, insHist, id, 1, "pending", at)
		})
		step(func(tx *sql.Tx) {
			exec(tx, upd, "processing", 1, at, id)
			exec(tx, insHist, id, 2, "processing", at)
		})
		step(func(tx *sql.Tx) {
			exec(tx, upd, "done", 0, at, id)
			exec(tx, insHist, id, 3, "done", at)
		})
	}
}

// benchIDs returns n distinct UUID-sized IDs, made before the timer starts.
func benchIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	return ids
}

package sqlite

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
)

// b8Variant is one way of storing messages that BenchmarkB8Writers
// measures: run stores the messages ids[from:to] as a channel does
// (recorded processing, then done), and returns at the end.
type b8Variant struct {
	name    string
	run     func(b *testing.B, ids []string)
	elapsed time.Duration
	n       int
}

// b8Store runs the channel's two writes per message (Begin, then a
// Transition to Done with the run's context) from writers goroutines.
func b8Store(b *testing.B, opts Options, writers int) func(b *testing.B, ids []string) {
	s, err := OpenOptions(filepath.Join(b.TempDir(), "store.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	t0 := time.Now().UTC()
	out := map[string]any{"total": 17.5, "rate": 0.2}
	return func(b *testing.B, ids []string) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= len(ids) {
						return
					}
					m := &message.Message{ID: ids[i], Time: t0, ContentType: message.ContentTypeJSON, Payload: benchPayload, Meta: benchMeta}
					if err := s.Begin(ctx, m); err != nil {
						b.Error(err)
						return
					}
					if err := s.Transition(ctx, m.ID, store.Done, store.Update{Outcome: 0, Context: out}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
}

// b8Bare is the hand-written baseline: one loop on database/sql, same
// driver, pragmas and schema, that per message inserts the message
// (processing) and its two history rows in one transaction, then updates
// it to done with its context and inserts a history row in another.
func b8Bare(b *testing.B) func(b *testing.B, ids []string) {
	path := filepath.Join(b.TempDir(), "bare.db")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path)}
	db, err := sql.Open("sqlite", u.String()+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
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
		b.Cleanup(func() { st.Close() })
		return st
	}
	insMsg := prep(`INSERT INTO messages (id, time, content_type, payload, meta, context, trace, state, err, attempts, updated)
		VALUES (?, ?, ?, ?, ?, NULL, NULL, 'processing', '', 1, ?)`)
	insHist2 := prep(`INSERT INTO history (message_id, seq, state, at, err) VALUES (?1, 1, 'pending', ?2, ''), (?1, 2, 'processing', ?2, '')`)
	insHist := prep(`INSERT INTO history (message_id, seq, state, at, err) VALUES (?, 3, 'done', ?, '')`)
	upd := prep(`UPDATE messages SET state = 'done', context = ?, updated = ? WHERE id = ?`)
	meta := `{"http.method":"POST","http.path":"/orders"}`
	out := `{"rate":0.2,"total":17.5}`
	tm := time.Now().UTC().Format(timeLayout)
	ctx := context.Background()
	return func(b *testing.B, ids []string) {
		for _, id := range ids {
			at := time.Now().UTC().Format(timeLayout)
			tx, err := db.BeginTx(ctx, nil)
			if err == nil {
				_, err = tx.Stmt(insMsg).Exec(id, tm, "application/json", benchPayload, meta, at)
			}
			if err == nil {
				_, err = tx.Stmt(insHist2).Exec(id, at)
			}
			if err == nil {
				err = tx.Commit()
			}
			if err == nil {
				tx, err = db.BeginTx(ctx, nil)
			}
			if err == nil {
				_, err = tx.Stmt(upd).Exec(out, at, id)
			}
			if err == nil {
				_, err = tx.Stmt(insHist).Exec(id, at)
			}
			if err == nil {
				err = tx.Commit()
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkB8Writers: messages per second stored as a channel stores
// them (Begin, then Done with the run's context: two writes per
// message) by one writer and by 32 concurrent writers, with the default
// sync=normal and with sync=full, versus a bare database/sql loop doing
// the same inserts and updates, one transaction per write. The variants
// take the load in alternating rounds of 500 messages, whose order
// rotates, so that drift of the machine hits them alike. ratio-X is X's
// messages per second over the bare loop's.
func BenchmarkB8Writers(b *testing.B) {
	variants := []*b8Variant{
		{name: "store-1", run: b8Store(b, Options{}, 1)},
		{name: "store-32", run: b8Store(b, Options{}, 32)},
		{name: "full-1", run: b8Store(b, Options{Sync: SyncFull}, 1)},
		{name: "full-32", run: b8Store(b, Options{Sync: SyncFull}, 32)},
		{name: "bare", run: b8Bare(b)},
	}
	ids := benchIDs(b.N)
	const round = 500
	b.ResetTimer()
	for r, done := 0, 0; done < b.N; r, done = r+1, done+round {
		n := min(round, b.N-done)
		for j := range variants {
			v := variants[(r+j)%len(variants)]
			t0 := time.Now()
			v.run(b, ids[done:done+n])
			v.elapsed += time.Since(t0)
			v.n += n
		}
	}
	b.StopTimer()
	bare := variants[len(variants)-1]
	bareRate := float64(bare.n) / bare.elapsed.Seconds()
	for _, v := range variants {
		rate := float64(v.n) / v.elapsed.Seconds()
		b.ReportMetric(rate, v.name+"-msg/s")
		if v != bare {
			b.ReportMetric(rate/bareRate, "ratio-"+v.name)
		}
	}
}

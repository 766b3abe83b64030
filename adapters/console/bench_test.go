package console_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/console"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
	"github.com/svcflow/svcflow/flow"
)

// benchMessages is the number of stored messages the search benchmarks
// run over.
const benchMessages = 10_000

// storeWith opens a SQLite store holding n messages: each done, rejected
// or error in turn, with meta customer=c-<i%100> and region=<i%7>.
func storeWith(b *testing.B, n int) store.Store {
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "bench.db"))
	require.NoError(b, err)
	b.Cleanup(func() { st.Close() })
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	states := []store.State{store.Done, store.Rejected, store.Error}
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 { // concurrent writers share the store's group commits
		wg.Go(func() {
			for i := range next {
				m := &message.Message{ID: fmt.Sprintf("msg-%05d", i), Time: base.Add(time.Duration(i) * time.Second), ContentType: "application/json",
					Payload: []byte(`{"n":1}`), Meta: map[string]string{"customer": fmt.Sprintf("c-%d", i%100), "region": fmt.Sprint(i % 7)},
					Context: map[string]any{"n": 1, "total": 42}, Trace: []byte(`{"flow":"f","steps":[]}`)}
				if err := st.Begin(context.Background(), m); err != nil {
					panic(err)
				}
				if err := st.Transition(context.Background(), m.ID, states[i%3], store.Update{}); err != nil {
					panic(err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return st
}

// BenchmarkSearch10k: the search API (handler: query parsing, search,
// count, JSON) over 10,000 messages in SQLite, against the hand-written
// baseline of the same store.Search and Count called directly. Run:
//
//	go test -run '^$' -bench Search10k ./adapters/console/
func BenchmarkSearch10k(b *testing.B) {
	st := storeWith(b, benchMessages)
	quiet := slog.New(slog.DiscardHandler)
	ch, err := channel.New(channel.Config{Name: "c", Flow: flow.New("f", flow.Step("s", noop)).MustBuild(), Store: st, Logger: quiet})
	require.NoError(b, err)
	c := console.New(console.Options{Channels: func() []*channel.Channel { return []*channel.Channel{ch} }, Addr: "127.0.0.1:9090", Logger: quiet})
	defer c.Close()
	cases := []struct {
		name, params string
		q            store.Query
	}{
		{"meta", "meta=customer=c-42", store.Query{Meta: map[string]string{"customer": "c-42"}}},
		{"state+meta", "state=error&meta=customer=c-42&meta=region=3", store.Query{States: []store.State{store.Error}, Meta: map[string]string{"customer": "c-42", "region": "3"}}},
		{"state", "state=error", store.Query{States: []store.State{store.Error}}},
		{"id", "id=msg-042", store.Query{IDContains: "msg-042"}},
		{"all", "", store.Query{}},
		{"range", "since=2026-01-01T01:00:00Z&until=2026-01-01T02:00:00Z", store.Query{Since: time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC), Until: time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)}},
	}
	for _, tc := range cases {
		tc.q.Desc, tc.q.Limit = true, console.DefaultLimit
		b.Run(tc.name+"/api", func(b *testing.B) {
			req := httptest.NewRequest("GET", "http://127.0.0.1:9090/api/channels/c/messages?"+tc.params, nil)
			for b.Loop() {
				w := httptest.NewRecorder()
				c.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code, w.Body.String())
				}
			}
		})
		b.Run(tc.name+"/baseline", func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				recs, err := st.Search(ctx, tc.q)
				if err != nil {
					b.Fatal(err)
				}
				if len(recs) == tc.q.Limit {
					if _, err := st.Count(ctx, tc.q); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

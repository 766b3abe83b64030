package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/storetest"
	"github.com/svcflow/svcflow/internal/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tables numbers the table prefixes of the tests, so that each store
// opened by a test starts empty.
var tables atomic.Int64

func newTable() string { return fmt.Sprintf("t%d", tables.Add(1)) }

func open(t *testing.T, url, table string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, Options{Table: table})
	require.NoError(t, err)
	return s
}

// TestStore runs the tests that need a server on one server.
func TestStore(t *testing.T) {
	srv := pgtest.Start(t)
	t.Run("shared by many workers", func(t *testing.T) { testSharedByManyWorkers(t, srv) })
	t.Run("NUL is refused", func(t *testing.T) { testNULIsRefused(t, srv) })
	t.Run("component", func(t *testing.T) { testComponent(t, srv) })
	t.Run("conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return open(t, srv.URL, newTable()) })
	})
	t.Run("journal", func(t *testing.T) {
		storetest.RunJournal(t, func(t *testing.T) store.Store { return open(t, srv.URL, newTable()) })
	})
	t.Run("journal durable", func(t *testing.T) {
		table := newTable()
		storetest.RunJournalDurable(t, func(t *testing.T) store.Store { return open(t, srv.URL, table) })
	})
	t.Run("durable", func(t *testing.T) {
		table := newTable()
		storetest.RunDurable(t, func(t *testing.T) store.Store { return open(t, srv.URL, table) })
	})
}

// testSharedByManyWorkers: four stores on the same tables (four pools of
// connections, as four worker processes have) write at once: each
// message is begun once (the others are told it exists), and concurrent
// transitions of the same message are all recorded, numbered without
// gaps, with every entry to Processing counted.
func testSharedByManyWorkers(t *testing.T, srv *pgtest.Server) {
	table := newTable()
	ctx := context.Background()
	const workers, msgs, rounds = 4, 40, 5
	stores := make([]*Store, workers)
	for i := range stores {
		stores[i] = open(t, srv.URL, table)
		defer stores[i].Close()
	}
	var begun, exists atomic.Int64
	var wg sync.WaitGroup
	for w, s := range stores {
		wg.Go(func() {
			for i := range msgs {
				id := fmt.Sprintf("m-%d", i)
				err := s.Begin(ctx, &message.Message{ID: id, ContentType: "text/plain", Payload: []byte("x"), Meta: map[string]string{"k": "v"}})
				switch {
				case err == nil:
					begun.Add(1)
				case errors.Is(err, store.ErrExists):
					exists.Add(1)
				default:
					t.Error(err)
					return
				}
				// Every worker settles and claims the message again.
				for r := range rounds {
					if !assert.NoError(t, s.Transition(ctx, id, store.Done, store.Update{Context: map[string]any{"w": float64(w), "r": float64(r)}})) {
						return
					}
					if !assert.NoError(t, s.Transition(ctx, id, store.Processing, store.Update{})) {
						return
					}
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(msgs), begun.Load(), "each message begun once")
	assert.Equal(t, int64(msgs*(workers-1)), exists.Load())
	recs, err := stores[0].Search(ctx, store.Query{Meta: map[string]string{"k": "v"}})
	require.NoError(t, err)
	require.Len(t, recs, msgs)
	for _, rec := range recs {
		// pending, processing, then 2 transitions per round per worker.
		require.Len(t, rec.History, 2+2*rounds*workers, rec.Message.ID)
		assert.Equal(t, store.Processing, rec.State)
		assert.Equal(t, 1+rounds*workers, rec.Attempts, "every claim counted")
		done := 0
		for _, h := range rec.History[2:] {
			if h.State == store.Done {
				done++
			}
		}
		assert.Equal(t, rounds*workers, done)
	}
}

func TestKill(t *testing.T) {
	storetest.RunKill(t, storetest.KillOptions{},
		func(t *testing.T) string { return pgtest.Start(t).URL },
		func(t *testing.T, url string) store.Store { return open(t, url, "kill") })
}

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "postgres://nobody:secret@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", Options{})
	require.Error(t, err)
	assert.ErrorContains(t, err, "store postgres: open: postgres://nobody:xxxxx@127.0.0.1:1/none")
	assert.NotContains(t, err.Error(), "secret", "the password is not shown")
	_, err = Open(ctx, "postgres://host:notaport/db", Options{})
	assert.ErrorIs(t, err, store.ErrInvalid)
}

func testNULIsRefused(t *testing.T, srv *pgtest.Server) {
	s := open(t, srv.URL, newTable())
	defer s.Close()
	ctx := context.Background()
	err := s.Put(ctx, &message.Message{ID: "a\x00b"})
	assert.ErrorIs(t, err, store.ErrInvalid)
	assert.ErrorContains(t, err, "NUL")
	err = s.Put(ctx, &message.Message{ID: "m", Meta: map[string]string{"k": "v\x00"}})
	assert.ErrorIs(t, err, store.ErrInvalid)
	require.NoError(t, s.Put(ctx, &message.Message{ID: "ok", Context: map[string]any{"s": "nul \x00 in JSON is escaped"}}))
	rec, err := s.Get(ctx, "ok")
	require.NoError(t, err)
	assert.Equal(t, "nul \x00 in JSON is escaped", rec.Message.Context["s"])
	_, err = s.Get(ctx, "a\x00b")
	assert.ErrorIs(t, err, store.ErrNotFound)
	n, err := s.Count(ctx, store.Query{Meta: map[string]string{"k": "\x00"}})
	require.NoError(t, err)
	assert.Zero(t, n)
}

func testComponent(t *testing.T, srv *pgtest.Server) {
	reg, err := component.NewRegistry(Component)
	require.NoError(t, err)
	openURL := func(env component.Env, url string) (store.Store, error) {
		ref, err := reg.ParseURL(component.KindStore, url)
		require.NoError(t, err)
		o, err := ref.Store(env)
		if err != nil {
			return nil, err
		}
		return o()
	}
	// postgres://... is the store's URL; the tables are named after the
	// channel.
	st, err := openURL(component.Env{Name: "intake"}, srv.URL)
	require.NoError(t, err)
	s := st.(*Store)
	assert.Equal(t, "intake", s.table)
	require.NoError(t, s.Begin(context.Background(), &message.Message{ID: "a"}))
	probed, err := store.Probe(context.Background(), s)
	assert.True(t, probed)
	assert.NoError(t, err)
	require.NoError(t, s.Close())
	var n int
	pool := open(t, srv.URL, "other")
	defer pool.Close()
	require.NoError(t, pool.pool.QueryRow(context.Background(), `SELECT count(*) FROM intake_messages`).Scan(&n))
	assert.Equal(t, 1, n)

	_, err = openURL(component.Env{Name: "c"}, "postgres://host:notaport/db")
	assert.ErrorIs(t, err, component.ErrInvalid)
}

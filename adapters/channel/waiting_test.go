package channel_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
)

// WaitingMemoryBound is the most the Go heap of a process may grow by
// while a durable channel on the SQLite store holds 10,000 messages
// waiting for a signal: a waiting message is a row of the store, not a
// goroutine or a value of the channel (measured: well under 1 MiB; the
// bound leaves room for the garbage collector's timing).
const WaitingMemoryBound = 8 << 20

// TestWaitingMessagesAllocations parks 10,000 messages at a wait step
// (100 under the race detector, which makes the SQLite driver, C translated to Go, many times slower), checks that the process holds no
// goroutine and no more heap than WaitingMemoryBound for them, then
// signals every one and checks that all complete. CI runs the 10,000 in
// its allocation tests, without the race detector.
func TestWaitingMessagesAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 messages through SQLite")
	}
	n := waitingMessages
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "w.db"))
	require.NoError(t, err)
	defer st.Close()
	a := &approval{}
	var after atomic.Int32
	ch, err := channel.New(channel.Config{Name: "c", Flow: approvalFlow(a, &after), Store: st, Durable: true, NoTrace: true})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background()))
	defer func() { require.NoError(t, ch.Stop(context.Background())) }()

	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("m%05d", i)
	}
	parallel := func(f func(id string)) {
		var wg sync.WaitGroup
		next := make(chan string)
		for range 8 {
			wg.Go(func() {
				for id := range next {
					f(id)
				}
			})
		}
		for _, id := range ids {
			next <- id
		}
		close(next)
		wg.Wait()
	}
	heapBefore, goroutinesBefore := heap(), runtime.NumGoroutine()
	t0 := time.Now()
	parallel(func(id string) {
		res := ch.Handle(context.Background(), &message.Message{ID: id, ContentType: message.ContentTypeJSON, Payload: []byte(`{"order": "` + id + `"}`)})
		if res.State != store.Waiting {
			t.Errorf("%s: %s %v", id, res.State, res.Err)
		}
	})
	t.Logf("parked %d in %s", n, time.Since(t0))
	heapWaiting, goroutinesWaiting := heap(), runtime.NumGoroutine()
	waiting, err := st.Count(context.Background(), store.Query{States: []store.State{store.Waiting}})
	require.NoError(t, err)
	require.Equal(t, n, waiting)
	grew := int64(heapWaiting) - int64(heapBefore)
	t.Logf("%d waiting messages: heap %+d bytes (%.0f per message), goroutines %d -> %d", n, grew, float64(grew)/float64(n), goroutinesBefore, goroutinesWaiting)
	assert.Less(t, grew, int64(WaitingMemoryBound), "heap growth for %d waiting messages", n)
	// A few goroutines may start meanwhile (database/sql's connection
	// cleaners); one per waiting message would be 10,000.
	assert.LessOrEqual(t, goroutinesWaiting, goroutinesBefore+10, "no goroutine per waiting message")

	t0 = time.Now()
	parallel(func(id string) {
		res, err := ch.Signal(context.Background(), id, "approved", map[string]any{"by": "ann"})
		if err != nil || res.State != store.Done {
			t.Errorf("%s: %s %v %v", id, res.State, err, res.Err)
		}
	})
	t.Logf("signalled %d in %s", n, time.Since(t0))
	done, err := st.Count(context.Background(), store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, n, done)
	assert.Equal(t, int32(n), after.Load())
}

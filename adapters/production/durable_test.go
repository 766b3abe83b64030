package production_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/production"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

const durableYAML = `version: 1
flows:
  intake:
    input: [n]
    steps:
      - set: {req: "{n: n}"}
      - send: {target: Audit, body: req, into: audited}
      - send: {target: Work, body: req, async: a}
      - set: {req2: "{n: n + 1}"}
      - send: {target: Work, body: req2, async: b}
      - complete: responses
      - set: {total: "responses.a.response.out + responses.b.response.out"}
`

// A durable business service's run is stopped while its two async calls
// are out (the process ends): the next production on the same store
// resumes the run after its last completed step; the complete step sends
// the two recorded calls again and collects them. The sync send before
// them is not sent again.
func TestAsyncCompletionAfterRestart(t *testing.T) {
	cfg := load(t, durableYAML, nil)
	st := store.NewMemory()
	defer st.Close()

	type calls struct {
		mu    sync.Mutex
		audit int
		work  []any
	}
	var seen calls
	started := make(chan struct{}, 10)
	build := func(block bool) *production.Production {
		f, ok := cfg.Flow("intake")
		require.True(t, ok)
		p := production.New("durable", production.Options{Logger: quiet})
		require.NoError(t, p.Add(production.Component{Name: "Audit", Kind: production.Operation,
			Service: flow.Step("audit", func(ctx context.Context, c *fc.Context) error {
				seen.mu.Lock()
				seen.audit++
				seen.mu.Unlock()
				return nil
			})}))
		require.NoError(t, p.Add(production.Component{Name: "Work", Kind: production.Operation,
			Service: flow.Step("work", func(ctx context.Context, c *fc.Context) error {
				n, _ := c.Get("n")
				seen.mu.Lock()
				seen.work = append(seen.work, n)
				seen.mu.Unlock()
				if block {
					started <- struct{}{}
					<-ctx.Done() // the process ends first
					return ctx.Err()
				}
				c.Set("out", n.(float64)*10)
				return nil
			})}))
		require.NoError(t, p.Add(production.Component{Name: "In", Kind: production.Service, Service: f, Store: st, Durable: true}))
		return p
	}

	// 1. The first process: both async calls are out when it stops.
	ctx := context.Background()
	p1 := build(true)
	require.NoError(t, p1.Start(ctx))
	bs, err := p1.Director().Service("In")
	require.NoError(t, err)
	res := make(chan error, 1)
	go func() {
		_, err := bs.ProcessInput(ctx, map[string]any{"n": 1})
		res <- err
	}()
	<-started
	<-started
	stopCtx, cancel := context.WithCancel(ctx)
	cancel() // no drain: the run is canceled, as by the end of the process
	_ = p1.Stop(stopCtx)
	err = <-res
	require.Error(t, err)
	assert.Equal(t, errors.KindCanceled, errors.KindOf(err), "%v", err)
	recs, err := st.Search(ctx, store.Query{})
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.NotEqual(t, store.Done, recs[0].State, "the message is owed")
	assert.Equal(t, 1, seen.audit)

	// 2. The next process resumes the run after its last completed step.
	p2 := build(false)
	require.NoError(t, p2.Start(ctx))
	defer p2.Stop(ctx)
	var rec *store.Record
	for range 500 { // recovery runs in the background
		if rec, err = st.Get(ctx, recs[0].Message.ID); err == nil && rec.State == store.Done {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.Equal(t, store.Done, rec.State, "%+v", rec)
	assert.Equal(t, 30.0, rec.Message.Context["total"], "1*10 + 2*10")
	assert.NotContains(t, rec.Message.Context, production.AsyncKey)
	seen.mu.Lock()
	defer seen.mu.Unlock()
	assert.Equal(t, 1, seen.audit, "the sync send completed before the stop is not sent again")
	assert.ElementsMatch(t, []any{1.0, 2.0, 1.0, 2.0}, seen.work, "the two async calls, sent again once each")
}

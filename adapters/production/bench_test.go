package production_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/svcflow/svcflow/adapters/production"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// B13 compares SendMulti with hand-written Go doing the same work, in
// alternating rounds of the same run, so that both see the same load on
// a shared machine. Run: go test -run '^$' -bench B13 ./adapters/production
const b13Round = 256

// b13Work is the operation both sides call: it reads the request, does a
// little arithmetic and writes a result, as a small operation would.
func b13Work(name string) flow.Service {
	return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
		v, _ := c.Get("n")
		n := v.(int)
		sum := 0
		for i := range 64 {
			sum += (n + i) * i
		}
		c.Set("sum", sum)
		return nil
	})
}

// BenchmarkB13SendMulti: a SendMulti of 8 calls to 8 operations versus a
// hand-written errgroup fan-out calling the same 8 services on contexts
// made from the same requests and collecting their output maps (what a
// user writes instead: errgroup.Group, one result slot per call). It
// reports each side's µs per 8-call fan-out and the ratio
// production/handwritten (target <= 1.5).
func BenchmarkB13SendMulti(b *testing.B) {
	ctx := context.Background()
	p := production.New("b13", production.Options{Logger: quiet})
	svcs := make([]flow.Service, 8)
	calls := make([]production.Call, 8)
	for i := range svcs {
		name := fmt.Sprintf("op%d", i)
		svcs[i] = b13Work(name)
		if err := p.Add(production.Component{Name: name, Kind: production.Operation, Service: svcs[i]}); err != nil {
			b.Fatal(err)
		}
		calls[i] = production.Call{Target: name, Request: map[string]any{"n": i, "customer": "c1"}}
	}
	if err := p.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := p.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}()

	multi := func() {
		for _, r := range p.SendMulti(ctx, calls...) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	hand := func() {
		var g errgroup.Group
		out := make([]map[string]any, len(calls))
		for i, call := range calls {
			g.Go(func() error {
				c := fc.FromMap(call.Request)
				if err := svcs[i].Call(ctx, c); err != nil {
					return err
				}
				out[i] = c.Map()
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	timed := func(n int, fn func()) time.Duration {
		start := time.Now()
		for range n {
			fn()
		}
		return time.Since(start)
	}
	var prodT, handT time.Duration
	b.ReportAllocs()
	for done := 0; done < b.N; done += b13Round {
		n := min(b13Round, b.N-done)
		prodT += timed(n, multi)
		handT += timed(n, hand)
	}
	b.ReportMetric(float64(prodT.Microseconds())/float64(b.N), "production-µs/op")
	b.ReportMetric(float64(handT.Microseconds())/float64(b.N), "handwritten-µs/op")
	b.ReportMetric(prodT.Seconds()/handT.Seconds(), "ratio")
}

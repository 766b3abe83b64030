package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svcflow/svcflow/adapters/bus"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// B12 compares the bus with hand-written Go doing the same work, in
// alternating rounds of the same run, so that both see the same load on a
// shared machine. Run: go test -run '^$' -bench B12 ./adapters/bus
const round = 2048

// counter is what the function both sides call counts toward: done is
// closed at the want-th call.
type counter struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

// counting is the function both sides of B12Submit call: it reads a key
// of its context and counts.
func counting(cur *atomic.Pointer[counter]) flow.Service {
	return flow.Step("count", func(ctx context.Context, x *fc.Context) error {
		if _, ok := x.Get("n"); !ok {
			panic("no n")
		}
		c := cur.Load()
		if c.n.Add(1) == c.want {
			close(c.done)
		}
		return nil
	})
}

// BenchmarkB12Submit: one-way Submit to a service's Process versus a
// hand-written goroutine reading a buffered Go channel (the mailbox's
// size) and calling the same function on a context made from the same
// body, b.N messages each. It reports each side's msgs/s and the ratio
// bus/handwritten (target >= 0.5).
func BenchmarkB12Submit(b *testing.B) {
	body := map[string]any{"n": 1, "sensor": "t1"}
	ctx := context.Background()
	var cur atomic.Pointer[counter]
	svc := counting(&cur)

	bs := bus.New(bus.Options{Logger: quiet})
	if err := bs.Add(bus.Service{Name: "svc", Actions: bus.Actions{bus.Process: svc}}); err != nil {
		b.Fatal(err)
	}
	if err := bs.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := bs.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}()
	ch := make(chan map[string]any, bus.DefaultMailbox)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for m := range ch {
			if err := svc.Call(ctx, fc.FromMap(m)); err != nil {
				panic(err)
			}
		}
	}()
	defer func() { close(ch); <-exited }()

	timed := func(n int, send func()) time.Duration {
		c := &counter{want: int64(n), done: make(chan struct{})}
		cur.Store(c)
		start := time.Now()
		for range n {
			send()
		}
		<-c.done
		return time.Since(start)
	}
	var busT, handT time.Duration
	b.ReportAllocs()
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		busT += timed(n, func() {
			if err := bs.Submit(ctx, "svc", bus.Process, body); err != nil {
				b.Fatal(err)
			}
		})
		handT += timed(n, func() { ch <- body })
	}
	b.ReportMetric(float64(b.N)/busT.Seconds(), "bus-msgs/s")
	b.ReportMetric(float64(b.N)/handT.Seconds(), "handwritten-msgs/s")
	b.ReportMetric(handT.Seconds()/busT.Seconds(), "ratio")
}

// BenchmarkB12Request: the round trip of a Request (queue, run, reply)
// versus a hand-written request over a Go channel with a reply channel,
// in alternating rounds. It reports each side's µs per round trip and the
// ratio of their throughputs (bus/handwritten).
func BenchmarkB12Request(b *testing.B) {
	body := map[string]any{"n": 1}
	echo := flow.Step("echo", func(ctx context.Context, x *fc.Context) error {
		x.Set("ok", true)
		return nil
	})
	ctx := context.Background()
	bs := bus.New(bus.Options{Logger: quiet})
	if err := bs.Add(bus.Service{Name: "svc", Actions: bus.Actions{bus.Process: echo}}); err != nil {
		b.Fatal(err)
	}
	if err := bs.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := bs.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}()
	type req struct {
		body  map[string]any
		reply chan map[string]any
	}
	ch := make(chan req, bus.DefaultMailbox)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for r := range ch {
			c := fc.FromMap(r.body)
			if err := echo.Call(ctx, c); err != nil {
				panic(err)
			}
			out := c.Map()
			delete(out, "meta")
			r.reply <- out
		}
	}()
	defer func() { close(ch); <-exited }()
	reqCtx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()

	var busT, handT time.Duration
	b.ReportAllocs()
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		start := time.Now()
		for range n {
			if _, err := bs.Request(reqCtx, "svc", bus.Process, body); err != nil {
				b.Fatal(err)
			}
		}
		busT += time.Since(start)
		start = time.Now()
		for range n {
			r := req{body: body, reply: make(chan map[string]any, 1)}
			ch <- r
			<-r.reply
		}
		handT += time.Since(start)
	}
	b.ReportMetric(busT.Seconds()*1e6/float64(b.N), "bus-µs/req")
	b.ReportMetric(handT.Seconds()*1e6/float64(b.N), "handwritten-µs/req")
	b.ReportMetric(handT.Seconds()/busT.Seconds(), "ratio")
}

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

// counting is the function both sides of B12 call: it reads a key and
// counts; done is closed at the nth call.
type counting struct {
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (c *counting) action() flow.Service {
	return flow.Step("count", func(ctx context.Context, x *fc.Context) error {
		if _, ok := x.Get("n"); !ok {
			panic("no n")
		}
		if c.n.Add(1) == c.want {
			close(c.done)
		}
		return nil
	})
}

// BenchmarkB12Submit: one-way Submit to a service's Process versus a
// hand-written goroutine reading a buffered Go channel (the mailbox's
// size) and calling the same function on a context made from the same
// body. msgs/s is reported; the ratio is bus/handwritten.
func BenchmarkB12Submit(b *testing.B) {
	body := map[string]any{"n": 1, "sensor": "t1"}
	b.Run("bus", func(b *testing.B) {
		c := &counting{want: int64(b.N), done: make(chan struct{})}
		bs := bus.New(bus.Options{Logger: quiet})
		if err := bs.Add(bus.Service{Name: "svc", Actions: bus.Actions{bus.Process: c.action()}}); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := bs.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			if err := bs.Submit(ctx, "svc", bus.Process, body); err != nil {
				b.Fatal(err)
			}
		}
		<-c.done
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		b.StopTimer()
		if err := bs.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("handwritten", func(b *testing.B) {
		c := &counting{want: int64(b.N), done: make(chan struct{})}
		svc := c.action()
		ch := make(chan map[string]any, bus.DefaultMailbox)
		ctx := context.Background()
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			for m := range ch {
				if err := svc.Call(ctx, fc.FromMap(m)); err != nil {
					panic(err)
				}
			}
		}()
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			ch <- body
		}
		<-c.done
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
		b.StopTimer()
		close(ch)
		<-exited
	})
}

// BenchmarkB12Request: the round trip of a Request (queue, run, reply)
// versus a hand-written request over a Go channel with a reply channel.
func BenchmarkB12Request(b *testing.B) {
	body := map[string]any{"n": 1}
	echo := flow.Step("echo", func(ctx context.Context, x *fc.Context) error {
		x.Set("ok", true)
		return nil
	})
	b.Run("bus", func(b *testing.B) {
		bs := bus.New(bus.Options{Logger: quiet})
		if err := bs.Add(bus.Service{Name: "svc", Actions: bus.Actions{bus.Process: echo}}); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := bs.Start(ctx); err != nil {
			b.Fatal(err)
		}
		reqCtx, cancel := context.WithTimeout(ctx, time.Hour)
		defer cancel()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := bs.Request(reqCtx, "svc", bus.Process, body); err != nil {
				b.Fatal(err)
			}
		}
		if err := bs.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("handwritten", func(b *testing.B) {
		type req struct {
			body  map[string]any
			reply chan map[string]any
		}
		ch := make(chan req, bus.DefaultMailbox)
		ctx := context.Background()
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			for r := range ch {
				c := fc.FromMap(r.body)
				if err := echo.Call(ctx, c); err != nil {
					panic(err)
				}
				r.reply <- c.Map()
			}
		}()
		b.ReportAllocs()
		for b.Loop() {
			r := req{body: body, reply: make(chan map[string]any, 1)}
			ch <- r
			<-r.reply
		}
		close(ch)
		<-exited
	})
}

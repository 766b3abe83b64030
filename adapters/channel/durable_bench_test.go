package channel_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// BenchmarkB11Durable is benchmark B11: a 5-step flow on a channel with
// the SQLite store, durable (steps: `durable: steps`, each step journaled
// before the next starts; effects: `durable: effects`, where steps 1, 2,
// 4 and 5 have no effects, as set steps, and step 3 has) versus
// message-level durability (message: the message and its outcome
// recorded, steps not journaled), one message at a time (serial) and
// from 32 goroutines at once (parallel). Throughput ratio: message ns/op
// over durable ns/op.
func BenchmarkB11Durable(b *testing.B) {
	steps := make([]flow.Service, 5)
	for i := range steps {
		key := string(rune('a' + i))
		var opts []flow.StepOption
		if i != 2 {
			opts = append(opts, flow.NoEffects())
		}
		steps[i] = flow.Step(key, func(ctx context.Context, c *fc.Context) error {
			c.Set(key, i)
			return nil
		}, opts...)
	}
	f := flow.New("f", steps...).MustBuild()
	payload := []byte(`{"tier": "gold", "items": [{"price": 2.5, "qty": 2}, {"price": 1, "qty": 3}]}`)
	ctx := context.Background()
	for _, mode := range []string{"serial", "parallel"} {
		for _, kind := range []string{"message", "steps", "effects"} {
			durable, effects := kind != "message", kind == "effects"
			b.Run(mode+"/"+kind, func(b *testing.B) {
				st, err := sqlite.Open(filepath.Join(b.TempDir(), "b11.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st, Durable: durable, JournalEffects: effects,
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				if err := ch.Start(ctx); err != nil { // a stopped channel refuses messages
					b.Fatal(err)
				}
				defer ch.Stop(ctx)
				handle := func() {
					res := ch.Handle(ctx, message.New("application/json", payload, nil))
					if res.Settle != channel.Ack {
						b.Fatal(res.Err)
					}
				}
				b.ReportAllocs()
				if mode == "serial" {
					for b.Loop() {
						handle()
					}
					return
				}
				b.SetParallelism(16) // 32 goroutines on 2 cores
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						handle()
					}
				})
			})
		}
	}
}

// BenchmarkB11Rounds is B11 measured in alternating rounds: the three
// channels (message, steps, effects; see BenchmarkB11Durable) take the
// load in turn, 64 messages a round (512 in parallel), the order rotating, so that a
// machine whose load changes during the run disturbs them alike. It
// reports each variant's time per message and the throughput ratios
// steps/message and effects/message (target 0.6 or more), one message
// at a time (serial) and from 32 goroutines (parallel).
func BenchmarkB11Rounds(b *testing.B) {
	steps := make([]flow.Service, 5)
	for i := range steps {
		key := string(rune('a' + i))
		var opts []flow.StepOption
		if i != 2 {
			opts = append(opts, flow.NoEffects())
		}
		steps[i] = flow.Step(key, func(ctx context.Context, c *fc.Context) error {
			c.Set(key, i)
			return nil
		}, opts...)
	}
	f := flow.New("f", steps...).MustBuild()
	payload := []byte(`{"tier": "gold", "items": [{"price": 2.5, "qty": 2}, {"price": 1, "qty": 3}]}`)
	ctx := context.Background()
	kinds := []string{"message", "steps", "effects"}
	for _, mode := range []string{"serial", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			chans := make([]*channel.Channel, len(kinds))
			for i, kind := range kinds {
				st, err := sqlite.Open(filepath.Join(b.TempDir(), kind+".db"))
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st, Durable: kind != "message",
					JournalEffects: kind == "effects", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				if err := ch.Start(ctx); err != nil {
					b.Fatal(err)
				}
				defer ch.Stop(ctx)
				chans[i] = ch
			}
			handle := func(ch *channel.Channel) {
				res := ch.Handle(ctx, message.New("application/json", payload, nil))
				if res.Settle != channel.Ack {
					b.Error(res.Err)
				}
			}
			round := 64
			if mode == "parallel" {
				round = 512 // 16 messages per goroutine a round
			}
			spent := make([]time.Duration, len(kinds))
			b.ResetTimer()
			for r, done := 0, 0; done < b.N; r, done = r+1, done+round {
				n := min(round, b.N-done)
				for j := range kinds {
					i := (r + j) % len(kinds)
					start := time.Now()
					if mode == "serial" {
						for range n {
							handle(chans[i])
						}
					} else {
						var wg sync.WaitGroup
						next := make(chan struct{}, n)
						for range n {
							next <- struct{}{}
						}
						close(next)
						for range 32 {
							wg.Go(func() {
								for range next {
									handle(chans[i])
								}
							})
						}
						wg.Wait()
					}
					spent[i] += time.Since(start)
				}
			}
			b.StopTimer()
			for i, kind := range kinds {
				b.ReportMetric(float64(spent[i].Nanoseconds())/float64(b.N), kind+"-ns/msg")
			}
			b.ReportMetric(float64(spent[0])/float64(spent[1]), "ratio-steps")
			b.ReportMetric(float64(spent[0])/float64(spent[2]), "ratio-effects")
		})
	}
}

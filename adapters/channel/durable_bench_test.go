package channel_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// BenchmarkB11Durable is benchmark B11: a 5-step flow on a channel with
// the SQLite store, durable (`durable: steps`: each step journaled before
// the next starts) versus message-level durability (the message and its
// outcome recorded, steps not journaled), one message at a time (serial)
// and from 32 goroutines at once (parallel). Throughput ratio: durable
// ns/op over message ns/op, inverted.
func BenchmarkB11Durable(b *testing.B) {
	steps := make([]flow.Service, 5)
	for i := range steps {
		key := string(rune('a' + i))
		steps[i] = flow.Step(key, func(ctx context.Context, c *fc.Context) error {
			c.Set(key, i)
			return nil
		})
	}
	f := flow.New("f", steps...).MustBuild()
	payload := []byte(`{"tier": "gold", "items": [{"price": 2.5, "qty": 2}, {"price": 1, "qty": 3}]}`)
	ctx := context.Background()
	for _, mode := range []string{"serial", "parallel"} {
		for _, durable := range []bool{false, true} {
			name := mode + "/message"
			if durable {
				name = mode + "/steps"
			}
			b.Run(name, func(b *testing.B) {
				st, err := sqlite.Open(filepath.Join(b.TempDir(), "b11.db"))
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: st, Durable: durable,
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
				if err != nil {
					b.Fatal(err)
				}
				if err := ch.Start(ctx); err != nil {
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

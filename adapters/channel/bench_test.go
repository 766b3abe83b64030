package channel_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// The channel's own cost per message (store bookkeeping, trace, supervisor)
// over running the same flow directly on the same payload.
func BenchmarkHandle(b *testing.B) {
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
	b.Run("channel-notrace", func(b *testing.B) {
		ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: store.NewMemory(), NoTrace: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			res := ch.Handle(ctx, message.New("application/json", payload, nil))
			if res.Settle != channel.Ack {
				b.Fatal(res.Err)
			}
		}
	})
	b.Run("channel", func(b *testing.B) {
		ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: store.NewMemory(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			res := ch.Handle(ctx, message.New("application/json", payload, nil))
			if res.Settle != channel.Ack {
				b.Fatal(res.Err)
			}
		}
	})
	b.Run("channel-redact", func(b *testing.B) { // two keys masked in what is stored
		ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: store.NewMemory(), Redact: []string{"tier", "items.price"},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			res := ch.Handle(ctx, message.New("application/json", payload, nil))
			if res.Settle != channel.Ack {
				b.Fatal(res.Err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := message.New("application/json", payload, nil)
			c, err := fc.FromJSON(m.Payload)
			if err != nil {
				b.Fatal(err)
			}
			if err := f.RunContext(ctx, c); err != nil {
				b.Fatal(err)
			}
			_ = c.Map()
		}
	})
}

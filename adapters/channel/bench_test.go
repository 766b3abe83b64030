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
	started := func(b *testing.B, cfg channel.Config) *channel.Channel {
		ch, err := channel.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := ch.Start(ctx); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = ch.Stop(ctx) })
		return ch
	}
	b.Run("channel-notrace", func(b *testing.B) {
		ch := started(b, channel.Config{Name: "c", Flow: f, Store: store.NewMemory(), NoTrace: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		b.ReportAllocs()
		for b.Loop() {
			res := ch.Handle(ctx, message.New("application/json", payload, nil))
			if res.Settle != channel.Ack {
				b.Fatal(res.Err)
			}
		}
	})
	b.Run("channel-none", func(b *testing.B) { // store: none, no trace: the supervisor alone
		ch := started(b, channel.Config{Name: "c", Flow: f, Store: store.None(), NoTrace: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		b.ReportAllocs()
		for b.Loop() {
			res := ch.Handle(ctx, message.New("application/json", payload, nil))
			if res.Settle != channel.Ack {
				b.Fatal(res.Err)
			}
		}
	})
	b.Run("channel", func(b *testing.B) {
		ch := started(b, channel.Config{Name: "c", Flow: f, Store: store.NewMemory(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		b.ReportAllocs()
		for b.Loop() {
			res := ch.Handle(ctx, message.New("application/json", payload, nil))
			if res.Settle != channel.Ack {
				b.Fatal(res.Err)
			}
		}
	})
	b.Run("channel-hook", func(b *testing.B) { // a one-step finally hook on every message
		hook := flow.New("hook", flow.Step("h", func(ctx context.Context, c *fc.Context) error { return nil })).MustBuild()
		ch := started(b, channel.Config{Name: "c", Flow: f, Store: store.NewMemory(), NoTrace: true, Hooks: channel.Hooks{Finally: hook},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		b.ReportAllocs()
		for b.Loop() {
			res := ch.Handle(ctx, message.New("application/json", payload, nil))
			if res.Settle != channel.Ack {
				b.Fatal(res.Err)
			}
		}
	})
	b.Run("channel-redact", func(b *testing.B) { // two keys masked in what is stored
		ch := started(b, channel.Config{Name: "c", Flow: f, Store: store.NewMemory(), Redact: []string{"tier", "items.price"},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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

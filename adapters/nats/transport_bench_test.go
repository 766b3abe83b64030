package nats_test

import (
	"context"
	"testing"
	"time"

	"github.com/svcflow/svcflow/adapters/bus"
	snats "github.com/svcflow/svcflow/adapters/nats"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// BenchmarkB12RequestNATS: the round trip of a bus Request to a service
// of another bus (another process's, as far as the bus knows) over a
// real nats-server on loopback, versus the same Request to a service of
// the same bus, in alternating rounds. It reports each side's µs per
// round trip and the ratio of their throughputs (nats/in-process).
// Run: go test -run '^$' -bench B12RequestNATS ./adapters/nats
func BenchmarkB12RequestNATS(b *testing.B) {
	srv := startServer(b, b.TempDir(), 0)
	defer stopServer(srv)
	echo := flow.Step("echo", func(ctx context.Context, x *fc.Context) error {
		x.Set("ok", true)
		return nil
	})
	ctx := context.Background()
	mk := func(name string) *bus.Bus {
		tr, err := snats.NewTransport(snats.TransportSpec{URL: []string{srv.ClientURL()}}, "", quiet)
		if err != nil {
			b.Fatal(err)
		}
		bs := bus.New(bus.Options{Transport: tr, Logger: quiet})
		if err := bs.Add(bus.Service{Name: name, Actions: bus.Actions{bus.Process: echo}}); err != nil {
			b.Fatal(err)
		}
		if err := bs.Start(ctx); err != nil {
			b.Fatal(err)
		}
		return bs
	}
	remote, local := mk("remote"), mk("local")
	defer func() {
		_ = local.Stop(ctx)
		_ = remote.Stop(ctx)
	}()
	body := map[string]any{"n": 1}
	reqCtx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	const round = 256
	var natsT, localT time.Duration
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		start := time.Now()
		for range n {
			if _, err := local.Request(reqCtx, "remote", bus.Process, body); err != nil {
				b.Fatal(err)
			}
		}
		natsT += time.Since(start)
		start = time.Now()
		for range n {
			if _, err := local.Request(reqCtx, "local", bus.Process, body); err != nil {
				b.Fatal(err)
			}
		}
		localT += time.Since(start)
	}
	b.ReportMetric(natsT.Seconds()*1e6/float64(b.N), "nats-µs/req")
	b.ReportMetric(localT.Seconds()*1e6/float64(b.N), "inprocess-µs/req")
	b.ReportMetric(localT.Seconds()/natsT.Seconds(), "ratio")
}

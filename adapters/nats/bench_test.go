package nats_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	snats "github.com/svcflow/svcflow/adapters/nats"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// The five steps of B9, as plain functions over an order map, so the
// svcflow flow and the bare loop run the same code.
func b9Validate(m map[string]any) error {
	if items, _ := m["items"].([]any); len(items) == 0 {
		return errors.Stop("no items")
	}
	return nil
}

func b9Subtotal(m map[string]any) error {
	sum := 0.0
	for _, it := range m["items"].([]any) {
		item := it.(map[string]any)
		sum += item["price"].(float64) * item["qty"].(float64)
	}
	m["subtotal"] = sum
	return nil
}

func b9Discount(m map[string]any) error {
	d := 0.0
	if m["tier"] == "gold" {
		d = 0.1
	}
	m["discount"] = m["subtotal"].(float64) * d
	return nil
}

func b9Tax(m map[string]any) error {
	m["tax"] = (m["subtotal"].(float64) - m["discount"].(float64)) * 0.2
	return nil
}

func b9Total(m map[string]any) error {
	m["total"] = m["subtotal"].(float64) - m["discount"].(float64) + m["tax"].(float64)
	return nil
}

var b9Steps = []func(map[string]any) error{b9Validate, b9Subtotal, b9Discount, b9Tax, b9Total}

func b9Flow(tb testing.TB) *flow.Flow {
	var steps []flow.Service
	for i, fn := range b9Steps {
		steps = append(steps, flow.Step(fmt.Sprintf("s%d", i), func(_ context.Context, c *fc.Context) error {
			// The step works on the run's map as the bare loop does on its own.
			m := c.View()
			return fn(m)
		}))
	}
	f, err := flow.New("b9", steps...).Build()
	require.NoError(tb, err)
	return f
}

const b9Order = `{"items": [{"sku": "a", "price": 2.5, "qty": 2}, {"sku": "b", "price": 1, "qty": 3}], "tier": "gold"}`

// b9Publish fills a fresh stream WORK with n orders.
func b9Publish(tb testing.TB, js jetstream.JetStream, n int) {
	ctx := context.Background()
	_ = js.DeleteStream(ctx, "WORK")
	var err error
	for range 100 { // a stream just deleted may take a moment to go from the file store
		if _, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "WORK", Subjects: []string{"work.>"}, Retention: jetstream.WorkQueuePolicy, Duplicates: 2 * time.Minute}); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(tb, err)
	for i := range n {
		msg := natsgo.NewMsg("work.new")
		msg.Data = []byte(b9Order)
		msg.Header.Set(natsgo.MsgIdHdr, fmt.Sprintf("o-%d", i))
		for {
			if _, err := js.PublishMsgAsync(msg); err == nil {
				break
			} else if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				tb.Fatal(err)
			}
			<-js.PublishAsyncComplete() // the server is behind: let it catch up
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		tb.Fatal("publish did not complete")
	}
}

// BenchmarkB9 compares messages/s through a 5-step flow on channels fed
// by nats sources (1, 2 and 4 workers, each with its own connection,
// channel and memory store, sharing one durable consumer) with a bare
// JetStream pull-consumer loop per worker that decodes each message, runs
// the same five functions and acks, at the same concurrency. The server
// is embedded in the process (file storage). Run it with
// -benchtime=20000x: b.N messages are published before the timer starts.
func BenchmarkB9(b *testing.B) {
	srv := startServer(b, b.TempDir(), 0)
	defer stopServer(srv)
	nc, err := natsgo.Connect(srv.ClientURL())
	require.NoError(b, err)
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	require.NoError(b, err)
	for _, workers := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("svcflow/workers=%d", workers), func(b *testing.B) { benchSvcflow(b, srv, js, workers) })
		b.Run(fmt.Sprintf("bare/workers=%d", workers), func(b *testing.B) { benchBare(b, srv, js, workers) })
	}
}

func benchSvcflow(b *testing.B, srv *server.Server, js jetstream.JetStream, workers int) {
	b9Publish(b, js, b.N)
	f := b9Flow(b)
	var acked atomic.Int64
	var sources []*snats.Source
	var chans []*channel.Channel
	for w := range workers {
		sp := spec(srv.ClientURL())
		sp.Concurrency = 64
		src, err := snats.NewSource(fmt.Sprintf("w%d", w), sp, "", quiet)
		require.NoError(b, err)
		ch, err := channel.New(channel.Config{Name: fmt.Sprintf("w%d", w), Flow: f, Sources: []channel.Source{src},
			Store: store.NewMemory(store.WithMaxFinished(4096)), Logger: quiet})
		require.NoError(b, err)
		sources, chans = append(sources, src), append(chans, ch)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	for _, ch := range chans {
		require.NoError(b, ch.Start(context.Background()))
	}
	for acked.Load() < int64(b.N) {
		n := int64(0)
		for _, s := range sources {
			n += s.Stats().Acked.Load()
		}
		acked.Store(n)
		time.Sleep(time.Millisecond)
	}
	el, cpuEl := time.Since(start), cpuTime()-cpu
	b.StopTimer()
	for _, ch := range chans {
		require.NoError(b, ch.Stop(context.Background()))
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpuEl.Microseconds())/float64(b.N), "cpu-µs/msg")
}

func benchBare(b *testing.B, srv *server.Server, js jetstream.JetStream, workers int) {
	b9Publish(b, js, b.N)
	ctx := context.Background()
	_, err := js.CreateOrUpdateConsumer(ctx, "WORK", jetstream.ConsumerConfig{Durable: "workers", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxDeliver: 5, MaxAckPending: 1000})
	require.NoError(b, err)
	var acked atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	var its []jetstream.MessagesContext
	var conns []*natsgo.Conn
	for range workers {
		nc, err := natsgo.Connect(srv.ClientURL())
		require.NoError(b, err)
		conns = append(conns, nc)
		wjs, err := jetstream.New(nc)
		require.NoError(b, err)
		cons, err := wjs.Consumer(ctx, "WORK", "workers")
		require.NoError(b, err)
		it, err := cons.Messages(jetstream.PullMaxMessages(64))
		require.NoError(b, err)
		its = append(its, it)
		work := make(chan jetstream.Msg)
		for range 64 { // the same concurrency as the sources, a pool of workers
			wg.Go(func() {
				for msg := range work {
					var m map[string]any
					if err := json.Unmarshal(msg.Data(), &m); err != nil {
						_ = msg.Term()
						continue
					}
					for _, fn := range b9Steps {
						if err := fn(m); err != nil {
							break
						}
					}
					_ = msg.Ack()
					if acked.Add(1) == int64(b.N) {
						close(done)
					}
				}
			})
		}
		wg.Go(func() {
			defer close(work)
			for {
				msg, err := it.Next()
				if err != nil {
					return
				}
				work <- msg
			}
		})
	}
	<-done
	el, cpuEl := time.Since(start), cpuTime()-cpu
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpuEl.Microseconds())/float64(b.N), "cpu-µs/msg")
	for _, it := range its {
		it.Stop()
	}
	wg.Wait()
	for _, nc := range conns {
		nc.Close()
	}
}

// BenchmarkB9InFlightMemory measures the heap one message in flight takes
// in a nats-fed channel: 1,000 messages held in their flow at once (a
// step waits until all have arrived), heap in use before and then.
func BenchmarkB9InFlightMemory(b *testing.B) {
	srv := startServer(b, b.TempDir(), 0)
	defer stopServer(srv)
	nc, err := natsgo.Connect(srv.ClientURL())
	require.NoError(b, err)
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	require.NoError(b, err)
	const inflight = 1000
	for range b.N {
		b9Publish(b, js, inflight)
		var arrived atomic.Int64
		release := make(chan struct{})
		all := make(chan struct{})
		f, err := flow.New("hold", flow.Step("hold", func(ctx context.Context, c *fc.Context) error {
			if arrived.Add(1) == inflight {
				close(all)
			}
			<-release
			return nil
		})).Build()
		require.NoError(b, err)
		sp := spec(srv.ClientURL())
		sp.Concurrency, sp.MaxAckPending = inflight, 2*inflight
		src, err := snats.NewSource("mem", sp, "", quiet)
		require.NoError(b, err)
		ch, err := channel.New(channel.Config{Name: "mem", Flow: f, Sources: []channel.Source{src}, Store: store.NewMemory(), Logger: quiet, MaxInFlight: -1})
		require.NoError(b, err)
		var before, during runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		require.NoError(b, ch.Start(context.Background()))
		select {
		case <-all:
		case <-time.After(time.Minute):
			b.Fatalf("%d of %d messages in flight after a minute; source stats %+v", arrived.Load(), inflight, src.Stats().Delivered.Load())
		}
		runtime.GC()
		runtime.ReadMemStats(&during)
		close(release)
		require.NoError(b, ch.Stop(context.Background()))
		b.ReportMetric(float64(int64(during.HeapInuse)-int64(before.HeapInuse))/inflight, "heap-B/inflight-msg")
	}
}

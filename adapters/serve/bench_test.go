package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/httpsource"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// benchFlow is a 5-step order flow: validate, price, fork on the tier,
// discount, total.
func benchFlow() *flow.Flow {
	type item struct {
		Price float64 `json:"price"`
		Qty   int     `json:"qty"`
	}
	rate := func(name string, r float64) flow.Service {
		return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
			c.Set("rate", r)
			return nil
		}, flow.Provides(fc.Key[float64]("rate")))
	}
	return flow.New("order",
		flow.Func("validate", func(ctx context.Context, in struct{ Items []item }) (struct{}, error) {
			if len(in.Items) == 0 {
				return struct{}{}, errors.Stop("no items")
			}
			return struct{}{}, nil
		}),
		flow.Func("price", func(ctx context.Context, in struct{ Items []item }) (struct{ Subtotal float64 }, error) {
			var s float64
			for _, it := range in.Items {
				s += it.Price * float64(it.Qty)
			}
			return struct{ Subtotal float64 }{s}, nil
		}),
		flow.Fork("tier", flow.On("gold", rate("gold", 0.2)), flow.Default(rate("std", 0))),
		flow.Func("discount", func(ctx context.Context, in struct {
			Subtotal float64
			Rate     float64
		}) (struct{ Discount float64 }, error) {
			return struct{ Discount float64 }{in.Subtotal * in.Rate}, nil
		}),
		flow.Func("total", func(ctx context.Context, in struct{ Subtotal, Discount float64 }) (struct{ Total float64 }, error) {
			return struct{ Total float64 }{in.Subtotal - in.Discount}, nil
		}),
	).Input(fc.Any("items"), fc.Key[string]("tier")).MustBuild()
}

var benchBody = []byte(`{"tier": "gold", "items": [{"price": 2.5, "qty": 2}, {"price": 1, "qty": 3}]}`)

// loader sends POSTs from 32 concurrent keep-alive clients and records
// their latencies.
type loader struct {
	client *http.Client
	lat    []time.Duration
	busy   time.Duration
}

func newLoader() *loader {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	return &loader{client: &http.Client{Transport: tr}}
}

// send posts n requests to url, 32 at a time.
func (l *loader) send(b *testing.B, url string, n int) {
	const workers = 32
	lat := make([][]time.Duration, workers)
	next := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for range next {
				t0 := time.Now()
				resp, err := l.client.Post(url, "application/json", bytes.NewReader(benchBody))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	for range n {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	l.busy += time.Since(start)
	l.lat = append(l.lat, slices.Concat(lat...)...)
}

func (l *loader) report(b *testing.B, name string) float64 {
	slices.Sort(l.lat)
	rps := float64(len(l.lat)) / l.busy.Seconds()
	b.ReportMetric(rps, name+"-req/s")
	if len(l.lat) > 0 {
		b.ReportMetric(float64(l.lat[len(l.lat)*99/100].Microseconds()), name+"-p99-µs")
	}
	return rps
}

// startChannel serves benchFlow through an HTTP route, a channel with the
// memory store "memory:" gives (bounded), and its supervisor.
func startChannel(b *testing.B, ctx context.Context, noTrace bool) (url string, stop func()) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httpsource.NewServer(httpsource.Config{Addr: "127.0.0.1:0", Logger: quiet})
	route, err := srv.Route("POST", "/orders")
	if err != nil {
		b.Fatal(err)
	}
	ch, err := channel.New(channel.Config{Name: "orders", Flow: benchFlow(), Sources: []channel.Source{route},
		Store: store.NewMemory(store.WithMaxFinished(store.DefaultMaxFinished)), Logger: quiet, NoTrace: noTrace})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		b.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- srv.Serve(sctx) }()
	if err := ch.Start(sctx); err != nil {
		b.Fatal(err)
	}
	if err := srv.WaitReady(sctx); err != nil {
		b.Fatal(err)
	}
	return "http://" + srv.Addr() + "/orders", func() {
		_ = ch.Stop(context.Background())
		cancel()
		<-done
	}
}

// startBare serves benchFlow from a plain net/http handler.
func startBare(b *testing.B) (url string, stop func()) {
	f := benchFlow()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		c, err := fc.FromJSON(body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if err := f.RunContext(r.Context(), c); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: h}
	go func() { _ = hs.Serve(ln) }()
	return fmt.Sprintf("http://%s/orders", ln.Addr()), func() { _ = hs.Shutdown(context.Background()) }
}

// B7: requests per second through a channel (HTTP source + flow + memory
// store + supervisor, with and without traces) versus a bare net/http
// handler running the same flow. The three servers run side by side and
// take the load in alternating rounds, so drift of the machine hits them
// alike; ratio-* is channel / bare.
func BenchmarkB7HTTP(b *testing.B) {
	ctx := context.Background()
	chURL, stopCh := startChannel(b, ctx, false)
	defer stopCh()
	ntURL, stopNT := startChannel(b, ctx, true)
	defer stopNT()
	bareURL, stopBare := startBare(b)
	defer stopBare()
	ch, nt, bare := newLoader(), newLoader(), newLoader()
	const round = 1000
	b.ResetTimer()
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		ch.send(b, chURL, n)
		nt.send(b, ntURL, n)
		bare.send(b, bareURL, n)
	}
	b.StopTimer()
	bareRPS := bare.report(b, "bare")
	b.ReportMetric(ch.report(b, "channel")/bareRPS, "ratio-channel")
	b.ReportMetric(nt.report(b, "notrace")/bareRPS, "ratio-notrace")
}

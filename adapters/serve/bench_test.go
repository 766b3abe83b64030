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

// loadTest sends b.N POSTs from 32 concurrent keep-alive clients and reports
// requests/s and the latency quantiles.
func loadTest(b *testing.B, url string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	const workers = 32
	lat := make([][]time.Duration, workers)
	next := make(chan struct{})
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for range next {
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(benchBody))
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
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
		b.ReportMetric(float64(all[len(all)*50/100].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
}

// B7: a channel (HTTP source + flow + in-memory store keeping the last
// DefaultMaxFinished finished messages, as "memory:" does + supervisor) versus
// a bare net/http handler calling the same flow directly.
func BenchmarkB7HTTP(b *testing.B) {
	f := benchFlow()
	for _, variant := range []struct {
		name    string
		noTrace bool
	}{{"channel", false}, {"channel-notrace", true}} {
		b.Run(variant.name, func(b *testing.B) {
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			srv := httpsource.NewServer(httpsource.Config{Addr: "127.0.0.1:0", Logger: quiet})
			route, err := srv.Route("POST", "/orders")
			if err != nil {
				b.Fatal(err)
			}
			ch, err := channel.New(channel.Config{Name: "orders", Flow: f, Sources: []channel.Source{route},
				Store: store.NewMemory(store.WithMaxFinished(store.DefaultMaxFinished)), Logger: quiet, NoTrace: variant.noTrace})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			if err := srv.Listen(); err != nil {
				b.Fatal(err)
			}
			done := make(chan error)
			go func() { done <- srv.Serve(ctx) }()
			if err := ch.Start(ctx); err != nil {
				b.Fatal(err)
			}
			if err := srv.WaitReady(ctx); err != nil {
				b.Fatal(err)
			}
			loadTest(b, "http://"+srv.Addr()+"/orders")
			_ = ch.Stop(context.Background())
			cancel()
			<-done
		})
	}
	b.Run("bare", func(b *testing.B) {
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
		loadTest(b, fmt.Sprintf("http://%s/orders", ln.Addr()))
		_ = hs.Shutdown(context.Background())
	})
}

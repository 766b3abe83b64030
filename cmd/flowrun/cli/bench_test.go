package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/svcflow/svcflow/adapters/config"
	fc "github.com/svcflow/svcflow/context"
	ferrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// B6: the batch path of flowrun run --jsonl (decode a JSON record, run the
// flow, encode the output) through a 5-step flow (set, fork, set, stop-if,
// set), declared in YAML ("config") and composed in Go with flow.Step doing
// the same computations ("go"). One record per b.N:
//
//	go test -run '^$' -bench B6 -benchtime 1000000x ./cmd/flowrun/cli
//
// TestB6Ratio prints both rates and their ratio from one run when
// FLOWRUN_B6_RECORDS is set (e.g. 1000000).

func b6Config(tb testing.TB) *flow.Flow {
	cfg, err := config.Load([]string{"testdata/b6.yaml"})
	if err != nil {
		tb.Fatal(err)
	}
	f, _ := cfg.Flow("b6")
	return f
}

func b6Go(tb testing.TB) *flow.Flow {
	num := func(c *fc.Context, k string) (float64, error) {
		v, _ := c.Get(k)
		switch x := v.(type) {
		case float64:
			return x, nil
		case int:
			return float64(x), nil
		}
		return 0, fmt.Errorf("key %q: want a number, got %T", k, v)
	}
	rate := func(name string, r float64) flow.Service {
		return flow.Step(name, func(_ context.Context, c *fc.Context) error {
			c.Set("rate", r)
			return nil
		}, flow.Provides(fc.Any("rate")))
	}
	f, err := flow.New("b6",
		flow.Step("subtotal", func(_ context.Context, c *fc.Context) error {
			q, err := num(c, "qty")
			if err != nil {
				return err
			}
			p, err := num(c, "price")
			if err != nil {
				return err
			}
			c.Set("subtotal", q*p)
			return nil
		}, flow.Needs(fc.Any("qty"), fc.Any("price")), flow.Provides(fc.Any("subtotal"))),
		flow.Fork("tier", flow.On("gold", rate("gold", 0.2)), flow.Default(rate("none", 0))),
		flow.Step("total", func(_ context.Context, c *fc.Context) error {
			s, err := num(c, "subtotal")
			if err != nil {
				return err
			}
			r, err := num(c, "rate")
			if err != nil {
				return err
			}
			c.Set("total", s*(1-r))
			return nil
		}, flow.Needs(fc.Any("subtotal"), fc.Any("rate")), flow.Provides(fc.Any("total"))),
		flow.Step("check", func(_ context.Context, c *fc.Context) error {
			t, err := num(c, "total")
			if err != nil {
				return err
			}
			if t <= 0 {
				return ferrors.Stop("nothing to pay")
			}
			return nil
		}, flow.Needs(fc.Any("total"))),
		flow.Step("status", func(_ context.Context, c *fc.Context) error {
			c.Set("status", "priced")
			return nil
		}, flow.Provides(fc.Any("status"))),
	).Input(fc.Any("qty"), fc.Any("price"), fc.Any("tier")).Build()
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// b6Records returns n JSONL records, a few of them stopped (qty 0).
func b6Records(n int) []byte {
	var b bytes.Buffer
	tiers := []string{"gold", "silver", "bronze", "gold"}
	for i := range n {
		qty := 1 + i%7
		if i%50 == 49 {
			qty = 0
		}
		fmt.Fprintf(&b, `{"id":%d,"qty":%d,"price":%s,"tier":%q}`+"\n", i, qty, strconv.FormatFloat(1+float64(i%100)/4, 'f', -1, 64), tiers[i%4])
	}
	return b.Bytes()
}

func BenchmarkB6(b *testing.B) {
	flows := []struct {
		name string
		f    *flow.Flow
	}{{"config", b6Config(b)}, {"go", b6Go(b)}}
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		for _, fl := range flows {
			b.Run(fmt.Sprintf("%s/workers=%d", fl.name, workers), func(b *testing.B) {
				data := b6Records(b.N)
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				st, err := runBatch(context.Background(), fl.f, bytes.NewReader(data), io.Discard, batchOptions{workers: workers})
				el := time.Since(start)
				b.StopTimer()
				if err != nil || st.records != b.N || st.failed > 0 {
					b.Fatalf("batch: %+v, %v", st, err)
				}
				rate := float64(b.N) / el.Seconds()
				b.ReportMetric(rate, "records/s")
				b.ReportMetric(rate/float64(min(workers, runtime.NumCPU())), "records/s/core")
			})
		}
	}
}

// TestB6Ratio runs FLOWRUN_B6_RECORDS records through both flows on one
// worker, alternating three rounds each, and reports the best wall-clock
// rate and the rate per CPU-second used by the process (records/s per
// core), and their ratios (target: config >= 0.8x go).
func TestB6Ratio(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FLOWRUN_B6_RECORDS"))
	if n <= 0 {
		t.Skip("set FLOWRUN_B6_RECORDS=1000000 to measure B6")
	}
	data := b6Records(n)
	flows := []struct {
		name string
		f    *flow.Flow
	}{{"config", b6Config(t)}, {"go", b6Go(t)}}
	wall, cpu := map[string]float64{}, map[string]float64{}
	for range 3 {
		for _, fl := range flows {
			runtime.GC()
			c0 := cpuTime()
			start := time.Now()
			st, err := runBatch(context.Background(), fl.f, bytes.NewReader(data), io.Discard, batchOptions{workers: 1})
			el := time.Since(start)
			used := cpuTime() - c0
			if used <= 0 {
				used = el // no CPU clock here: count wall time
			}
			if err != nil || st.records != n {
				t.Fatal(st, err)
			}
			wall[fl.name] = max(wall[fl.name], float64(n)/el.Seconds())
			cpu[fl.name] = max(cpu[fl.name], float64(n)/used.Seconds())
		}
	}
	t.Logf("B6 %d records, 1 worker: config %.0f records/s (%.0f per CPU-second), go %.0f records/s (%.0f per CPU-second); ratio %.2f wall, %.2f per core",
		n, wall["config"], cpu["config"], wall["go"], cpu["go"], wall["config"]/wall["go"], cpu["config"]/cpu["go"])
	if cpu["config"]/cpu["go"] < 0.8 {
		t.Errorf("config flow below 0.8x the Go flow")
	}
}

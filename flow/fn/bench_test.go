package fn_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/flow/fn"
)

// B15: the toolkit's Map, Filter and GroupBy over 1,000 elements versus
// the same work written by hand as a flow.Step (read the slice, loop,
// write the result), in the same run: toolkit/x over handwritten/x is the
// ratio the README reports (target <= 1.3).
func BenchmarkB15Toolkit(b *testing.B) {
	data := make([]item, 1000)
	for i := range data {
		data[i] = item{SKU: "sku" + strconv.Itoa(i%37), Qty: i % 5, Price: float64(i%13) + 0.5}
	}
	totals := fc.Key[[]float64]("totals")
	bySKU := fc.Key[map[string][]item]("by_sku")
	hand := map[string]flow.Service{
		"map": flow.Step("hand_map", func(_ context.Context, c *fc.Context) error {
			in, _ := c.Get("items")
			s := in.([]item)
			out := make([]float64, len(s))
			for i, it := range s {
				out[i] = it.Price * float64(it.Qty)
			}
			c.Set("totals", out)
			return nil
		}),
		"filter": flow.Step("hand_filter", func(_ context.Context, c *fc.Context) error {
			in, _ := c.Get("items")
			s := in.([]item)
			out := make([]item, 0, len(s))
			for _, it := range s {
				if it.Qty > 0 {
					out = append(out, it)
				}
			}
			c.Set("out", out)
			return nil
		}),
		"group_by": flow.Step("hand_group_by", func(_ context.Context, c *fc.Context) error {
			in, _ := c.Get("items")
			out := map[string][]item{}
			for _, it := range in.([]item) {
				out[it.SKU] = append(out[it.SKU], it)
			}
			c.Set("by_sku", out)
			return nil
		}),
	}
	kit := map[string]flow.Service{
		"map":      fn.Map("map", items, totals, func(it item) float64 { return it.Price * float64(it.Qty) }),
		"filter":   fn.Filter("filter", items, out, func(it item) bool { return it.Qty > 0 }),
		"group_by": fn.GroupBy("group_by", items, bySKU, func(it item) string { return it.SKU }),
	}
	ctx := context.Background()
	for _, op := range []string{"map", "filter", "group_by"} {
		for _, impl := range []struct {
			name string
			svc  flow.Service
		}{{"handwritten", hand[op]}, {"toolkit", kit[op]}} {
			b.Run(impl.name+"/"+op, func(b *testing.B) {
				c := fc.FromMap(map[string]any{"items": data})
				b.ReportAllocs()
				for b.Loop() {
					if err := impl.svc.Call(ctx, c); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkB15Ratio measures the same pairs as B15Toolkit interleaved,
// round after round, and reports the ratio of the fastest toolkit round
// to the fastest hand-written one (x-ratio metrics): on a loaded machine
// the minimum of interleaved rounds is a steadier ratio than separate
// averages.
func BenchmarkB15Ratio(b *testing.B) {
	data := make([]item, 1000)
	for i := range data {
		data[i] = item{SKU: "sku" + strconv.Itoa(i%37), Qty: i % 5, Price: float64(i%13) + 0.5}
	}
	ctx := context.Background()
	pairs := []struct {
		name      string
		hand, kit flow.Service
	}{
		{"map", flow.Step("hand_map", func(_ context.Context, c *fc.Context) error {
			in, _ := c.Get("items")
			s := in.([]item)
			out := make([]float64, len(s))
			for i, it := range s {
				out[i] = it.Price * float64(it.Qty)
			}
			c.Set("totals", out)
			return nil
		}), fn.Map("map", items, fc.Key[[]float64]("totals"), func(it item) float64 { return it.Price * float64(it.Qty) })},
		{"filter", flow.Step("hand_filter", func(_ context.Context, c *fc.Context) error {
			in, _ := c.Get("items")
			s := in.([]item)
			out := make([]item, 0, len(s))
			for _, it := range s {
				if it.Qty > 0 {
					out = append(out, it)
				}
			}
			c.Set("out", out)
			return nil
		}), fn.Filter("filter", items, out, func(it item) bool { return it.Qty > 0 })},
		{"group_by", flow.Step("hand_group_by", func(_ context.Context, c *fc.Context) error {
			in, _ := c.Get("items")
			res := map[string][]item{}
			for _, it := range in.([]item) {
				res[it.SKU] = append(res[it.SKU], it)
			}
			c.Set("by_sku", res)
			return nil
		}), fn.GroupBy("group_by", items, fc.Key[map[string][]item]("by_sku"), func(it item) string { return it.SKU })},
	}
	round := func(svc flow.Service, c *fc.Context, n int) time.Duration {
		start := time.Now()
		for range n {
			if err := svc.Call(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	for b.Loop() {
		for _, p := range pairs {
			c := fc.FromMap(map[string]any{"items": data})
			bestHand, bestKit := time.Duration(1<<62), time.Duration(1<<62)
			for range 30 {
				bestHand = min(bestHand, round(p.hand, c, 20))
				bestKit = min(bestKit, round(p.kit, c, 20))
			}
			b.ReportMetric(float64(bestKit)/float64(bestHand), p.name+"-x-ratio")
			b.ReportMetric(float64(bestHand)/20, p.name+"-hand-ns")
		}
	}
}

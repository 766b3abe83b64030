package flow_test

import (
	"context"
	"maps"
	"strconv"
	"sync"
	"testing"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// spin is CPU-bound work that the compiler cannot remove.
func spin(n int) int {
	x := 1
	for i := range n {
		x = x*31 + i
	}
	return x
}

var sink int

// B4: All of 8 CPU-bound branches versus the same work in sequence (the
// speedup tends to GOMAXPROCS), and All of 8 trivial branches versus a
// hand-written sync.WaitGroup fan-out that isolates and merges the same
// writes (the engine's own overhead).
func BenchmarkB4All(b *testing.B) {
	const work = 200_000
	cpu := func(i int) flow.Service {
		key := "r" + strconv.Itoa(i)
		return flow.Step(key, func(ctx context.Context, c *fc.Context) error {
			c.Set(key, spin(work))
			return nil
		})
	}
	var cpuSteps []flow.Service
	for i := range 8 {
		cpuSteps = append(cpuSteps, cpu(i))
	}
	ctx := context.Background()
	par := flow.New("par", flow.All(cpuSteps...)).MustBuild()
	b.Run("cpu/all", func(b *testing.B) {
		for b.Loop() {
			if _, err := par.Run(ctx, benchInput); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cpu/sequence", func(b *testing.B) {
		for b.Loop() {
			m := maps.Clone(benchInput)
			for i := range 8 {
				m["r"+strconv.Itoa(i)] = spin(work)
			}
		}
	})

	trivial := func(i int) flow.Service {
		key := benchKeys[i]
		return flow.Step(key, func(ctx context.Context, c *fc.Context) error {
			c.Set(key, i)
			return nil
		})
	}
	var trivialSteps []flow.Service
	for i := range 8 {
		trivialSteps = append(trivialSteps, trivial(i))
	}
	triv := flow.New("triv", flow.All(trivialSteps...)).MustBuild()
	b.Run("trivial/all", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := triv.Run(ctx, benchInput); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The baseline does what All guarantees, by hand: each goroutine works
	// on its own copy of the input (no shared writes), results are merged
	// back in declaration order.
	b.Run("trivial/waitgroup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := maps.Clone(benchInput)
			copies := make([]map[string]any, 8)
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					own := maps.Clone(m)
					own[benchKeys[i]] = i
					copies[i] = own
				})
			}
			wg.Wait()
			for i, own := range copies {
				m[benchKeys[i]] = own[benchKeys[i]]
			}
		}
	})
}

// B5: three no-op middlewares around every step of a 10-step flow, versus
// the same flow without middleware. Per step per middleware overhead =
// (mw - plain) / 30.
func BenchmarkB5Middleware(b *testing.B) {
	steps := func() []flow.Service {
		s := make([]flow.Service, 10)
		for i := range s {
			in, out := benchKeys[i], benchKeys[i+1]
			s[i] = flow.Step("s"+strconv.Itoa(i), func(ctx context.Context, c *fc.Context) error {
				v, _ := c.Get(in)
				n, _ := v.(int)
				c.Set(out, n+1)
				return nil
			})
		}
		return s
	}
	noop := func(next flow.Handler) flow.Handler {
		return func(ctx context.Context, s *flow.StepInfo, c *fc.Context) error { return next(ctx, s, c) }
	}
	plain := flow.New("plain", steps()...).MustBuild()
	withMW := flow.New("mw", steps()...).Use(noop, noop, noop).MustBuild()
	ctx := context.Background()
	c := fc.FromMap(benchInput)
	c.Set("k1", 0) // pre-size: every run writes existing keys only
	for _, k := range benchKeys {
		c.Set(k, 0)
	}
	b.Run("plain", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := plain.RunContext(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("middleware3", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := withMW.RunContext(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

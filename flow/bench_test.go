package flow_test

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"testing"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// The benchmarks compare the engine with hand-written Go doing the same map
// work in the same run; README reports the ratios. Values stay below 256 so
// boxing an int never allocates, in both.

var benchKeys = func() []string {
	k := make([]string, 11)
	for i := range k {
		k[i] = "k" + strconv.Itoa(i)
	}
	return k
}()

var benchInput = map[string]any{"k0": 1, "other": "x", "customer": map[string]any{"tier": "gold"}}

// B1: a 10-step Step flow, each step reads one int key and writes the next.
func BenchmarkB1Steps(b *testing.B) {
	steps := make([]flow.Service, 10)
	for i := range steps {
		in, out := benchKeys[i], benchKeys[i+1]
		steps[i] = flow.Step("s"+strconv.Itoa(i), func(ctx context.Context, c *fc.Context) error {
			v, ok := c.Get(in)
			n, isInt := v.(int)
			if !ok || !isInt {
				return errors.New("bad input")
			}
			c.Set(out, n+1)
			return nil
		})
	}
	f := flow.New("b1", steps...).MustBuild()
	ctx := context.Background()
	b.Run("flow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c := fc.FromMap(benchInput)
			if err := f.RunContext(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m := maps.Clone(benchInput)
			for i := range 10 {
				n, ok := m[benchKeys[i]].(int)
				if !ok {
					b.Fatal("bad input")
				}
				m[benchKeys[i+1]] = n + 1
			}
		}
	})
}

type (
	t0  struct{ K0 int }
	t1  struct{ K1 int }
	t2  struct{ K2 int }
	t3  struct{ K3 int }
	t4  struct{ K4 int }
	t5  struct{ K5 int }
	t6  struct{ K6 int }
	t7  struct{ K7 int }
	t8  struct{ K8 int }
	t9  struct{ K9 int }
	t10 struct{ K10 int }
)

// B2: the same with typed Func services.
func BenchmarkB2Funcs(b *testing.B) {
	f := flow.New("b2",
		flow.Func("s0", func(_ context.Context, in t0) (t1, error) { return t1{in.K0 + 1}, nil }),
		flow.Func("s1", func(_ context.Context, in t1) (t2, error) { return t2{in.K1 + 1}, nil }),
		flow.Func("s2", func(_ context.Context, in t2) (t3, error) { return t3{in.K2 + 1}, nil }),
		flow.Func("s3", func(_ context.Context, in t3) (t4, error) { return t4{in.K3 + 1}, nil }),
		flow.Func("s4", func(_ context.Context, in t4) (t5, error) { return t5{in.K4 + 1}, nil }),
		flow.Func("s5", func(_ context.Context, in t5) (t6, error) { return t6{in.K5 + 1}, nil }),
		flow.Func("s6", func(_ context.Context, in t6) (t7, error) { return t7{in.K6 + 1}, nil }),
		flow.Func("s7", func(_ context.Context, in t7) (t8, error) { return t8{in.K7 + 1}, nil }),
		flow.Func("s8", func(_ context.Context, in t8) (t9, error) { return t9{in.K8 + 1}, nil }),
		flow.Func("s9", func(_ context.Context, in t9) (t10, error) { return t10{in.K9 + 1}, nil }),
	).Input(fc.Key[int]("k0")).MustBuild()
	ctx := context.Background()
	b.Run("flow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c := fc.FromMap(benchInput)
			if err := f.RunContext(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The baseline is typed Go code written by hand: read each key, assert
	// its type (the check a Func makes), compute, write the next.
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		step := func(m map[string]any, in, out string) error {
			v, ok := m[in]
			if !ok {
				return errors.New("missing " + in)
			}
			n, ok := v.(int)
			if !ok {
				return errors.New("bad type " + in)
			}
			m[out] = n + 1
			return nil
		}
		for b.Loop() {
			m := maps.Clone(benchInput)
			for i := range 10 {
				if err := step(m, benchKeys[i], benchKeys[i+1]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// B3: Fork on an expr key with 4 cases.
func BenchmarkB3Fork(b *testing.B) {
	hit := 0
	noop := func(name string) flow.Service {
		return flow.Step(name, func(ctx context.Context, c *fc.Context) error { hit++; return nil })
	}
	f := flow.New("b3", flow.Fork("customer.tier",
		flow.On("gold", noop("gold")),
		flow.On("silver", noop("silver")),
		flow.On("bronze", noop("bronze")),
		flow.On("iron", noop("iron")),
	)).Input(fc.Any("customer")).MustBuild()
	ctx := context.Background()
	c := fc.FromMap(benchInput)
	b.Run("flow", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := f.RunContext(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		cases := []func(){func() { hit++ }, func() { hit++ }, func() { hit++ }, func() { hit++ }}
		for b.Loop() {
			cust, _ := c.View()["customer"].(map[string]any)
			tier, _ := cust["tier"].(string)
			switch tier {
			case "gold":
				cases[0]()
			case "silver":
				cases[1]()
			case "bronze":
				cases[2]()
			case "iron":
				cases[3]()
			default:
				b.Fatal("no case")
			}
		}
	})
}

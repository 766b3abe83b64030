package flow_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/provide"
)

// b14Flows returns two one-step flows doing the same work with a Pricer:
// one given it by the container (a provided singleton injected into the
// Func's input), one capturing it in a closure.
func b14Flows(tb testing.TB) (injected, closure *flow.Flow) {
	p := vatPricer{&Rates{VAT: 0.25}}
	c := provide.New()
	require.NoError(tb, provide.Value[Pricer](c, p))
	injected = flow.New("b14", flow.Func("gross", func(ctx context.Context, in struct {
		Net    float64
		Pricer Pricer `provide:""`
	}) (struct{ Gross float64 }, error) {
		return struct{ Gross float64 }{in.Pricer.Price(in.Net)}, nil
	})).Input(fc.Key[float64]("net")).Provide(c).MustBuild()
	var captured Pricer = p
	closure = flow.New("b14", flow.Func("gross", func(ctx context.Context, in struct{ Net float64 }) (struct{ Gross float64 }, error) {
		return struct{ Gross float64 }{captured.Price(in.Net)}, nil
	})).Input(fc.Key[float64]("net")).MustBuild()
	return injected, closure
}

// B14: a provided singleton injected into a Func versus a closure
// capturing the same value. One run of a one-step flow on a reused
// context is one call of the step.
func BenchmarkB14Provided(b *testing.B) {
	injected, closure := b14Flows(b)
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		f    *flow.Flow
	}{{"injected", injected}, {"closure", closure}} {
		b.Run(bc.name, func(b *testing.B) {
			c := fc.FromMap(map[string]any{"net": 8.0})
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.f.RunContext(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestProvidedInjectionAllocations: injecting a singleton allocates
// nothing more than the closure does.
func TestProvidedInjectionAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items: allocation counts vary")
	}
	injected, closure := b14Flows(t)
	ctx := context.Background()
	c := fc.FromMap(map[string]any{"net": 8.0})
	require.NoError(t, injected.RunContext(ctx, c)) // constructs the singleton
	allocs := func(f *flow.Flow) float64 {
		return testing.AllocsPerRun(200, func() {
			if err := f.RunContext(ctx, c); err != nil {
				t.Fatal(err)
			}
		})
	}
	assert.Equal(t, allocs(closure), allocs(injected))
	assert.Equal(t, 10.0, c.View()["gross"])
}

package flow_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/provide"
)

// Rates is a singleton dependency; Audit a per-run one.
type Rates struct{ VAT float64 }

type Audit struct {
	id     int
	mu     sync.Mutex
	lines  []string
	closed *[]string
}

func (a *Audit) Close() error { *a.closed = append(*a.closed, fmt.Sprint("audit ", a.id)); return nil }

type Pricer interface{ Price(net float64) float64 }

type vatPricer struct{ r *Rates }

func (p vatPricer) Price(net float64) float64 { return net * (1 + p.r.VAT) }

// gross is a Func whose input takes a provided interface value.
var gross = flow.Func("gross", func(ctx context.Context, in struct {
	Net    float64
	Pricer Pricer `provide:""`
}) (struct{ Gross float64 }, error) {
	return struct{ Gross float64 }{in.Pricer.Price(in.Net)}, nil
})

// TestProvidedSingletonOnceAcrossConcurrentRuns: a singleton is
// constructed once however many runs want it at once.
func TestProvidedSingletonOnceAcrossConcurrentRuns(t *testing.T) {
	var made atomic.Int64
	c := provide.New()
	require.NoError(t, provide.Register[*Rates](c, func() (*Rates, error) { made.Add(1); return &Rates{VAT: 0.25}, nil }))
	require.NoError(t, provide.Register[Pricer](c, func(r *Rates) Pricer { made.Add(10); return vatPricer{r} }))
	f := flow.New("price", gross).Input(fc.Key[float64]("net")).Provide(c).MustBuild()
	var wg sync.WaitGroup
	errs := make([]error, 1000)
	for i := range errs {
		wg.Go(func() {
			out, err := f.Run(t.Context(), map[string]any{"net": 8.0})
			if err == nil && out.View()["gross"] != 10.0 {
				err = fmt.Errorf("gross %v", out.View()["gross"])
			}
			errs[i] = err
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	assert.Equal(t, int64(11), made.Load(), "each singleton constructed once")
	require.NoError(t, c.Close(t.Context()))
}

// TestProvidedPerRun: a per-run value is constructed once per run, shared
// by the run's steps (nested flows included), and closed after the run,
// in reverse order of construction.
func TestProvidedPerRun(t *testing.T) {
	var closed []string
	var n atomic.Int64
	c := provide.New()
	require.NoError(t, provide.Register[*Audit](c, func() *Audit {
		return &Audit{id: int(n.Add(1)), closed: &closed}
	}, provide.PerRun()))
	require.NoError(t, provide.Register[*Rates](c, func(a *Audit) *Rates {
		a.lines = append(a.lines, "rates")
		return &Rates{VAT: 0.1}
	}, provide.PerRun(), provide.WithClose(func(ctx context.Context, r *Rates) error {
		closed = append(closed, "rates")
		return nil
	})))
	type in struct {
		Audit *Audit `provide:""`
		Rates *Rates `provide:""`
	}
	step := func(name string) flow.Service {
		return flow.Func(name, func(ctx context.Context, in in) (map[string]any, error) {
			in.Audit.mu.Lock()
			defer in.Audit.mu.Unlock()
			in.Audit.lines = append(in.Audit.lines, name)
			return map[string]any{name: in.Audit.id}, nil
		})
	}
	sub := flow.New("sub", step("c")).Provide(c).MustBuild()
	f := flow.New("run", step("a"), flow.All(step("b"), sub)).Provide(c).MustBuild()
	out, err := f.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"a": 1, "b": 1, "c": 1}, out.View(), "one Audit for the run, nested flow included")
	assert.Equal(t, []string{"rates", "audit 1"}, closed, "closed after the run, in reverse order of construction")
	out, err = f.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, 2, out.View()["a"], "a new one for the next run")
	assert.Len(t, closed, 4)
}

// TestProvidedBuildErrors: a missing provider, a cycle, a singleton on a
// per-run value, and no container are build errors naming the step and
// the type.
func TestProvidedBuildErrors(t *testing.T) {
	type A struct{}
	type B struct{}
	c := provide.New()
	require.NoError(t, provide.Register[*A](c, func(*B) *A { return &A{} }))
	require.NoError(t, provide.Register[*B](c, func(*A) *B { return &B{} }))
	require.NoError(t, provide.Register[*Audit](c, func() *Audit { return &Audit{} }, provide.PerRun()))
	require.NoError(t, provide.Register[*Rates](c, func(*Audit) *Rates { return &Rates{} }))
	takes := func(name string, fn any) flow.Service {
		switch fn.(type) {
		case *A:
			return flow.Func(name, func(ctx context.Context, in struct {
				X *A `provide:""`
			}) (struct{}, error) {
				return struct{}{}, nil
			})
		case *Rates:
			return flow.Func(name, func(ctx context.Context, in struct {
				X *Rates `provide:""`
			}) (struct{}, error) {
				return struct{}{}, nil
			})
		}
		return flow.Func(name, func(ctx context.Context, in struct {
			P Pricer `provide:"eu"`
		}) (struct{}, error) {
			return struct{}{}, nil
		})
	}
	_, err := flow.New("f", takes("missing", nil), takes("cycle", (*A)(nil)), takes("scope", (*Rates)(nil))).Provide(c).Build()
	require.Error(t, err)
	assert.ErrorContains(t, err, `flow "f": step "missing": field P: provided flow_test.Pricer (named "eu"): no provider`)
	assert.ErrorContains(t, err, `flow "f": step "cycle": field X: provided *flow_test.A -> *flow_test.B -> *flow_test.A: dependency cycle`)
	assert.ErrorContains(t, err, `flow "f": step "scope": field X: provided *flow_test.Rates -> *flow_test.Audit: scope mismatch: a singleton cannot depend on a per-run value`)
	assert.ErrorIs(t, err, provide.ErrMissing)
	assert.ErrorIs(t, err, provide.ErrCycle)
	var be *flow.BuildError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, "missing", be.Step)

	_, err = flow.New("f", gross).Input(fc.Key[float64]("net")).Build()
	assert.ErrorContains(t, err, `step "gross": field Pricer: provided flow_test.Pricer: no provider (the flow has no container: Builder.Provide)`)

	_, err = flow.New("f", flow.Func("bad", func(ctx context.Context, in struct{}) (struct {
		X int `provide:""`
	}, error) {
		return struct {
			X int `provide:""`
		}{}, nil
	})).Build()
	assert.ErrorContains(t, err, "a provide tag applies to inputs only")
}

// TestProvidedNamedAndErrors: a named provider; a constructor's error is
// the step's, and the next run tries again.
func TestProvidedNamedAndErrors(t *testing.T) {
	c := provide.New()
	fail := true
	require.NoError(t, provide.Register[Pricer](c, func() (Pricer, error) {
		if fail {
			return nil, errors.New("rates service down")
		}
		return vatPricer{&Rates{VAT: 1}}, nil
	}, provide.Named("eu")))
	f := flow.New("f", flow.Named("eu_gross", flow.Func("g", func(ctx context.Context, in struct {
		Net float64
		P   Pricer `provide:"eu"`
	}) (struct{ Gross float64 }, error) {
		return struct{ Gross float64 }{in.P.Price(in.Net)}, nil
	}))).Input(fc.Key[float64]("net")).Provide(c).MustBuild()
	_, err := f.Run(t.Context(), map[string]any{"net": 1.0})
	assert.ErrorContains(t, err, `flow "f": step "eu_gross": field P: provided flow_test.Pricer (named "eu"): rates service down`)
	fail = false
	out, err := f.Run(t.Context(), map[string]any{"net": 1.0})
	require.NoError(t, err)
	assert.Equal(t, 2.0, out.View()["gross"])
}

// TestProvidedFieldShapes: singletons of one-word, two-word and other
// types are copied into their fields, and the fields beside them keep
// their values, call after call.
func TestProvidedFieldShapes(t *testing.T) {
	type Limits struct {
		Max  int
		Name string
	}
	c := provide.New()
	require.NoError(t, provide.Value(c, &Rates{VAT: 0.5}))
	require.NoError(t, provide.Value[Pricer](c, vatPricer{&Rates{VAT: 1}}))
	require.NoError(t, provide.Value(c, Limits{Max: 7, Name: "eu"}))
	require.NoError(t, provide.Value(c, map[string]int{"x": 1}))
	f := flow.New("shapes", flow.Func("s", func(ctx context.Context, in struct {
		A      int
		Rates  *Rates `provide:""`
		B      int
		P      Pricer `provide:""`
		C      int
		Limits Limits `provide:""`
		D      int
		M      map[string]int `provide:""`
		E      int
	}) (map[string]any, error) {
		return map[string]any{"sum": in.A + in.B + in.C + in.D + in.E, "vat": in.Rates.VAT, "price": in.P.Price(1),
			"limit": in.Limits.Name, "x": in.M["x"]}, nil
	})).Input(fc.Key[int]("a"), fc.Key[int]("b"), fc.Key[int]("c"), fc.Key[int]("d"), fc.Key[int]("e")).Provide(c).MustBuild()
	for i := range 3 {
		out, err := f.Run(t.Context(), map[string]any{"a": 1, "b": 10, "c": 100, "d": 1000, "e": 10000 + i})
		require.NoError(t, err)
		assert.Equal(t, map[string]any{"sum": 11111 + i, "vat": 0.5, "price": 2.0, "limit": "eu", "x": 1},
			map[string]any{"sum": out.View()["sum"], "vat": out.View()["vat"], "price": out.View()["price"], "limit": out.View()["limit"], "x": out.View()["x"]})
	}
}

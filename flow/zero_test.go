package flow_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// TestZeroFlow: a Flow that Build did not make runs nothing: every method
// that returns an error returns one wrapping ErrNotBuilt, the others an
// empty value; none panics and none succeeds.
func TestZeroFlow(t *testing.T) {
	for name, f := range map[string]*flow.Flow{"zero": {}, "nil": nil} {
		t.Run(name, func(t *testing.T) {
			notBuilt := func(t *testing.T, err error) {
				t.Helper()
				require.ErrorIs(t, err, flow.ErrNotBuilt)
				assert.Contains(t, err.Error(), "make one with flow.New(...).Build()")
			}
			ctx := t.Context()
			t.Run("Name", func(t *testing.T) { assert.Empty(t, f.Name()) })
			t.Run("Contract", func(t *testing.T) { assert.Equal(t, flow.Contract{}, f.Contract()) })
			t.Run("Graph", func(t *testing.T) {
				assert.Nil(t, f.Graph())
				assert.NotPanics(t, func() { _ = f.Graph().DOT() })
			})
			t.Run("Run", func(t *testing.T) {
				c, err := f.Run(ctx, map[string]any{"a": 1})
				notBuilt(t, err)
				assert.Equal(t, map[string]any{"a": 1}, c.Map(), "the input is left as it was")
			})
			t.Run("RunContext", func(t *testing.T) { notBuilt(t, f.RunContext(ctx, fc.New())) })
			t.Run("RunContext with options", func(t *testing.T) {
				var tr flow.Trace
				notBuilt(t, f.RunContext(ctx, fc.New(), flow.WithTrace(&tr), flow.From("a")))
			})
			t.Run("Call", func(t *testing.T) { notBuilt(t, f.Call(ctx, fc.New())) })
			t.Run("Init", func(t *testing.T) { notBuilt(t, f.Init(ctx)) })
			t.Run("Close", func(t *testing.T) { notBuilt(t, f.Close(ctx)) })
			t.Run("Wait", func(t *testing.T) { notBuilt(t, f.Wait(ctx)) })
		})
	}
}

// TestZeroFlowAsStepDoesNotBuild: a flow holding a zero Flow as a step is
// a build error, not a run that does nothing.
func TestZeroFlowAsStepDoesNotBuild(t *testing.T) {
	_, err := flow.New("outer", &flow.Flow{}).Build()
	require.ErrorIs(t, err, flow.ErrNotBuilt)
	var be *flow.BuildError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, "outer", be.Flow)
}

// TestZeroCombinators: a Group, Iter, Loop or SagaGroup that its
// constructor did not make fails its Call with ErrNotBuilt (after any of
// its setters, too, and as a nil pointer), and a flow holding one does not
// build.
func TestZeroCombinators(t *testing.T) {
	tests := []struct {
		typ        string
		zero       flow.Service // the zero value
		name       string       // its Name
		configured flow.Service // a zero value after every setter
		nilValue   flow.Service
		cons       string
	}{
		{"Group", &flow.Group{}, "all", (&flow.Group{}).Limit(2), (*flow.Group)(nil), "All"},
		{"Iter", &flow.Iter{}, "each()", (&flow.Iter{}).As("x").Index("i").Collect("a", "b").Concurrency(2), (*flow.Iter)(nil), "Each"},
		{"Loop", &flow.Loop{}, "until()", (&flow.Loop{}).MaxLoops(3), (*flow.Loop)(nil), "Until"},
		{"SagaGroup", &flow.SagaGroup{}, "saga", (&flow.SagaGroup{}).CompensationTimeout(1), (*flow.SagaGroup)(nil), "Saga"},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			assert.Equal(t, tt.name, tt.zero.Name())
			for _, svc := range []flow.Service{tt.zero, tt.configured, tt.nilValue} {
				c := fc.FromMap(map[string]any{"a": 1})
				err := svc.Call(t.Context(), c)
				require.ErrorIs(t, err, flow.ErrNotBuilt)
				assert.EqualError(t, err, "flow: not built: a zero "+tt.typ+"; make one with "+tt.cons)
				assert.Equal(t, map[string]any{"a": 1}, c.Map())
			}
			for _, svc := range []flow.Service{tt.zero, tt.configured} {
				_, err := flow.New("f", svc).Input(fc.Any("a")).Build()
				var be *flow.BuildError
				require.ErrorAs(t, err, &be, "a zero %s in a flow does not build", tt.typ)
			}
		})
	}
}

// TestConstructedCombinatorsStillRun: the zero-value checks do not get in
// the way of combinators made by their constructors.
func TestConstructedCombinatorsStillRun(t *testing.T) {
	var runs atomic.Int32
	step := func(name string) flow.Service {
		return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
			runs.Add(1)
			c.Set("done", true)
			return nil
		})
	}
	for _, svc := range []flow.Service{
		flow.All(step("a")),
		flow.Each("items", step("b")),
		flow.Until("done", step("c")),
		flow.Saga(step("d")),
	} {
		before := runs.Load()
		c := fc.FromMap(map[string]any{"items": []any{1}, "done": false})
		require.NoError(t, svc.Call(t.Context(), c), svc.Name())
		assert.Equal(t, before+1, runs.Load(), svc.Name())
	}
}

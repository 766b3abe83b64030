package flow_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// writer sets key to v and deletes del, declaring what it provides.
func writer(name, key string, v any) flow.Service {
	return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
		c.Set(key, v)
		return nil
	}, flow.Provides(fc.Any(key)))
}

func failing(name string, err error) flow.Service {
	return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
		c.Set("partial", true)
		return err
	})
}

func TestShapes(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name   string
		step   flow.Service
		input  map[string]any
		want   map[string]any
		absent []string
		err    error
	}{
		{name: "passthrough discards writes", step: flow.Passthrough(writer("w", "x", 1)),
			input: map[string]any{"a": 1}, want: map[string]any{"a": 1}, absent: []string{"x"}},
		{name: "passthrough step reads earlier keys", step: flow.Passthrough(flow.Step("r", func(ctx context.Context, c *fc.Context) error {
			if v, _ := c.Get("a"); v != 1 {
				return errors.New("a not seen")
			}
			c.Set("a", 2)
			return nil
		})), input: map[string]any{"a": 1}, want: map[string]any{"a": 1}},
		{name: "passthrough keeps the error", step: flow.Passthrough(failing("f", boom)),
			input: map[string]any{}, absent: []string{"partial"}, err: boom},
		{name: "store_input_as copies the context before the step", step: flow.StoreInputAs(writer("w", "a", 2), "before"),
			input: map[string]any{"a": 1, "b": "x"}, want: map[string]any{"a": 2, "before": map[string]any{"a": 1, "b": "x"}}},
		{name: "the step sees its stored input", step: flow.StoreInputAs(flow.Step("r", func(ctx context.Context, c *fc.Context) error {
			in, _ := c.Get("in")
			c.Set("seen", in.(map[string]any)["a"])
			return nil
		}), "in"), input: map[string]any{"a": 7}, want: map[string]any{"seen": 7}},
		{name: "store_output_as holds the writes", step: flow.StoreOutputAs(writer("w", "x", 3), "out"),
			input: map[string]any{"a": 1}, want: map[string]any{"x": 3, "out": map[string]any{"x": 3}}},
		{name: "store_output_as on a failure stores nothing", step: flow.StoreOutputAs(failing("f", boom), "out"),
			input: map[string]any{}, want: map[string]any{"partial": true}, absent: []string{"out"}, err: boom},
		{name: "passthrough with store_output_as keeps only the output key", step: flow.Passthrough(flow.StoreOutputAs(writer("w", "x", 3), "out")),
			input: map[string]any{}, want: map[string]any{"out": map[string]any{"x": 3}}, absent: []string{"x"}},
		{name: "in the other order too", step: flow.StoreOutputAs(flow.Passthrough(writer("w", "x", 3)), "out"),
			input: map[string]any{}, want: map[string]any{"out": map[string]any{"x": 3}}, absent: []string{"x"}},
		{name: "all three", step: flow.StoreInputAs(flow.Passthrough(flow.StoreOutputAs(writer("w", "a", 3), "out")), "in"),
			input: map[string]any{"a": 1}, want: map[string]any{"a": 1, "in": map[string]any{"a": 1}, "out": map[string]any{"a": 3}}},
		{name: "around a combinator", step: flow.Passthrough(flow.StoreOutputAs(flow.Then(writer("w1", "x", 1), writer("w2", "y", 2)), "out")),
			input: map[string]any{}, want: map[string]any{"out": map[string]any{"x": 1, "y": 2}}, absent: []string{"x", "y"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := flow.New("f", tc.step).Build()
			require.NoError(t, err)
			out, err := f.Run(t.Context(), tc.input)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
			} else {
				require.NoError(t, err)
			}
			for k, v := range tc.want {
				got, ok := out.Get(k)
				assert.True(t, ok, "key %q", k)
				assert.Equal(t, v, got, "key %q", k)
			}
			for _, k := range tc.absent {
				assert.False(t, out.Has(k), "key %q must be absent", k)
			}
		})
	}
}

func TestShapesBuildChecks(t *testing.T) {
	needs := func(name string, keys ...string) flow.Service {
		var infos []fc.Info
		for _, k := range keys {
			infos = append(infos, fc.Any(k))
		}
		return flow.Step(name, func(context.Context, *fc.Context) error { return nil }, flow.Needs(infos...))
	}
	// passthrough provides nothing to later steps
	_, err := flow.New("f", flow.Passthrough(writer("w", "x", 1)), needs("r", "x")).Build()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `step "r": key "x": needed but not provided`)
	// the stored keys are provided, typed map[string]any
	f, err := flow.New("f",
		flow.Passthrough(flow.StoreOutputAs(writer("w", "x", 1), "out")),
		flow.StoreInputAs(needs("n", "in"), "in"),
		flow.Func("typed", func(ctx context.Context, in struct{ Out, In map[string]any }) (struct{}, error) {
			return struct{}{}, nil
		}),
	).Build()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"out", "in"}, names(f.Contract().Provides))
	// the wrapped step's needs are still checked
	_, err = flow.New("f", flow.Passthrough(needs("r", "missing"))).Build()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `key "missing"`)
	// an option given twice with another key, an empty key
	_, err = flow.New("f", flow.StoreOutputAs(flow.StoreOutputAs(writer("w", "x", 1), "a"), "b")).Build()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `store_output_as given twice ("a" and "b")`)
	_, err = flow.New("f", flow.StoreInputAs(writer("w", "x", 1), "")).Build()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "store_input_as: empty key")
	_, err = flow.New("f", flow.Passthrough(nil)).Build()
	require.Error(t, err)
}

func names(infos []fc.KeyInfo) []string {
	var out []string
	for _, k := range infos {
		out = append(out, k.Name)
	}
	return out
}

func TestShapedStepKeepsItsName(t *testing.T) {
	stub := writer("stub", "x", "stubbed")
	f, err := flow.New("f", flow.Passthrough(flow.StoreOutputAs(writer("w", "x", 1), "out"))).Replace("w", stub).Build()
	require.NoError(t, err)
	out, err := f.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"x": "stubbed"}, out.View()["out"])
	info, ok := f.Lookup("w")
	require.True(t, ok)
	assert.Equal(t, "f/w", info.Path)
	var tr flow.Trace
	_, err = f.Run(t.Context(), nil, flow.WithTrace(&tr))
	require.NoError(t, err)
	require.Len(t, tr.Steps, 1)
	assert.Equal(t, []string{"x"}, tr.Steps[0].Wrote)
	dot := f.Graph().DOT()
	assert.Contains(t, dot, "passthrough, store_output_as: out")
}

func TestDivert(t *testing.T) {
	build := func(t *testing.T, steps ...flow.Service) *flow.Flow {
		t.Helper()
		f, err := flow.New("f", steps...).Input(fc.Any("n")).Build()
		require.NoError(t, err)
		return f
	}
	t.Run("taken: the rest does not run", func(t *testing.T) {
		f := build(t, writer("a", "a", 1), flow.Divert("n > 10", writer("big", "size", "big")), writer("rest", "rest", true))
		out, err := f.Run(t.Context(), map[string]any{"n": 11})
		require.NoError(t, err)
		assert.Equal(t, "big", out.View()["size"])
		assert.False(t, out.Has("rest"))
		out, err = f.Run(t.Context(), map[string]any{"n": 1})
		require.NoError(t, err)
		assert.False(t, out.Has("size"))
		assert.Equal(t, true, out.View()["rest"])
	})
	t.Run("inside a fork case, a saga and an all", func(t *testing.T) {
		f := build(t,
			flow.Fork("n > 0", flow.On("true", flow.Saga(flow.All(
				flow.Divert("n > 5", writer("d", "d", 1)),
				writer("other", "other", 2),
			))), flow.Default(writer("neg", "neg", true))),
			writer("rest", "rest", true))
		out, err := f.Run(t.Context(), map[string]any{"n": 6})
		require.NoError(t, err)
		assert.Equal(t, 1, out.View()["d"])
		assert.Equal(t, 2, out.View()["other"], "the other branch of all finishes")
		assert.False(t, out.Has("rest"))
		out, err = f.Run(t.Context(), map[string]any{"n": 3})
		require.NoError(t, err)
		assert.Equal(t, true, out.View()["rest"])
	})
	t.Run("a nested flow ends only its own run", func(t *testing.T) {
		inner := build(t, flow.Divert("n > 0", writer("d", "d", 1)), writer("inner_rest", "inner_rest", true))
		f := build(t, inner, writer("rest", "rest", true))
		out, err := f.Run(t.Context(), map[string]any{"n": 1})
		require.NoError(t, err)
		assert.False(t, out.Has("inner_rest"))
		assert.Equal(t, true, out.View()["rest"])
	})
	t.Run("a failing diverted step fails the run", func(t *testing.T) {
		f := build(t, flow.Divert("true", failing("bad", errors.Stop("no"))), writer("rest", "rest", true))
		_, err := f.Run(t.Context(), map[string]any{"n": 1})
		assert.True(t, errors.IsStop(err))
	})
	t.Run("traced", func(t *testing.T) {
		f := build(t, flow.Divert("n > 0", writer("d", "d", 1)), writer("rest", "rest", true))
		var tr flow.Trace
		_, err := f.Run(t.Context(), map[string]any{"n": 1}, flow.WithTrace(&tr))
		require.NoError(t, err)
		require.Len(t, tr.Steps, 2)
		assert.Equal(t, "d", tr.Steps[0].Name)
		assert.Equal(t, "divert(n > 0)", tr.Steps[1].Name)
		assert.Equal(t, "divert", tr.Steps[1].Selected)
		assert.Equal(t, errors.KindOK, tr.Outcome)
		_, err = f.Run(t.Context(), map[string]any{"n": 0}, flow.WithTrace(&tr))
		require.NoError(t, err)
		assert.Equal(t, errors.KindSkipped, tr.Steps[0].Outcome)
	})
	t.Run("From a step after a taken divert is never reached", func(t *testing.T) {
		f := build(t, flow.Divert("n > 0", writer("d", "d", 1)), writer("rest", "rest", true))
		_, err := f.Run(t.Context(), map[string]any{"n": 1}, flow.From("rest"))
		require.Error(t, err, "From skips the divert's steps, not its condition")
		assert.Contains(t, err.Error(), `step "rest" was never reached`)
		_, err = f.Run(t.Context(), map[string]any{"n": 0}, flow.From("rest"))
		require.NoError(t, err)
	})
	t.Run("outside a flow", func(t *testing.T) {
		c := fc.FromMap(map[string]any{"n": 1})
		require.NoError(t, flow.Divert("n > 0", writer("d", "d", 1)).Call(t.Context(), c))
		assert.Equal(t, 1, c.View()["d"])
	})
}

func TestDivertBuildChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		step flow.Service
		want string
	}{
		{"inside each", flow.Each("items", flow.Divert("true", writer("d", "d", 1))), "cannot sit inside each, until or tap"},
		{"inside until", flow.Until("true", flow.Divert("true", writer("d", "d", 1))), "cannot sit inside each, until or tap"},
		{"inside tap", flow.Tap(flow.Divert("true", writer("d", "d", 1))), "cannot sit inside each, until or tap"},
		{"unknown key", flow.Divert("nope > 1", writer("d", "d", 1)), `key "nope": read by expression`},
		{"no steps", flow.Divert("true"), "no steps"},
		{"not a bool", flow.Divert("1 + 1", writer("d", "d", 1)), "bad expression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := flow.New("f", tc.step).Input(fc.Any("items")).Build()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// The flow provides only keys known where each divert ends it.
	f, err := flow.New("f", writer("a", "a", 1), flow.Divert("a > 0", writer("d", "d", 1)), writer("b", "b", 2)).Build()
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, names(f.Contract().Provides))
	// the steps inside are checked against the keys known there
	_, err = flow.New("f", flow.Divert("true", flow.Step("r", func(context.Context, *fc.Context) error { return nil }, flow.Needs(fc.Any("later")))), writer("l", "later", 1)).Build()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `key "later"`)
}

func TestDivertGraph(t *testing.T) {
	f, err := flow.New("f", flow.Divert("n > 0", writer("d", "d", 1)), writer("rest", "rest", true)).Input(fc.Any("n")).Build()
	require.NoError(t, err)
	dot := f.Graph().DOT()
	for _, want := range []string{
		`n_f_divert_n_0 -> n_f_divert_n_0_d [label="yes"]`,
		`n_f_divert_n_0 -> n_f_rest [label="no"]`,
		`n_f_divert_n_0_d -> flow_end`,
		`n_f_rest -> flow_end`,
	} {
		assert.Contains(t, dot, want)
	}
	assert.Contains(t, f.Graph().Mermaid(), "yes")
	n := f.Graph().Children[0]
	assert.Equal(t, flow.KindDivert, n.Kind)
	assert.Equal(t, "n > 0", n.Label)
}

func TestLookup(t *testing.T) {
	charge := writer("charge", "paid", true)
	f, err := flow.New("shop", writer("price", "total", 1),
		flow.Fork("total > 0", flow.On("true", charge), flow.Default(writer("free", "paid", false)))).Build()
	require.NoError(t, err)
	info, ok := f.Lookup("charge")
	require.True(t, ok)
	assert.Equal(t, "shop", info.Flow)
	assert.Equal(t, "charge", info.Name)
	assert.Equal(t, "shop/fork(total > 0)/true/charge", info.Path)
	assert.Same(t, charge, info.Service)
	_, ok = f.Lookup("fork(total > 0)")
	assert.False(t, ok, "combinators are not steps")
	_, ok = f.Lookup("nope")
	assert.False(t, ok)
	var zero *flow.Flow
	_, ok = zero.Lookup("charge")
	assert.False(t, ok)
	// a nested flow is one step; its own Lookup looks inside
	outer, err := flow.New("outer", f).Build()
	require.NoError(t, err)
	_, ok = outer.Lookup("charge")
	assert.False(t, ok)
	sub, ok := outer.Lookup("shop")
	require.True(t, ok)
	in, ok := sub.Service.(*flow.Flow).Lookup("charge")
	require.True(t, ok)
	assert.True(t, strings.HasSuffix(in.Path, "/charge"))
}

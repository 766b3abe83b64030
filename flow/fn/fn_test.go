package fn_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/flow/fn"
)

type item struct {
	SKU   string  `json:"sku"`
	Qty   int     `json:"qty"`
	Price float64 `json:"price"`
}

var (
	items   = fc.Key[[]item]("items")
	out     = fc.Key[[]item]("out")
	sample  = []item{{"a", 2, 1.5}, {"b", 0, 3}, {"a", 1, 2}, {"c", 5, 1}}
	qtyOf   = func(it item) int { return it.Qty }
	skuOf   = func(it item) string { return it.SKU }
	inStock = func(it item) bool { return it.Qty > 0 }
)

func TestSliceServices(t *testing.T) {
	cases := []struct {
		name  string
		svc   flow.Service
		input any
		key   string
		want  any
	}{
		{"map", fn.Map("m", items, fc.Key[[]float64]("totals"), func(it item) float64 { return it.Price * float64(it.Qty) }),
			sample, "totals", []float64{3, 0, 2, 5}},
		{"map of an empty slice", fn.Map("m", items, fc.Key[[]string]("skus"), skuOf), []item{}, "skus", []string{}},
		{"filter", fn.Filter("f", items, out, inStock), sample, "out", []item{sample[0], sample[2], sample[3]}},
		{"filter in place", fn.Filter("f", items, items, inStock), sample, "items", []item{sample[0], sample[2], sample[3]}},
		{"reject", fn.Reject("r", items, out, inStock), sample, "out", []item{sample[1]}},
		{"group_by", fn.GroupBy("g", items, fc.Key[map[string][]item]("by"), skuOf), sample, "by",
			map[string][]item{"a": {sample[0], sample[2]}, "b": {sample[1]}, "c": {sample[3]}}},
		{"key_by: the last wins", fn.KeyBy("k", items, fc.Key[map[string]item]("by"), skuOf), sample, "by",
			map[string]item{"a": sample[2], "b": sample[1], "c": sample[3]}},
		{"chunk", fn.Chunk("c", items, fc.Key[[][]item]("pages"), 3), sample, "pages", [][]item{sample[:3], sample[3:]}},
		{"uniq_by keeps the first", fn.UniqBy("u", items, out, skuOf), sample, "out", []item{sample[0], sample[1], sample[3]}},
		{"flatten", fn.Flatten("fl", fc.Key[[][]item]("pages"), out), [][]item{sample[:1], {}, sample[1:2]}, "out", sample[:2]},
		{"sort_by is stable", fn.SortBy("s", items, out, skuOf), sample, "out", []item{sample[0], sample[2], sample[1], sample[3]}},
		{"sort_by desc", fn.SortByDesc("s", items, out, qtyOf), sample, "out", []item{sample[3], sample[0], sample[2], sample[1]}},
		{"sum_by", fn.SumBy("sum", items, fc.Key[float64]("total"), func(it item) float64 { return it.Price * float64(it.Qty) }), sample, "total", 10.0},
		{"sum_by of nothing", fn.SumBy("sum", items, fc.Key[int]("n"), qtyOf), []item(nil), "n", 0},
		{"JSON input is converted", fn.Filter("f", items, out, inStock),
			[]any{map[string]any{"sku": "a", "qty": 1.0, "price": 2.0}, map[string]any{"sku": "b", "qty": 0.0}}, "out", []item{{"a", 1, 2}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			from := "items"
			if tc.name == "flatten" {
				from = "pages"
			}
			f, err := flow.New("f", tc.svc).Input(fc.Any(from)).Build()
			require.NoError(t, err)
			before := map[string]any{from: tc.input}
			c, err := f.Run(t.Context(), before)
			require.NoError(t, err)
			got, ok := c.Get(tc.key)
			require.True(t, ok)
			assert.Equal(t, tc.want, got)
			if s, ok := tc.input.([]item); ok && len(s) > 0 && tc.key != "items" {
				assert.Equal(t, sample[:len(s)], s, "the source is unchanged")
			}
		})
	}
}

func TestSliceServicesSourceUnchanged(t *testing.T) {
	src := []item{{"b", 1, 1}, {"a", 2, 2}}
	c := fc.FromMap(map[string]any{"items": src})
	require.NoError(t, fn.SortBy("s", items, items, skuOf).Call(t.Context(), c))
	assert.Equal(t, []item{{"b", 1, 1}, {"a", 2, 2}}, src)
	assert.Equal(t, []item{{"a", 2, 2}, {"b", 1, 1}}, c.View()["items"])
}

func TestSliceServicesErrors(t *testing.T) {
	// a value that cannot be converted is a Stop
	c := fc.FromMap(map[string]any{"items": "not a list"})
	err := fn.Filter("f", items, out, inStock).Call(t.Context(), c)
	assert.True(t, errors.IsStop(err), "%v", err)
	assert.ErrorIs(t, err, fc.ErrType)

	for _, tc := range []struct {
		name string
		svc  flow.Service
		want string
	}{
		{"nil function", fn.Filter[item]("f", items, out, nil), "nil function"},
		{"chunk size", fn.Chunk("c", items, fc.Key[[][]item]("p"), 0), "chunk size must be at least 1"},
		{"empty into", fn.Map("m", items, fc.Key[[]int](""), qtyOf), "empty into key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := flow.New("f", tc.svc).Input(items).Build()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// build checks: a missing from key, a producer of another type, a
	// later step needing a type the step does not provide
	_, err = flow.New("f", fn.Filter("f", items, out, inStock)).Build()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `step "f": key "items": needed but not provided`)
	_, err = flow.New("f", fn.Filter("f", items, out, inStock)).Input(fc.Key[[]string]("items")).Build()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `key "items": needed as []fn_test.item`)
	_, err = flow.New("f", fn.Map("m", items, fc.Key[[]int]("qtys"), qtyOf),
		flow.Func("use", func(ctx context.Context, in struct{ Qtys []string }) (struct{}, error) { return struct{}{}, nil }),
	).Input(items).Build()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `key "qtys": needed as []string, but step "m" provides []int`)
}

func TestMapServices(t *testing.T) {
	input := func() map[string]any {
		return map[string]any{
			"id": 7, "total": 12.5, "password": "x",
			"customer": map[string]any{"name": "Ada", "email": "ada@example.com", "tier": nil},
			"prefs":    map[string]any{"tier": "gold", "lang": "fr"},
		}
	}
	cases := []struct {
		name   string
		svc    flow.Service
		want   map[string]any
		absent []string
	}{
		{"pick the context", fn.Pick("p", "id", "total"), map[string]any{"id": 7, "total": 12.5}, []string{"password", "customer", "prefs"}},
		{"pick into a key", fn.Pick("p", "id", "total").Into("reply"),
			map[string]any{"reply": map[string]any{"id": 7, "total": 12.5}, "password": "x"}, nil},
		{"pick from a map", fn.Pick("p", "name", "missing").From("customer"),
			map[string]any{"customer": map[string]any{"name": "Ada"}}, nil},
		{"pick from a map into another", fn.Pick("p", "email").From("customer").Into("contact"),
			map[string]any{"contact": map[string]any{"email": "ada@example.com"}, "customer": input()["customer"]}, nil},
		{"omit the context", fn.Omit("o", "password", "absent"), map[string]any{"id": 7}, []string{"password"}},
		{"omit from a map", fn.Omit("o", "email").From("customer"),
			map[string]any{"customer": map[string]any{"name": "Ada", "tier": nil}}, nil},
		{"rename the context", fn.Rename("r", map[string]string{"id": "order_id"}), map[string]any{"order_id": 7}, []string{"id"}},
		{"rename swaps", fn.Rename("r", map[string]string{"id": "total", "total": "id"}), map[string]any{"id": 12.5, "total": 7}, nil},
		{"rename in a map", fn.Rename("r", map[string]string{"name": "full_name", "nope": "x"}).From("customer"),
			map[string]any{"customer": map[string]any{"full_name": "Ada", "email": "ada@example.com", "tier": nil}}, nil},
		{"defaults on the context", fn.Defaults("d", map[string]any{"id": 1, "currency": "EUR"}), map[string]any{"id": 7, "currency": "EUR"}, nil},
		{"defaults fill null", fn.Defaults("d", map[string]any{"tier": "basic", "name": "?"}).From("customer"),
			map[string]any{"customer": map[string]any{"name": "Ada", "email": "ada@example.com", "tier": "basic"}}, nil},
		{"merge into the context", fn.Merge("m", "customer", "prefs"),
			map[string]any{"name": "Ada", "tier": "gold", "lang": "fr"}, nil},
		{"merge into a key, the later wins", fn.Merge("m", "prefs", "customer").Into("profile"),
			map[string]any{"profile": map[string]any{"name": "Ada", "email": "ada@example.com", "tier": nil, "lang": "fr"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := flow.New("f", tc.svc).Input(fc.Any("id"), fc.Any("total"), fc.Any("password"), fc.Any("customer"), fc.Any("prefs")).Build()
			require.NoError(t, err)
			in := input()
			c, err := f.Run(t.Context(), in)
			require.NoError(t, err)
			for k, v := range tc.want {
				got, ok := c.Get(k)
				require.True(t, ok, "key %q", k)
				assert.Equal(t, v, got, "key %q", k)
			}
			for _, k := range tc.absent {
				assert.False(t, c.Has(k), "key %q must be gone", k)
			}
			assert.Equal(t, input(), in, "the input maps are unchanged")
		})
	}
}

func TestMapServicesBuildChecks(t *testing.T) {
	needs := func(key string) flow.Service {
		return flow.Step("uses_"+key, func(context.Context, *fc.Context) error { return nil }, flow.Needs(fc.Any(key)))
	}
	in := []fc.Info{fc.Any("a"), fc.Any("b"), fc.Key[int]("n")}
	for _, tc := range []struct {
		name  string
		steps []flow.Service
		want  string // "" builds
	}{
		{"a key pick removed", []flow.Service{fn.Pick("p", "a"), needs("b")}, `step "uses_b": key "b": needed but not provided`},
		{"a key pick kept", []flow.Service{fn.Pick("p", "a"), needs("a")}, ""},
		{"pick into a key removes nothing", []flow.Service{fn.Pick("p", "a").Into("r"), needs("b"), needs("r")}, ""},
		{"pick of an unknown key", []flow.Service{fn.Pick("p", "zz")}, `step "p": key "zz": needed but not provided`},
		{"a key omitted", []flow.Service{fn.Omit("o", "b"), needs("b")}, `key "b": needed but not provided`},
		{"a renamed key", []flow.Service{fn.Rename("r", map[string]string{"n": "m"}), needs("n")}, `key "n": needed but not provided`},
		{"the new name keeps the type", []flow.Service{fn.Rename("r", map[string]string{"n": "m"}),
			flow.Func("typed", func(ctx context.Context, in struct{ M string }) (struct{}, error) { return struct{}{}, nil })},
			`key "m": needed as string, but step "r" provides int`},
		{"defaults provide", []flow.Service{fn.Defaults("d", map[string]any{"z": 1}), needs("z")}, ""},
		{"merge needs its sources", []flow.Service{fn.Merge("m", "a", "q")}, `key "q": needed but not provided`},
		{"merge has no From", []flow.Service{fn.Merge("m", "a").From("b")}, "From does not apply"},
		{"no keys", []flow.Service{fn.Pick("p")}, "pick: no keys"},
		{"rename to one key twice", []flow.Service{fn.Rename("r", map[string]string{"a": "x", "b": "x"})}, `both renamed to "x"`},
		{"from a map needs it", []flow.Service{fn.Omit("o", "x").From("zz")}, `key "zz": needed but not provided`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := flow.New("f", tc.steps...).Input(in...).Build()
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	// a source that is not a map is a Stop
	c := fc.FromMap(map[string]any{"a": 3})
	err := fn.Pick("p", "x").From("a").Call(t.Context(), c)
	assert.True(t, errors.IsStop(err), "%v", err)
}

func TestDefaultsAreCopied(t *testing.T) {
	f := flow.New("f", fn.Defaults("d", map[string]any{"tags": []any{"x"}})).MustBuild()
	c1, err := f.Run(t.Context(), nil)
	require.NoError(t, err)
	c1.View()["tags"].([]any)[0] = "changed"
	c2, err := f.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, []any{"x"}, c2.View()["tags"])
}

func TestGraphShowsRemovedKeys(t *testing.T) {
	f, err := flow.New("f", fn.Pick("reply", "a")).Input(fc.Any("a"), fc.Any("b"), fc.Any("c")).Build()
	require.NoError(t, err)
	n := f.Graph().Children[0]
	assert.Equal(t, []string{"b", "c"}, n.Removes)
	assert.Contains(t, f.Graph().DOT(), "needs: a; removes: b, c")
	p, err := flow.New("f", flow.Passthrough(fn.Pick("reply", "a"))).Input(fc.Any("a"), fc.Any("b")).Build()
	require.NoError(t, err)
	assert.Empty(t, p.Graph().Children[0].Removes, "a passthrough removes nothing")
}

// TestREADMEExample: the README's toolkit example builds and runs.
func TestREADMEExample(t *testing.T) {
	type Item = item
	var Items = fc.Key[[]Item]("items")
	f, err := flow.New("order",
		fn.Filter("in_stock", Items, Items, func(it Item) bool { return it.Qty > 0 }),
		fn.GroupBy("by_sku", Items, fc.Key[map[string][]Item]("by_sku"), func(it Item) string { return it.SKU }),
		fn.SumBy("total", Items, fc.Key[float64]("total"), func(it Item) float64 { return it.Price * float64(it.Qty) }),
		fn.Pick("reply", "by_sku", "total"), // the context keeps two keys; a later step needing another is a build error
	).Input(Items).Build()
	require.NoError(t, err)
	c, err := f.Run(t.Context(), map[string]any{"items": sample})
	require.NoError(t, err)
	assert.Equal(t, []string{"by_sku", "total"}, c.Keys())
	assert.Equal(t, 10.0, c.View()["total"])
	_, err = flow.New("order", fn.Pick("reply", "total"), fn.Filter("in_stock", Items, Items, inStock)).Input(Items, fc.Any("total")).Build()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `step "in_stock": key "items": needed but not provided`)
}

func TestNamedToolkitServicesArePrepared(t *testing.T) {
	// a renamed pick still removes keys, and a construction error is still a build error
	_, err := flow.New("f", flow.Named("reply", fn.Pick("p", "a")), flow.Step("uses_b", func(context.Context, *fc.Context) error { return nil }, flow.Needs(fc.Any("b")))).
		Input(fc.Any("a"), fc.Any("b")).Build()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `step "uses_b": key "b": needed but not provided`)
	_, err = flow.New("f", flow.Named("c", fn.Chunk("c0", items, fc.Key[[][]item]("p"), 0))).Input(items).Build()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `step "c": chunk size must be at least 1`)
}

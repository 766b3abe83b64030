package context_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
)

func TestZeroValueAndNilInput(t *testing.T) {
	var c fc.Context
	assert.Equal(t, 0, c.Len())
	c.Set("a", 1)
	v, ok := c.Get("a")
	assert.True(t, ok)
	assert.Equal(t, 1, v)

	n := fc.FromMap(nil)
	assert.Equal(t, 0, n.Len())
	assert.Equal(t, map[string]any{}, n.Map())
	b, err := json.Marshal(n)
	require.NoError(t, err)
	assert.JSONEq(t, `{}`, string(b))
}

func TestFromMapCopies(t *testing.T) {
	in := map[string]any{"a": 1}
	c := fc.FromMap(in)
	c.Set("a", 2)
	assert.Equal(t, 1, in["a"], "FromMap must not write through to the caller's map")
	out := c.Map()
	out["a"] = 3
	assert.Equal(t, 2, c.View()["a"], "Map must return a copy")
}

func TestTypedKeys(t *testing.T) {
	c, err := fc.FromJSON([]byte(`{"qty": 3, "price": 2.5, "name": "box", "tags": ["a","b"],
		"item": {"sku": "x1", "qty": 2}, "neg": -1, "big": 1e300, "none": null}`))
	require.NoError(t, err)

	type item struct {
		SKU string `json:"sku"`
		Qty int    `json:"qty"`
	}
	tests := []struct {
		name string
		get  func() (any, error)
		want any
		err  string
	}{
		{"float64 exact", func() (any, error) { return fc.Key[float64]("price").Get(c) }, 2.5, ""},
		{"json number to int", func() (any, error) { return fc.Key[int]("qty").Get(c) }, 3, ""},
		{"json number to uint8", func() (any, error) { return fc.Key[uint8]("qty").Get(c) }, uint8(3), ""},
		{"fraction to int", func() (any, error) { return fc.Key[int]("price").Get(c) }, 0, `key "price": want int, got float64`},
		{"negative to uint", func() (any, error) { return fc.Key[uint]("neg").Get(c) }, uint(0), `key "neg": want uint, got float64`},
		{"overflow float32", func() (any, error) { return fc.Key[float32]("big").Get(c) }, float32(0), `key "big": want float32, got float64`},
		{"string", func() (any, error) { return fc.Key[string]("name").Get(c) }, "box", ""},
		{"string as int", func() (any, error) { return fc.Key[int]("name").Get(c) }, 0, `key "name": want int, got string`},
		{"[]any to []string", func() (any, error) { return fc.Key[[]string]("tags").Get(c) }, []string{"a", "b"}, ""},
		{"object to struct", func() (any, error) { return fc.Key[item]("item").Get(c) }, item{SKU: "x1", Qty: 2}, ""},
		{"null to pointer", func() (any, error) { return fc.Key[*item]("none").Get(c) }, (*item)(nil), ""},
		{"null to int", func() (any, error) { return fc.Key[int]("none").Get(c) }, 0, `key "none": want int, got nil`},
		{"missing", func() (any, error) { return fc.Key[int]("nope").Get(c) }, 0, `key "nope": missing (want int)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.get()
			if tt.err != "" {
				require.Error(t, err)
				assert.Equal(t, tt.err, err.Error())
				var ke *fc.KeyError
				require.ErrorAs(t, err, &ke)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestKeyErrorsClassify(t *testing.T) {
	c := fc.FromMap(map[string]any{"s": "x"})
	_, err := fc.Key[int]("missing").Get(c)
	assert.ErrorIs(t, err, fc.ErrMissing)
	_, err = fc.Key[int]("s").Get(c)
	assert.ErrorIs(t, err, fc.ErrType)
	var ke *fc.KeyError
	require.ErrorAs(t, err, &ke)
	assert.Equal(t, reflect.TypeFor[string](), ke.Got)
	assert.Equal(t, reflect.TypeFor[int](), ke.Want)

	_, ok, err := fc.Key[int]("missing").Lookup(c)
	assert.False(t, ok)
	assert.NoError(t, err)
	assert.Equal(t, 7, fc.Key[int]("missing").Or(c, 7))
	assert.Equal(t, 7, fc.Key[int]("s").Or(c, 7))
}

func TestKeyInfo(t *testing.T) {
	k := fc.Key[[]float64]("prices")
	assert.Equal(t, fc.KeyInfo{Name: "prices", Type: reflect.TypeFor[[]float64]()}, k.Info())
	assert.True(t, k.Optional().Optional)
	assert.Equal(t, "prices []float64", k.Info().String())
	assert.Equal(t, "x", fc.Any("x").String())
}

func TestSnapshotCopyOnWrite(t *testing.T) {
	parent := fc.FromMap(map[string]any{"a": 1, "b": 2})
	s1 := parent.Snapshot()
	s2 := parent.Snapshot()

	s1.Set("a", 10)
	s2.Set("b", 20)
	s2.Delete("a")
	parent.Set("c", 3)

	assert.Equal(t, map[string]any{"a": 1, "b": 2, "c": 3}, parent.Map())
	assert.Equal(t, map[string]any{"a": 10, "b": 2}, s1.Map())
	assert.Equal(t, map[string]any{"b": 20}, s2.Map())
	assert.Equal(t, []string{"a"}, s1.Written())
	assert.Equal(t, []string{"b", "a"}, s2.Written())
}

func TestSnapshotOverlayReadsAndFlattens(t *testing.T) {
	parent := fc.FromMap(map[string]any{"a": 1, "b": 2})
	child := parent.Snapshot()
	child.Set("c", 3)
	child.Delete("a")
	child.Set("a", 10)
	child.Delete("b")
	v, ok := child.Get("a")
	assert.True(t, ok)
	assert.Equal(t, 10, v)
	assert.False(t, child.Has("b"))
	assert.Equal(t, 2, child.Len())

	grandchild := child.Snapshot() // flattens child, which stays usable
	grandchild.Set("d", 4)
	child.Set("e", 5)
	assert.Equal(t, map[string]any{"a": 10, "c": 3, "d": 4}, grandchild.Map())
	assert.Equal(t, map[string]any{"a": 10, "c": 3, "e": 5}, child.Map())
	assert.Equal(t, map[string]any{"a": 1, "b": 2}, parent.Map())

	parent.Merge(child)
	assert.Equal(t, map[string]any{"a": 10, "c": 3, "e": 5}, parent.Map(), "b was deleted by the child")
	assert.Equal(t, []string{"c", "a", "b", "e"}, child.Written())

	k := fc.Key[int]("a")
	s := parent.Snapshot()
	got, err := k.Get(s)
	require.NoError(t, err)
	assert.Equal(t, 10, got)
	assert.Equal(t, `{"a":10,"c":3,"e":5}`, s.String())
}

func TestMergeIsDeterministicInArgumentOrder(t *testing.T) {
	build := func() (*fc.Context, *fc.Context, *fc.Context) {
		p := fc.FromMap(map[string]any{"x": 0, "gone": true})
		a, b := p.Snapshot(), p.Snapshot()
		a.Set("x", "a")
		a.Set("only_a", 1)
		b.Set("x", "b")
		b.Delete("gone")
		return p, a, b
	}
	p, a, b := build()
	p.Merge(a, b)
	assert.Equal(t, map[string]any{"x": "b", "only_a": 1}, p.Map())

	p, a, b = build()
	p.Merge(b, a)
	assert.Equal(t, "a", p.View()["x"], "the last child in argument order wins")

	p, a, _ = build()
	p.Merge(nil, a, fc.New()) // nil and untracked children are skipped
	assert.Equal(t, "a", p.View()["x"])
}

func TestTrack(t *testing.T) {
	c := fc.New()
	outer := c.Track()
	c.Set("a", 1)
	inner := c.Track()
	c.Set("b", 2)
	c.Set("b", 3)
	c.Delete("b")
	assert.Equal(t, []string{"b"}, inner.Stop(nil))
	c.Set("c", 4)
	assert.Equal(t, []string{"x", "a", "b", "c"}, outer.Stop([]string{"x"}), "appended to dst")
	assert.Nil(t, c.Written())

	c.Set("d", 5) // no tracking now
	again := c.Track()
	assert.Empty(t, again.Stop(nil), "a recycled recording starts empty")

}

func TestTrackAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are not counted under the race detector")
	}
	c := fc.New()
	buf := make([]string, 0, 1)
	allocs := testing.AllocsPerRun(100, func() {
		tr := c.Track()
		c.Set("e", 6)
		_ = tr.Stop(buf)
	})
	assert.Zero(t, allocs)
}

func TestJSON(t *testing.T) {
	c, err := fc.FromJSON([]byte(`{"b": [1, 2], "a": {"x": "y"}}`))
	require.NoError(t, err)
	b, err := json.Marshal(c)
	require.NoError(t, err)
	assert.Equal(t, `{"a":{"x":"y"},"b":[1,2]}`, string(b))
	assert.Equal(t, `{"a":{"x":"y"},"b":[1,2]}`, c.String())

	for _, bad := range []string{`[1]`, `"x"`, `{"a":`, `42`} {
		_, err := fc.FromJSON([]byte(bad))
		assert.ErrorContains(t, err, "context: decode JSON object", bad)
	}
	empty, err := fc.FromJSON([]byte(`null`))
	require.NoError(t, err)
	assert.Equal(t, 0, empty.Len())

	c.Set("f", func() {})
	_, err = json.Marshal(c)
	assert.Error(t, err)
	assert.Contains(t, c.String(), "unencodable")
}

func TestUpdateAndKeys(t *testing.T) {
	c := fc.New()
	tr := c.Track()
	c.Update(map[string]any{"z": 1, "a": 2, "m": 3})
	assert.Equal(t, []string{"a", "m", "z"}, tr.Stop(nil), "Update writes in sorted key order")
	assert.Equal(t, []string{"a", "m", "z"}, c.Keys())
	assert.True(t, c.Has("m"))
	c.Delete("nope")
	assert.Equal(t, 3, c.Len())
}

func TestConvertErrorsNeverPanic(t *testing.T) {
	values := []any{nil, 1, -1, 1.5, "s", true, []any{1, "x"}, map[string]any{"a": []any{}}, struct{}{}, make(chan int)}
	types := []func(any) error{
		func(v any) error { _, err := fc.Convert[int](v); return err },
		func(v any) error { _, err := fc.Convert[uint16](v); return err },
		func(v any) error { _, err := fc.Convert[string](v); return err },
		func(v any) error { _, err := fc.Convert[[]int](v); return err },
		func(v any) error { _, err := fc.Convert[map[string]int](v); return err },
		func(v any) error { _, err := fc.Convert[struct{ A int }](v); return err },
		func(v any) error { _, err := fc.Convert[*int](v); return err },
		func(v any) error { _, err := fc.Convert[any](v); return err },
	}
	for _, v := range values {
		for i, conv := range types {
			assert.NotPanics(t, func() {
				if err := conv(v); err != nil {
					assert.True(t, errors.Is(err, fc.ErrType), "value %#v type %d: %v", v, i, err)
				}
			})
		}
	}
}

func ExampleKey() {
	var (
		Qty   = fc.Key[int]("qty")
		Total = fc.Key[float64]("total")
	)
	c, _ := fc.FromJSON([]byte(`{"qty": 3, "price": 2.5}`))
	qty, _ := Qty.Get(c) // the JSON number converts to int
	Total.Set(c, float64(qty)*2.5)
	_, err := fc.Key[string]("qty").Get(c)
	fmt.Println(c)
	fmt.Println(err)
	// Output:
	// {"price":2.5,"qty":3,"total":7.5}
	// key "qty": want string, got float64
}

func ExampleContext_Snapshot() {
	c := fc.FromMap(map[string]any{"n": 1})
	left, right := c.Snapshot(), c.Snapshot()
	left.Set("n", 2)
	right.Set("m", 3)
	c.Merge(left, right) // in declaration order
	fmt.Println(c)
	// Output: {"m":3,"n":2}
}

package compare

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/svcflow/svcflow/errors"
)

func TestMatch(t *testing.T) {
	type item struct {
		SKU string  `json:"sku"`
		Qty int     `json:"qty"`
		Tax float64 `json:"tax,omitempty"`
	}
	ch := make(chan int)
	fn := func() {}
	tests := []struct {
		name      string
		want, got any
		match     bool
	}{
		// Numbers: one rule, whatever their Go types.
		{"int and float", 3, 3.0, true},
		{"int64 and int", int64(3), 3, true},
		{"uint8 and float32", uint8(7), float32(7), true},
		{"different integers", 16, 20, false},
		{"float rounding", 0.3, 0.1 + 0.2, true},
		{"rounding of a product", 3.42, 18 * 0.19, true},
		{"close but not rounding", 0.3, 0.3000001, false},
		{"relative to the larger", 1e12 + 0.5, 1e12 + 0.5005, true},
		{"small numbers are relative too", 1e-12, 1.1e-12, false},
		{"integer and fraction", 3, 3.0000000001, true},
		{"integers exactly, however large", int64(9007199254740993), int64(9007199254740992), false},
		{"large integers equal", uint64(math.MaxUint64), uint64(math.MaxUint64), true},
		{"zero and negative zero", 0, math.Copysign(0, -1), true},
		{"number is not a string", "3", 3, false},
		{"string is not a number", 3, "3", false},

		// Other scalars.
		{"strings", "gold", "gold", true},
		{"strings differ", "gold", "silver", false},
		{"bools", true, true, true},
		{"bool is not a string", true, "true", false},
		{"nil", nil, nil, true},
		{"nil is not zero", nil, 0, false},
		{"nil map is null", map[string]any(nil), nil, true},

		// Maps: a subset, at every depth.
		{"map subset", map[string]any{"a": 1}, map[string]any{"a": 1.0, "b": 2}, true},
		{"nested subset", map[string]any{"c": map[string]any{"tier": "gold"}}, map[string]any{"c": map[string]any{"tier": "gold", "id": 7}}, true},
		{"missing nested key", map[string]any{"c": map[string]any{"id": 7}}, map[string]any{"c": map[string]any{"tier": "gold"}}, false},
		{"nested value differs", map[string]any{"c": map[string]any{"id": 7}}, map[string]any{"c": map[string]any{"id": 8}}, false},
		{"map is not a list", map[string]any{}, []any{}, false},
		{"empty map matches any map", map[string]any{}, map[string]any{"x": 1}, true},
		{"struct and map", map[string]any{"sku": "a", "qty": 2}, item{SKU: "a", Qty: 2}, true},
		{"map and struct", item{SKU: "a", Qty: 2}, map[string]any{"sku": "a", "qty": 2.0, "tax": 0.5}, true},
		{"typed map", map[string]float64{"n": 1}, map[string]any{"n": 1}, true},

		// Lists: same length, element by element.
		{"lists", []any{1, "a"}, []any{1.0, "a"}, true},
		{"typed list", []int{9, 9}, []any{9.0, 9.0}, true},
		{"list length", []any{1}, []any{1, 2}, false},
		{"list order", []any{1, 2}, []any{2, 1}, false},
		{"list of maps is a subset per element", []any{map[string]any{"sku": "a"}}, []item{{SKU: "a", Qty: 1}}, true},
		{"structs in lists", []item{{SKU: "a", Qty: 2}}, []any{map[string]any{"sku": "a", "qty": 2}}, true},
		{"list is not a map", []any{}, map[string]any{}, false},

		// Values without a JSON form.
		{"same channel", ch, ch, true},
		{"funcs never match", fn, fn, false},
		{"NaN", math.NaN(), math.NaN(), false},
		{"func and nil", fn, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.match, Match(tt.want, tt.got))
		})
	}
}

func TestText(t *testing.T) {
	assert.Equal(t, `{"a":[1,"x"]}`, Text(map[string]any{"a": []any{1, "x"}}))
	assert.Equal(t, `16`, Text(16.0))
	assert.Equal(t, `"3"`, Text("3"))
	assert.Equal(t, `(chan int)(nil)`, Text((chan int)(nil)))
}

func TestKind(t *testing.T) {
	for _, want := range errors.Kinds() {
		for _, got := range errors.Kinds() {
			match := want == got || (want == errors.KindRetry && got == errors.KindRetryExhausted)
			assert.Equal(t, match, Kind(want, got), "want %s, got %s", want, got)
		}
	}
}

func TestExpectable(t *testing.T) {
	want := map[errors.Kind]bool{
		errors.KindOK: true, errors.KindStop: true, errors.KindDropped: true, errors.KindRetry: true, errors.KindRetryExhausted: true,
		errors.KindFatal: true, errors.KindFailed: true, errors.KindPanic: true, errors.KindCanceled: true,
		errors.KindSkipped: false, errors.KindWillRetry: false, errors.Kind(-1): false, errors.Kind(99): false,
	}
	for k, ok := range want {
		assert.Equal(t, ok, Expectable(k), "%v", k)
	}
	assert.Len(t, ErrorKinds, 8)
}

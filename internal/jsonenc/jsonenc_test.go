package jsonenc_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/internal/jsonenc"
)

func TestAppendMatchesEncodingJSON(t *testing.T) {
	type point struct {
		X int `json:"x"`
	}
	values := []any{
		nil, true, false, "", "plain", "quote \" backslash \\ slash /",
		"html <a href='x'>&amp;</a>", "ctl \b\f\n\r\t \x00 \x1f \x7f", "bad utf8 \xff\xfe end",
		"line sep \u2028 para sep \u2029", "emoji 😀 é",
		0.0, math.Copysign(0, -1), 1.5, -2.25, 1e20, 1e21, 123456789e15, 1e-6, 1e-7, 5e-324,
		math.MaxFloat64, 0.1 + 0.2, float64(1 << 53),
		0, -7, int64(math.MaxInt64), int32(-5), uint64(math.MaxUint64), float32(0.1), uint8(3),
		[]any{}, []any(nil), []any{1.0, "a", nil, []any{true}},
		map[string]any{}, map[string]any(nil),
		map[string]any{"b": 1.0, "a": map[string]any{"z": "x", "y": []any{map[string]any{"k": "v"}}}, "<": "&"},
		map[string]string{"y": "1", "x": "<2>"}, map[string]string(nil),
		point{X: 3}, &point{X: 4}, []string{"a"}, map[string]int{"b": 2, "a": 1},
		json.RawMessage(`{"b": [1, 2]}`), json.Number("12.5"),
		time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC),
		map[string]any{"deep": map[string]any{"er": map[string]any{"est": map[string]any{"!": map[string]any{"x": 1}}}}},
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		require.NoError(t, err)
		got, err := jsonenc.Append([]byte("prefix:"), v)
		require.NoError(t, err)
		assert.Equal(t, "prefix:"+string(want), string(got), "value %#v", v)
		if str, ok := v.(string); ok {
			assert.Equal(t, string(want), string(jsonenc.AppendString(nil, str)))
		}
	}
}

func TestAppendErrors(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{math.NaN(), "unsupported value: NaN"},
		{map[string]any{"a": []any{1, math.Inf(1)}}, `key "a": [1]: json: unsupported value: +Inf`},
		{map[string]any{"c": make(chan int)}, `key "c": json: unsupported type: chan int`},
	} {
		_, err := jsonenc.Append(nil, tc.v)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
		_, jerr := json.Marshal(tc.v)
		assert.Error(t, jerr, "encoding/json fails too")
	}
}

func TestAppendAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are not counted under the race detector")
	}
	v := map[string]any{"tier": "gold", "total": 8.5, "items": []any{map[string]any{"price": 2.5, "qty": 2.0}},
		"meta": map[string]any{"id": "x", "http.method": "POST"}}
	buf := make([]byte, 0, 512)
	_, _ = jsonenc.Append(buf, v) // warm the pool
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := jsonenc.Append(buf, v); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs, "JSON-shaped values encode without allocating")
}

// FuzzAppend decodes arbitrary JSON into the shapes a context holds and
// checks that Append writes what encoding/json writes.
func FuzzAppend(f *testing.F) {
	for _, s := range []string{`{"a": 1, "b": [true, null, "x"]}`, `"<\u2028>"`, `[1e21, 1e-7, -0.0, 12345678901234567890]`,
		`{"z": {"y": {"x": {}}}, "": ""}`, `"\ud800"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if json.Unmarshal(data, &v) != nil {
			v = string(data) // arbitrary bytes as a string
		}
		want, err := json.Marshal(v)
		if err != nil {
			t.Skip()
		}
		got, err := jsonenc.Append(nil, v)
		require.NoError(t, err)
		require.Equal(t, string(want), string(got))
	})
}

func TestAppendCycles(t *testing.T) {
	self := map[string]any{"a": 1.0}
	self["audit"] = self
	list := []any{1.0, nil}
	list[1] = list
	viaList := map[string]any{}
	viaList["items"] = []any{"x", map[string]any{"back": viaList}}
	long := map[string]any{}
	m := long
	for range 100 { // a cycle longer than the scanned part of the path
		next := map[string]any{}
		m["n"] = next
		m = next
	}
	m["n"] = long
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"self", self, `key "audit": key "audit": key "audit": key "audit": key "audit": key "audit": key "audit": key "audit": (`},
		{"slice", list, `[1]: [1]: [1]: [1]: [1]: [1]: [1]: [1]: (`},
		{"through a slice", viaList, `key "items": [1]: key "back": key "items": [1]: key "back": `},
		{"long", long, `key "n": key "n": key "n": key "n": key "n": key "n": key "n": key "n": (`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := jsonenc.Append(nil, tc.v)
			require.ErrorIs(t, err, jsonenc.ErrCycle)
			assert.True(t, strings.HasPrefix(err.Error(), tc.want), "%s", err)
			assert.True(t, strings.HasSuffix(err.Error(), ": value contains itself (a cycle)"), "%s", err)
			assert.Less(t, len(err.Error()), 400)
			// The pooled encoder is clean afterwards.
			got, err := jsonenc.Append(nil, map[string]any{"ok": []any{true}})
			require.NoError(t, err)
			assert.JSONEq(t, `{"ok":[true]}`, string(got))
		})
	}
}

func TestAppendSharedIsNotACycle(t *testing.T) {
	shared := map[string]any{"k": "v"}
	items := []any{shared, shared}
	got, err := jsonenc.Append(nil, map[string]any{"a": shared, "b": shared, "items": items, "again": items})
	require.NoError(t, err)
	assert.Equal(t, `{"a":{"k":"v"},"again":[{"k":"v"},{"k":"v"}],"b":{"k":"v"},"items":[{"k":"v"},{"k":"v"}]}`, string(got))
}

func TestAppendDepth(t *testing.T) {
	nest := func(n int) any {
		var v any = "leaf"
		for i := range n {
			if i%2 == 0 {
				v = []any{v}
			} else {
				v = map[string]any{"x": v}
			}
		}
		return v
	}
	// As deep as encoding/json decodes: encoded.
	data, err := jsonenc.Append(nil, nest(jsonenc.MaxDepth))
	require.NoError(t, err)
	var back any
	require.NoError(t, json.Unmarshal(data, &back), "encoding/json decodes it back")

	_, err = jsonenc.Append(nil, nest(jsonenc.MaxDepth+1))
	require.ErrorIs(t, err, jsonenc.ErrTooDeep)
	assert.Less(t, len(err.Error()), 300, "a deep error has a short message: %s", err)
}

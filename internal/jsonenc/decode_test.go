package jsonenc_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/internal/jsonenc"
)

func TestUnmarshalKeepsDigits(t *testing.T) {
	in := `{"big": 12345678901234567891, "neg": -9223372036854775809, "max53": 9007199254740992, "max53plus1": 9007199254740993,
		"int64": 9223372036854775807, "small": 42, "f": 1.5, "long": 0.12345678901234567890123, "exactlong": 1.5000000000000000000,
		"e": 1e300, "nested": {"list": [1, 123456789012345678901234567890, {"x": 18446744073709551616}]}, "s": "12345678901234567891"}`
	var m map[string]any
	require.NoError(t, jsonenc.Unmarshal([]byte(in), &m))
	assert.Equal(t, json.Number("12345678901234567891"), m["big"])
	assert.Equal(t, json.Number("-9223372036854775809"), m["neg"])
	assert.Equal(t, 9007199254740992.0, m["max53"], "2^53 is a float64 exactly")
	assert.Equal(t, json.Number("9007199254740993"), m["max53plus1"])
	assert.Equal(t, json.Number("9223372036854775807"), m["int64"])
	assert.Equal(t, 42.0, m["small"])
	assert.Equal(t, 1.5, m["f"])
	assert.Equal(t, json.Number("0.12345678901234567890123"), m["long"])
	assert.Equal(t, 1.5, m["exactlong"], "trailing zeros lose nothing")
	assert.Equal(t, 1e300, m["e"])
	list := m["nested"].(map[string]any)["list"].([]any)
	assert.Equal(t, 1.0, list[0])
	assert.Equal(t, json.Number("123456789012345678901234567890"), list[1])
	assert.Equal(t, json.Number("18446744073709551616"), list[2].(map[string]any)["x"])
	assert.Equal(t, "12345678901234567891", m["s"])

	out, err := jsonenc.Append(nil, m)
	require.NoError(t, err)
	assert.Contains(t, string(out), `"big":12345678901234567891,`)
	assert.Contains(t, string(out), `[1,123456789012345678901234567890,{"x":18446744073709551616}]`)
	assert.Contains(t, string(out), `"long":0.12345678901234567890123,`)

	var v any
	require.NoError(t, jsonenc.Unmarshal([]byte(`12345678901234567891`), &v))
	assert.Equal(t, json.Number("12345678901234567891"), v)
	require.NoError(t, jsonenc.Unmarshal([]byte(` [1234567890123456, 2] `), &v))
	assert.Equal(t, []any{1234567890123456.0, 2.0}, v)
}

func TestUnmarshalErrorsAsEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"a": 12345678901234567891} x`, `{"a": 12345678901234567891`, `{"a": 12345678901234567891}{}`, `[1e400]`, ``, `{"a": 1} x`,
	} {
		var m, want map[string]any
		err := jsonenc.Unmarshal([]byte(in), &m)
		jerr := json.Unmarshal([]byte(in), &want)
		require.Error(t, jerr, in)
		require.Error(t, err, in)
		assert.Equal(t, jerr.Error(), err.Error(), in)
	}
}

func TestAppendNumber(t *testing.T) {
	for _, n := range []json.Number{"", "0", "-1.5e-7", "12345678901234567891"} {
		want, err := json.Marshal(map[string]any{"n": n})
		require.NoError(t, err)
		got, err := jsonenc.Append(nil, map[string]any{"n": n})
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got))
	}
	for _, bad := range []json.Number{"abc", "1.", "01", "+1", "1e", "--1"} {
		_, err := jsonenc.Append(nil, map[string]any{"n": bad})
		assert.ErrorContains(t, err, `key "n": json: invalid number literal`, bad)
	}
}

// FuzzUnmarshal checks that Unmarshal accepts what encoding/json accepts
// and that the values encode back to what encoding/json would write for
// the input decoded with UseNumber: no digit lost.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`{"a": 12345678901234567891}`, `[1.5, 0.1234567890123456789]`, `{"x": [9007199254740993, "y"]}`, `1e21`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		err := jsonenc.Unmarshal(data, &v)
		var std any
		if jerr := json.Unmarshal(data, &std); jerr != nil {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		got, err := jsonenc.Append(nil, v)
		require.NoError(t, err)
		var a, b any
		require.NoError(t, json.Unmarshal(got, &a))
		require.NoError(t, json.Unmarshal(data, &b))
		require.Equal(t, b, a, "same values as encoding/json gives, within float64")
	})
}

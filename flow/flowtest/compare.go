package flowtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"reflect"
	"slices"
	"strings"

	fc "github.com/svcflow/svcflow/context"
)

// normal is a value in its JSON form: maps, slices, strings, bools, nil and
// numbers as exact rationals (so 3, 3.0 and int64(3) agree). ok is false
// when the value has no JSON form (a func, a channel, NaN).
type normal struct {
	orig any
	v    any    // the JSON form
	text string // the JSON text, for messages
	ok   bool
}

// number is a JSON number in exact canonical form ("3", "1/10"); its own
// type keeps it apart from the string "3".
type number string

func normalize(v any) normal {
	data, err := json.Marshal(v)
	if err != nil {
		return normal{orig: v, text: fmt.Sprintf("%#v", v)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return normal{orig: v, text: fmt.Sprintf("%#v", v)}
	}
	return normal{orig: v, v: exactNumbers(out), text: string(data), ok: true}
}

// exactNumbers replaces each json.Number by its exact rational value in
// canonical form.
func exactNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if r, ok := new(big.Rat).SetString(string(x)); ok {
			return number(r.RatString())
		}
		return number(x)
	case map[string]any:
		for k, e := range x {
			x[k] = exactNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = exactNumbers(e)
		}
	}
	return v
}

// sameJSON reports whether want and got have the same JSON form; values
// without one are compared with reflect.DeepEqual.
func sameJSON(want, got normal) bool {
	if want.ok && got.ok {
		return reflect.DeepEqual(want.v, got.v)
	}
	return reflect.DeepEqual(want.orig, got.orig)
}

// subset compares the keys of want with those of got. It returns the keys
// of want missing from got, and one message per key whose value differs:
// `key "total": want 16, got 20`. Both are sorted by key.
func subset(want map[string]any, got *fc.Context) (missing []string, diffs []string) {
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got.Get(k)
		if !ok {
			missing = append(missing, k)
			continue
		}
		w, gn := normalize(want[k]), normalize(g)
		if !sameJSON(w, gn) {
			diffs = append(diffs, fmt.Sprintf("key %q: want %s, got %s", k, w.text, gn.text))
		}
	}
	return missing, diffs
}

// quoteAll formats keys as "a", "b".
func quoteAll(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(q, ", ")
}

// deepCopy copies the maps and slices of JSON shape inside v, so a
// recorded context does not change when a later step mutates a nested
// value in place. Other values are kept as they are.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// Package compare holds the one comparison that table tests make between
// an expected and an actual value, and between an expected and an actual
// outcome. Package flowtest (tables in Go) and the tests: section of a
// YAML configuration (package config) both use it, so a case means the
// same in either.
package compare

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"reflect"

	"github.com/svcflow/svcflow/errors"
)

// Tolerance is the relative difference under which two numbers match when
// either is not an integer: float arithmetic rounds (0.1+0.2 is
// 0.30000000000000004), and a test should not have to spell the rounding.
const Tolerance = 1e-9

// Match reports whether got has what want expects. Both are compared in
// their JSON form (as encoding/json encodes them), so a struct matches the
// map that encodes like it and an int64 matches a float64:
//
//   - a map matches a map that holds every key of want, each matching
//     (other keys of got are ignored, at every depth);
//   - a list matches a list of the same length, element by element;
//   - numbers match when they are equal; when either is not an integer,
//     also when they differ by at most Tolerance relative to the larger.
//     Integers compare exactly, however large (3 matches 3.0, not 3.0000001);
//   - strings, booleans and null match when equal.
//
// A value that JSON cannot encode (a func, a channel, NaN) matches only
// what reflect.DeepEqual finds equal to it.
func Match(want, got any) bool {
	w, wok := normalize(want)
	g, gok := normalize(got)
	if !wok || !gok {
		return reflect.DeepEqual(want, got)
	}
	return match(w, g)
}

// Text renders v for a failure message: its JSON text, or its Go syntax
// (%#v) when JSON cannot encode it.
func Text(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}

// ErrorKinds are the kinds of error a test may expect a run to end with,
// in the order they are listed to users. (errors.KindOK, success, is what
// a test expects by default; KindWillRetry and KindSkipped never end a
// run.)
var ErrorKinds = []errors.Kind{
	errors.KindStop, errors.KindDropped, errors.KindRetry, errors.KindRetryExhausted, errors.KindFatal,
	errors.KindFailed, errors.KindPanic, errors.KindCanceled,
}

// Expectable reports whether a test may expect a run to end with kind k:
// errors.KindOK or one of ErrorKinds.
func Expectable(k errors.Kind) bool {
	if k == errors.KindOK {
		return true
	}
	for _, e := range ErrorKinds {
		if k == e {
			return true
		}
	}
	return false
}

// Kind reports whether a run that ended with an error of kind got is what
// a test expecting kind want asks for: the same kind, or, for want
// errors.KindRetry, a Retry whose retries ran out (errors.KindRetryExhausted
// is still a Retry: "retry" in a table means the run failed transiently,
// however many attempts it made).
func Kind(want, got errors.Kind) bool {
	return want == got || (want == errors.KindRetry && got == errors.KindRetryExhausted)
}

// normalize returns v's JSON form, with numbers as *big.Rat; ok is false
// when v has none.
func normalize(v any) (any, bool) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, false
	}
	return exact(out)
}

// exact replaces each json.Number in v by its exact value.
func exact(v any) (any, bool) {
	switch x := v.(type) {
	case json.Number:
		r, ok := new(big.Rat).SetString(string(x))
		return r, ok
	case map[string]any:
		for k, e := range x {
			n, ok := exact(e)
			if !ok {
				return nil, false
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, ok := exact(e)
			if !ok {
				return nil, false
			}
			x[i] = n
		}
	}
	return v, true
}

// match compares two values in normal form.
func match(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !match(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !match(w[i], g[i]) {
				return false
			}
		}
		return true
	case *big.Rat:
		g, ok := got.(*big.Rat)
		return ok && numbers(w, g)
	}
	return want == got // string, bool or nil
}

// numbers reports whether two numbers match (see Match).
func numbers(a, b *big.Rat) bool {
	if a.Cmp(b) == 0 {
		return true
	}
	if a.IsInt() && b.IsInt() {
		return false
	}
	af, _ := a.Float64()
	bf, _ := b.Float64()
	return math.Abs(af-bf) <= Tolerance*math.Max(math.Abs(af), math.Abs(bf))
}

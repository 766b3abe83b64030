package jsonenc

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strconv"
)

// Unmarshal decodes JSON into v, a *map[string]any or an *any, as
// encoding/json does, with one difference: a number that a float64 does
// not keep (an integer beyond 2^53 such as 12345678901234567891, which a
// float64 writes back as 12345678901234567000; a decimal with more digits
// than float64 keeps) is kept as a json.Number, its text, instead of being
// rounded. Every other number is a float64 as
// with encoding/json, so the common case decodes as fast and to the same
// values; Append writes a json.Number back as it was read.
func Unmarshal(data []byte, v any) error {
	if !manyDigits(data) {
		return json.Unmarshal(data, v)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("json: data after the value")
		}
	}
	if err != nil {
		// The error encoding/json gives for the same input.
		if uerr := json.Unmarshal(data, v); uerr != nil {
			return uerr
		}
		return err
	}
	ok := true
	switch p := v.(type) {
	case *map[string]any:
		_, ok = floats(*p)
	case *any:
		*p, ok = floats(*p)
	}
	if !ok {
		return json.Unmarshal(data, v) // the error encoding/json gives
	}
	return nil
}

// manyDigits reports whether data holds a run of 16 or more digits, with
// or without a decimal point: a number that may not fit a float64 exactly
// (2^53 has 16 digits). Digits inside strings count too, which only costs
// a slower decoding.
func manyDigits(data []byte) bool {
	n := 0
	for _, b := range data {
		if b-'0' < 10 {
			if n++; n >= 16 {
				return true
			}
		} else if b != '.' {
			n = 0
		}
	}
	return false
}

// floats replaces, in place, each json.Number of v whose float64 encodes
// to the same number by that float64, and returns v. It reports false for
// a number beyond the range of float64, which encoding/json refuses.
func floats(v any) (any, bool) {
	switch x := v.(type) {
	case json.Number:
		f, exact, ok := asFloat(x)
		if exact {
			return f, true
		}
		return v, ok
	case map[string]any:
		for k, el := range x {
			switch el.(type) {
			case json.Number, map[string]any, []any:
				var ok bool
				if x[k], ok = floats(el); !ok {
					return v, false
				}
			}
		}
	case []any:
		for i, el := range x {
			var ok bool
			if x[i], ok = floats(el); !ok {
				return v, false
			}
		}
	}
	return v, true
}

// asFloat returns n as a float64, whether that float64 encodes back to the
// same number (1.50 and 1e300 do; 12345678901234567891 and 2^64 do not:
// they encode as 12345678901234567000 and 18446744073709552000), and
// false when n is beyond the range of float64.
func asFloat(n json.Number) (f float64, exact, ok bool) {
	s := string(n)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, false
	}
	digits := 0
	for i := 0; i < len(s) && s[i] != 'e' && s[i] != 'E'; i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits++
		}
	}
	if digits <= 15 {
		// A decimal of up to 15 significant digits is the shortest
		// that gives its float64, so it is what encoding writes.
		return f, true, true
	}
	var in, out big.Rat
	if _, ok := in.SetString(s); !ok {
		return f, false, true
	}
	enc, _ := appendFloat(make([]byte, 0, 32), f)
	if _, ok := out.SetString(string(enc)); !ok {
		return f, false, true
	}
	return f, in.Cmp(&out) == 0, true
}

// validNumber reports whether s is a JSON number.
func validNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i == len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) || s[i] < '0' || s[i] > '9' {
			return false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	return i == len(s)
}

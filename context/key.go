package context

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
)

// ErrMissing is returned (wrapped in a [*KeyError]) when a required key is
// absent.
var ErrMissing = errors.New("missing")

// ErrType is returned (wrapped in a [*KeyError]) when a stored value does not
// have, and cannot be converted to, the type a reader asked for.
var ErrType = errors.New("wrong type")

// KeyError says which key could not be read, and why.
type KeyError struct {
	Key  string
	Want reflect.Type // the type the reader asked for
	Got  reflect.Type // the stored value's type; nil when missing or nil
	Err  error        // ErrMissing or ErrType, possibly joined with a cause
}

// Error implements error.
func (e *KeyError) Error() string {
	if errors.Is(e.Err, ErrMissing) {
		return fmt.Sprintf("key %q: missing (want %s)", e.Key, typeName(e.Want))
	}
	return fmt.Sprintf("key %q: want %s, got %s", e.Key, typeName(e.Want), typeName(e.Got))
}

// Unwrap returns the cause.
func (e *KeyError) Unwrap() error { return e.Err }

func typeName(t reflect.Type) string {
	if t == nil {
		return "nil"
	}
	return t.String()
}

// Key is a typed key: the name of a context entry and the Go type of its
// value. Declare keys once and use them from every service:
//
//	var Total = context.Key[float64]("total")
//	total, err := Total.Get(c)
type Key[T any] string

// Name returns the key's name.
func (k Key[T]) Name() string { return string(k) }

// Type returns T.
func (k Key[T]) Type() reflect.Type { return reflect.TypeFor[T]() }

// Info describes the key for contracts and build-time checks.
func (k Key[T]) Info() KeyInfo { return KeyInfo{Name: string(k), Type: reflect.TypeFor[T]()} }

// Optional describes the key as an optional input.
func (k Key[T]) Optional() KeyInfo {
	return KeyInfo{Name: string(k), Type: reflect.TypeFor[T](), Optional: true}
}

// Get returns the value under k. A missing key, or a value that cannot be
// converted to T (see [Convert]), is a [*KeyError].
func (k Key[T]) Get(c *Context) (T, error) {
	v, ok, err := k.Lookup(c)
	if err == nil && !ok {
		err = &KeyError{Key: string(k), Want: reflect.TypeFor[T](), Err: ErrMissing}
	}
	return v, err
}

// Lookup returns the value under k and whether it is present. A present
// value that cannot be converted to T is a [*KeyError].
func (k Key[T]) Lookup(c *Context) (T, bool, error) {
	var zero T
	raw, ok := c.Get(string(k))
	if !ok {
		return zero, false, nil
	}
	if v, ok := raw.(T); ok {
		return v, true, nil
	}
	v, err := Convert[T](raw)
	if err != nil {
		return zero, true, &KeyError{Key: string(k), Want: reflect.TypeFor[T](), Got: reflect.TypeOf(raw), Err: err}
	}
	return v, true, nil
}

// Or returns the value under k, or def when k is missing or unconvertible.
func (k Key[T]) Or(c *Context, def T) T {
	v, ok, err := k.Lookup(c)
	if !ok || err != nil {
		return def
	}
	return v
}

// Set stores v under k.
func (k Key[T]) Set(c *Context, v T) { c.Set(string(k), v) }

// KeyInfo describes a context key in a service's contract: its name, the Go
// type of its value (nil: any type), and whether an input may be absent.
type KeyInfo struct {
	Name     string
	Type     reflect.Type
	Optional bool
}

// String returns "name type".
func (i KeyInfo) String() string {
	if i.Type == nil {
		return i.Name
	}
	return i.Name + " " + i.Type.String()
}

// Info is implemented by anything that describes a key: [Key] and [KeyInfo].
type Info interface{ Info() KeyInfo }

// Info returns i, so a KeyInfo is itself an [Info].
func (i KeyInfo) Info() KeyInfo { return i }

// Any describes a key whose value may have any type.
func Any(name string) KeyInfo { return KeyInfo{Name: name} }

// Convert converts a stored value to T. Beyond an exact type match it
// accepts what JSON decoding and loosely typed producers give:
//   - any numeric kind to another when the value is represented exactly
//     (float64(3) to int, not 3.5 to int, not -1 to uint);
//   - a json.Number (a number decoding keeps as text, see [FromJSON]) to
//     a numeric type: exactly to an integer type that holds it
//     (12345678901234567891 to uint64, not to int64), rounded to a float
//     type as decoding to a float64 rounds it;
//   - a named type to its underlying type and back (ConvertibleTo, same kind);
//   - []any, map[string]any and other JSON-shaped values to slices, maps,
//     structs and pointers, through a JSON round trip (slow path);
//   - nil to a nilable T (pointer, slice, map, interface).
//
// Anything else returns an error wrapping [ErrType].
func Convert[T any](v any) (T, error) {
	var out T
	if t, ok := v.(T); ok {
		return t, nil
	}
	want := reflect.TypeFor[T]()
	rv, err := ConvertValue(v, want)
	if err != nil {
		return out, err
	}
	out, _ = rv.Interface().(T) // a nil interface value leaves out as the zero T
	return out, nil
}

// ConvertValue is [Convert] for a type known at run time. The result has
// type want.
func ConvertValue(v any, want reflect.Type) (reflect.Value, error) {
	if v == nil {
		switch want.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
			return reflect.Zero(want), nil
		}
		return reflect.Value{}, fmt.Errorf("%w: nil for %s", ErrType, want)
	}
	if n, ok := v.(json.Number); ok && want != jsonNumber {
		return convertJSONNumber(n, want)
	}
	rv := reflect.ValueOf(v)
	got := rv.Type()
	if got.AssignableTo(want) {
		out := reflect.New(want).Elem()
		out.Set(rv)
		return out, nil
	}
	if isNumber(got.Kind()) && isNumber(want.Kind()) {
		return convertNumber(rv, want)
	}
	if got.Kind() == want.Kind() && got.ConvertibleTo(want) {
		switch want.Kind() {
		case reflect.String, reflect.Bool, reflect.Slice, reflect.Map:
			return rv.Convert(want), nil
		}
	}
	switch want.Kind() {
	case reflect.Slice, reflect.Map, reflect.Struct, reflect.Pointer, reflect.Array:
		switch got.Kind() {
		case reflect.Slice, reflect.Map, reflect.Struct, reflect.Pointer, reflect.Array:
			b, err := json.Marshal(v)
			if err != nil {
				return reflect.Value{}, fmt.Errorf("%w: %v", ErrType, err)
			}
			out := reflect.New(want)
			if err := json.Unmarshal(b, out.Interface()); err != nil {
				return reflect.Value{}, fmt.Errorf("%w: %v", ErrType, err)
			}
			return out.Elem(), nil
		}
	}
	return reflect.Value{}, ErrType
}

var jsonNumber = reflect.TypeFor[json.Number]()

// convertJSONNumber converts a number decoding kept as text (see
// [FromJSON]): exactly to an integer type that holds it, rounded to a
// float type as decoding it as a float64 would have, to an interface
// unchanged. Anything else, a string included, is not a number's type.
func convertJSONNumber(n json.Number, want reflect.Type) (reflect.Value, error) {
	out := reflect.New(want).Elem()
	switch {
	case want.Kind() == reflect.Interface && jsonNumber.AssignableTo(want):
		out.Set(reflect.ValueOf(n))
		return out, nil
	case out.CanInt():
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			return convertNumber(reflect.ValueOf(i), want)
		}
	case out.CanUint():
		if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
			return convertNumber(reflect.ValueOf(u), want)
		}
	case !out.CanFloat():
		return out, fmt.Errorf("%w: number %s for %s", ErrType, n, want)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return out, fmt.Errorf("%w: number %s for %s", ErrType, n, want)
	}
	return convertNumber(reflect.ValueOf(f), want)
}

func isNumber(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Float64
}

func convertNumber(rv reflect.Value, want reflect.Type) (reflect.Value, error) {
	out := reflect.New(want).Elem()
	var f float64
	switch {
	case rv.CanInt():
		i := rv.Int()
		switch {
		case out.CanInt():
			if out.OverflowInt(i) {
				return out, fmt.Errorf("%w: %d overflows %s", ErrType, i, want)
			}
			out.SetInt(i)
			return out, nil
		case out.CanUint():
			if i < 0 || out.OverflowUint(uint64(i)) {
				return out, fmt.Errorf("%w: %d overflows %s", ErrType, i, want)
			}
			out.SetUint(uint64(i))
			return out, nil
		}
		f = float64(i)
	case rv.CanUint():
		u := rv.Uint()
		switch {
		case out.CanUint():
			if out.OverflowUint(u) {
				return out, fmt.Errorf("%w: %d overflows %s", ErrType, u, want)
			}
			out.SetUint(u)
			return out, nil
		case out.CanInt():
			if u > math.MaxInt64 || out.OverflowInt(int64(u)) {
				return out, fmt.Errorf("%w: %d overflows %s", ErrType, u, want)
			}
			out.SetInt(int64(u))
			return out, nil
		}
		f = float64(u)
	default:
		f = rv.Float()
	}
	switch {
	case out.CanFloat():
		if want.Kind() == reflect.Float32 && out.OverflowFloat(f) {
			return out, fmt.Errorf("%w: %g overflows %s", ErrType, f, want)
		}
		out.SetFloat(f)
	case out.CanInt():
		if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 || out.OverflowInt(int64(f)) {
			return out, fmt.Errorf("%w: %g is not a %s", ErrType, f, want)
		}
		out.SetInt(int64(f))
	case out.CanUint():
		if f != math.Trunc(f) || f < 0 || f >= math.MaxUint64 || out.OverflowUint(uint64(f)) {
			return out, fmt.Errorf("%w: %g is not a %s", ErrType, f, want)
		}
		out.SetUint(uint64(f))
	}
	return out, nil
}

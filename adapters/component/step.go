package component

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Key is a spec field naming a key of the run's context: `into:
// customer`, `keys: [total]`. A decoder checks that it is a name (not
// empty, no surrounding blanks). When a step needs a key that a Key field
// names (its contract's Needs), a build error about that key points at
// the field, as it points inside an [Expr] or a [Template] that reads it.
type Key string

// Pairs is a spec field holding a mapping read in the order it is
// written, for specs whose entries are ordered or named by the user:
// `set: {subtotal: "...", total: "subtotal * 2"}` is
// Pairs[Expr]{{"subtotal", ...}, {"total", ...}}. A decoder reports each
// entry's problems as `set "total": ...`.
type Pairs[T any] []Pair[T]

// Pair is one entry of [Pairs].
type Pair[T any] struct {
	Key   string
	Value T
}

func (Pair[T]) isPair() {}

// Keys returns the keys, in order.
func (p Pairs[T]) Keys() []string {
	out := make([]string, len(p))
	for i, e := range p {
		out[i] = e.Key
	}
	return out
}

type pairMarker interface{ isPair() }

var pairMarkerType = reflect.TypeFor[pairMarker]()

// IsPairs reports whether t is a [Pairs] type; a decoder fills the Key
// (field 0) and Value (field 1) of each element of such a slice.
func IsPairs(t reflect.Type) bool {
	return t != nil && t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct && t.Elem().Implements(pairMarkerType)
}

// FieldError is a constructor's error about one field of its spec: what
// a configuration reader reports at that field's position in the file
// (adapters/config reports "http: method: expected GET, ..." at the
// method's value). Field is the field's dotted path in the spec as YAML
// writes it: "method", "allow_status.1", "headers.Accept". A constructor
// may return several, joined with errors.Join.
type FieldError struct {
	Field string
	Err   error
}

// Error returns "field: err".
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Err.Error()
	}
	return e.Field + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }

// FieldErrorf returns a [FieldError] for field with a formatted message.
func FieldErrorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// FieldErrors returns the FieldErrors in err's tree (through wrapping and
// errors.Join), and the errors of the tree that hold none.
func FieldErrors(err error) (fields []*FieldError, others []error) {
	var walk func(err error)
	walk = func(err error) {
		var fe *FieldError
		switch {
		case err == nil:
		case !errors.As(err, &fe):
			others = append(others, err)
		case err == error(fe):
			fields = append(fields, fe)
		default:
			switch u := err.(type) {
			case interface{ Unwrap() []error }:
				for _, e := range u.Unwrap() {
					walk(e)
				}
			case interface{ Unwrap() error }:
				walk(u.Unwrap())
			default: // an As method found it
				fields = append(fields, fe)
			}
		}
	}
	walk(err)
	return fields, others
}

// StepNamer is implemented by step specs that say the name a step of
// theirs gets when the configuration gives it none: "set(total)",
// "http(customer)". Readers make it unique in its flow ("set(total)#2").
// A spec without it gives its component's name.
type StepNamer interface {
	StepName() string
}

// StepName returns the name spec (a value or pointer of a step
// component's spec type) gives its step, or the component's name.
func (c Component) StepName(spec any) string {
	if n, ok := spec.(StepNamer); ok {
		if s := n.StepName(); s != "" {
			return s
		}
	}
	if v := reflect.ValueOf(spec); v.Kind() == reflect.Pointer && !v.IsNil() {
		if n, ok := v.Elem().Interface().(StepNamer); ok {
			if s := n.StepName(); s != "" {
				return s
			}
		}
	}
	return c.Name
}

// Restrict returns c marked as off unless enabled: a configuration that
// names it is refused unless whoever reads it enabled the component by
// name (config.Allow, flowrun --allow-NAME). what says in a few words
// what makes it dangerous, for that error: "running commands".
func (c Component) Restrict(what string) Component {
	c.Restricted = cmp.Or(strings.TrimSpace(what), c.Name)
	return c
}

// WithValue returns a copy of e that provides v to constructors under its
// dynamic type (an *http.Client for outbound calls); read it with
// [Value]. A nil v is ignored.
func (e Env) WithValue(v any) Env {
	if v == nil {
		return e
	}
	m := make(map[reflect.Type]any, len(e.values)+1)
	for k, x := range e.values {
		m[k] = x
	}
	m[reflect.TypeOf(v)] = v
	e.values = m
	return e
}

// Value returns the value of type T that env provides, if any (see
// [Env.WithValue]).
func Value[T any](env Env) (T, bool) {
	v, ok := env.values[reflect.TypeFor[T]()]
	if !ok {
		var zero T
		return zero, false
	}
	return v.(T), true
}

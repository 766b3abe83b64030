// Package jsonenc encodes the values a flow's context holds as JSON, byte
// for byte as encoding/json does, without reflection and without
// allocating for maps of string to any, slices of any, strings, bools and
// numbers. The engine encodes every run's context and trace with it.
package jsonenc

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"
)

// MaxDepth is the deepest nesting of objects and arrays Append encodes:
// the limit encoding/json's decoder puts on its input, so whatever was
// decoded can be encoded again.
const MaxDepth = 10000

// ErrCycle is returned (wrapped, with the path to the value) by Append for
// a map or slice that contains itself: encoding it would never end.
var ErrCycle = errors.New("value contains itself (a cycle)")

// ErrTooDeep is returned (wrapped, with the path to the value) by Append for
// objects and arrays nested deeper than [MaxDepth].
var ErrTooDeep = errors.New("value nested deeper than 10000 levels")

// Append appends the JSON encoding of v to dst and returns the extended
// slice. The bytes are exactly what [encoding/json.Marshal] writes: map
// keys sorted, HTML characters escaped, the same number formats, a
// json.Number as its text. The values a context usually holds (maps of
// string to any, slices of any, strings, bools, numbers, json.Number, nil)
// are encoded directly and without allocating; anything else goes through
// encoding/json.
//
// A map or slice that contains itself is an error wrapping [ErrCycle], and
// nesting deeper than [MaxDepth] one wrapping [ErrTooDeep]: Append never
// recurses without bound.
//
// On error, which names the map key or slice index of the value that
// cannot be encoded (a NaN, a channel, a cycle, ...), the contents of the
// returned slice are unspecified.
func Append(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return AppendString(dst, x), nil
	case map[string]any, []any, map[string]string:
	default:
		var e encoder // scalars need no key storage
		return e.value(dst, v)
	}
	e := encoders.Get().(*encoder)
	dst, err := e.value(dst, v)
	for i := range e.keys {
		clear(e.keys[i][:cap(e.keys[i])]) // do not keep the keys alive
	}
	e.depth, e.nest, e.open = 0, 0, nil
	encoders.Put(e)
	return dst, err
}

// encoder keeps the key slices of the maps being encoded, one per
// depth, reused from call to call through a pool, and the maps and slices
// open beyond a nesting of trackFrom, to detect cycles.
type encoder struct {
	keys  [][]string
	depth int
	nest  int                    // maps and slices open
	open  map[container]struct{} // those open beyond trackFrom
}

// container identifies a map or slice being encoded: its data pointer,
// and for a slice its length (a slice and its first element may share a
// pointer).
type container struct {
	ptr unsafe.Pointer
	len int
}

// trackFrom is the nesting from which the encoder records the maps and
// slices it opens. A cycle nests without end, so it is found once past
// it, while the values a context usually holds, far shallower, cost one
// counter.
const trackFrom = 64

// track records c as open, failing if it already is (a cycle) or the
// nesting is too deep.
func (e *encoder) track(c container) error {
	if e.nest >= MaxDepth {
		return ErrTooDeep
	}
	if e.open == nil {
		e.open = make(map[container]struct{})
	}
	if _, ok := e.open[c]; ok {
		return ErrCycle
	}
	e.open[c] = struct{}{}
	return nil
}

// mapPointer returns the identity of a map.
func mapPointer[V any](m map[string]V) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&m)) }

// pathError is an error at a key or index path inside the encoded value.
// Segments are added as the encoder unwinds, innermost first, so a deep
// error costs one append per level, not one message per level.
type pathError struct {
	rev []string // path segments, innermost first
	err error
}

// maxPathShown is the number of path segments an error message shows at
// each end of a longer path.
const maxPathShown = 8

func (p *pathError) Error() string {
	var b strings.Builder
	n := len(p.rev)
	for i := n - 1; i >= 0; i-- {
		if n > 2*maxPathShown && i == n-1-maxPathShown {
			b.WriteString("(")
			b.WriteString(strconv.Itoa(n - 2*maxPathShown))
			b.WriteString(" more levels): ")
			i = maxPathShown
		}
		b.WriteString(p.rev[i])
		b.WriteString(": ")
	}
	b.WriteString(p.err.Error())
	return b.String()
}

func (p *pathError) Unwrap() error { return p.err }

// at adds a path segment to err.
func at(err error, seg string) error {
	if p, ok := err.(*pathError); ok {
		p.rev = append(p.rev, seg)
		return p
	}
	return &pathError{rev: []string{seg}, err: err}
}

var encoders = sync.Pool{New: func() any { return new(encoder) }}

func (e *encoder) value(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return AppendString(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case float64:
		return appendFloat(dst, x)
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case json.Number:
		if x == "" {
			return append(dst, '0'), nil // as encoding/json writes it
		}
		if validNumber(string(x)) {
			return append(dst, x...), nil
		}
	case map[string]any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		var c container
		if e.nest >= trackFrom {
			if c.ptr = mapPointer(x); c.ptr != nil {
				if err := e.track(c); err != nil {
					return dst, err
				}
			}
		}
		e.nest++
		dst, err := appendObject(e, dst, x, e.value)
		e.nest--
		if c.ptr != nil {
			delete(e.open, c)
		}
		return dst, err
	case []any:
		if x == nil {
			return append(dst, "null"...), nil
		}
		if len(x) == 0 {
			return append(dst, '[', ']'), nil
		}
		var c container
		if e.nest >= trackFrom {
			c = container{ptr: unsafe.Pointer(unsafe.SliceData(x)), len: len(x)}
			if err := e.track(c); err != nil {
				return dst, err
			}
		}
		e.nest++
		dst, err := e.array(dst, x)
		e.nest--
		if c.ptr != nil {
			delete(e.open, c)
		}
		return dst, err
	case map[string]string:
		if x == nil {
			return append(dst, "null"...), nil
		}
		return appendObject(e, dst, x, func(dst []byte, s string) ([]byte, error) { return AppendString(dst, s), nil })
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// array appends the elements of x in brackets.
func (e *encoder) array(dst []byte, x []any) ([]byte, error) {
	dst = append(dst, '[')
	for i, el := range x {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = e.value(dst, el); err != nil {
			return dst, at(err, "["+strconv.Itoa(i)+"]")
		}
	}
	return append(dst, ']'), nil
}

// appendObject appends m with its keys sorted, each value written by val.
func appendObject[V any](e *encoder, dst []byte, m map[string]V, val func([]byte, V) ([]byte, error)) ([]byte, error) {
	keys := e.level()
	defer func() { e.depth-- }()
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.keys[e.depth-1] = keys
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, k)
		dst = append(dst, ':')
		var err error
		if dst, err = val(dst, m[k]); err != nil {
			return dst, at(err, "key "+strconv.Quote(k))
		}
	}
	return append(dst, '}'), nil
}

// level returns an empty key slice for a map at the next depth.
func (e *encoder) level() []string {
	if e.depth == len(e.keys) {
		e.keys = append(e.keys, nil)
	}
	e.depth++
	return e.keys[e.depth-1][:0]
}

// appendFloat formats f as encoding/json does.
func appendFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, &json.UnsupportedValueError{Str: strconv.FormatFloat(f, 'g', -1, 64)}
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 -> e-9, as encoding/json writes it
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string, escaped the way encoding/json
// escapes it: control characters, quotes, backslashes and <, >, &
// escaped, invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped. It
// is Append for a string, without boxing it.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

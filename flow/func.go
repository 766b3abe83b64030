package flow

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unsafe"

	fc "github.com/svcflow/svcflow/context"
)

// Func returns a typed service: fn receives an In whose fields are read
// from context keys, and returns an Out whose fields are written back.
//
// In must be a struct. Each exported field binds to the key named by its
// `flow:"name"` tag, or else its name in snake_case (CustomerID ->
// customer_id). `flow:"name,optional"` (or `flow:",optional"`) lets the key
// be absent: the field keeps its zero value. `flow:"-"` skips a field.
// Values are converted as [fc.Convert] does (a JSON number 3 fills an int).
//
// A field tagged `provide:""` (or `provide:"name"`) is not read from the
// context: it receives the value of that type from the flow's providers
// (see [Builder.Provide] and package provide), checked when the flow is
// built.
//
// Out must be a struct, bound the same way (`flow:"name,omitempty"` skips
// writing a zero value), or a map[string]any whose entries are all written.
// A map output provides nothing the build checks can see unless declared
// with [Provides] among opts: those keys must then be in every map fn
// returns (a missing one, or a value of another type than a typed key's,
// is an error of the step). Outputs are written only when fn returns nil.
// Use struct{} for "no inputs" or "no outputs". [Needs] among opts adds
// keys the step reads besides its input's.
//
// The binding is planned once, here; its contract (needs from In, provides
// from a struct Out) feeds the flow's build checks. A type that cannot be
// bound is reported when the flow is built, never by a panic.
func Func[In, Out any](name string, fn func(ctx context.Context, in In) (Out, error), opts ...StepOption) Service {
	f := &funcService[In, Out]{name: name, fn: fn}
	var err error
	if f.in, err = planFields(reflect.TypeFor[In](), true); err != nil {
		f.err = fmt.Errorf("input %w", err)
	} else if reflect.TypeFor[Out]() == reflect.TypeFor[map[string]any]() {
		f.outMap = true
	} else if f.out, err = planFields(reflect.TypeFor[Out](), false); err != nil {
		f.err = fmt.Errorf("output %w", err)
	}
	if fn == nil && f.err == nil {
		f.err = errors.New("nil function")
	}
	in := f.in[:0:0]
	for _, b := range f.in {
		if b.provided {
			f.prov = append(f.prov, b)
			continue
		}
		in = append(in, b)
		f.contract.Needs = append(f.contract.Needs, fc.KeyInfo{Name: b.key, Type: b.typ, Optional: b.optional})
	}
	f.in = in
	for _, b := range f.out {
		f.contract.Provides = append(f.contract.Provides, fc.KeyInfo{Name: b.key, Type: b.typ})
	}
	if len(opts) > 0 {
		var st step
		for _, o := range opts {
			if o != nil {
				o(&st)
			}
		}
		f.pure = st.pure
		f.contract.Needs = append(f.contract.Needs, st.contract.Needs...)
		if len(st.contract.Provides) > 0 && !f.outMap && f.err == nil {
			f.err = fmt.Errorf("output %s: Provides declares the keys of a map[string]any output; a struct output declares its own", reflect.TypeFor[Out]())
		}
		if f.outMap {
			f.outKeys = st.contract.Provides
			f.contract.Provides = append(f.contract.Provides, st.contract.Provides...)
		}
	}
	return f
}

type binding struct {
	key       string
	field     string // the Go field's name
	provided  bool   // a provide tag: filled from the flow's providers
	pname     string // the provider's name
	offset    uintptr
	acc       accessor
	typ       reflect.Type
	optional  bool
	omitEmpty bool
}

type funcService[In, Out any] struct {
	name     string
	fn       func(context.Context, In) (Out, error)
	in, out  []binding
	prov     []binding  // fields filled from providers
	inj      []injected // their providers, once injected
	outMap   bool
	outKeys  []fc.KeyInfo // the keys a map output declares
	contract Contract
	err      error
	frames   sync.Pool // *frame[In, Out], reused across calls
	pure     bool      // NoEffects
}

// Pure implements [Pure]: true with [NoEffects].
func (f *funcService[In, Out]) Pure() bool { return f.pure }

func (f *funcService[In, Out]) Name() string       { return f.name }
func (f *funcService[In, Out]) Contract() Contract { return f.contract }
func (f *funcService[In, Out]) buildErr() error    { return f.err }

// frame holds one call's input and output; frames are pooled, so a call
// allocates nothing for them.
type frame[In, Out any] struct {
	in  In
	out Out
}

func (f *funcService[In, Out]) Call(ctx context.Context, c *fc.Context) error {
	if f.err != nil {
		return f.err
	}
	fr, _ := f.frames.Get().(*frame[In, Out])
	if fr == nil {
		fr = new(frame[In, Out])
	}
	err := f.call(ctx, c, fr)
	*fr = frame[In, Out]{} // hold no references while pooled
	f.frames.Put(fr)
	return err
}

func (f *funcService[In, Out]) call(ctx context.Context, c *fc.Context, fr *frame[In, Out]) error {
	base := unsafe.Pointer(&fr.in)
	for i := range f.in {
		b := &f.in[i]
		raw, ok := c.Get(b.key)
		if !ok {
			if b.optional {
				continue
			}
			return &fc.KeyError{Key: b.key, Want: b.typ, Err: fc.ErrMissing}
		}
		p := unsafe.Add(base, b.offset)
		if b.acc.set != nil && b.acc.set(p, raw) {
			continue
		}
		cv, err := fc.ConvertValue(raw, b.typ)
		if err != nil {
			return &fc.KeyError{Key: b.key, Want: b.typ, Got: reflect.TypeOf(raw), Err: err}
		}
		reflect.NewAt(b.typ, p).Elem().Set(cv)
	}
	if len(f.prov) > 0 {
		if len(f.inj) != len(f.prov) {
			return f.notInjected()
		}
		for i := range f.inj {
			// A singleton of an interface type already made is copied in
			// place; the rest is fill's.
			if in := &f.inj[i]; in.ready.Load() == 3 {
				*(*[2]unsafe.Pointer)(unsafe.Add(base, in.offset)) = in.w
			} else if err := in.fill(ctx, base); err != nil {
				return err
			}
		}
	}
	var err error
	if fr.out, err = f.fn(ctx, fr.in); err != nil {
		return err
	}
	if f.outMap {
		if m, ok := any(fr.out).(map[string]any); ok {
			if err := checkOutKeys(f.outKeys, m); err != nil {
				return err
			}
			for _, k := range slices.Sorted(maps.Keys(m)) {
				c.Set(k, m[k])
			}
		}
		return nil
	}
	base = unsafe.Pointer(&fr.out)
	for i := range f.out {
		b := &f.out[i]
		p := unsafe.Add(base, b.offset)
		if b.omitEmpty && reflect.NewAt(b.typ, p).Elem().IsZero() {
			continue
		}
		if b.acc.get != nil {
			c.Set(b.key, b.acc.get(p))
		} else {
			c.Set(b.key, reflect.NewAt(b.typ, p).Elem().Interface())
		}
	}
	return nil
}

// checkOutKeys checks that a map output holds the keys it declares, with
// their types.
func checkOutKeys(declared []fc.KeyInfo, m map[string]any) error {
	for _, k := range declared {
		v, ok := m[k.Name]
		if !ok {
			return fmt.Errorf("output key %q: declared with Provides but missing from the returned map", k.Name)
		}
		if k.Type != nil && (v == nil || !reflect.TypeOf(v).AssignableTo(k.Type)) {
			return fmt.Errorf("output key %q: declared as %s, got %T", k.Name, k.Type, v)
		}
	}
	return nil
}

// accessor reads and writes a struct field of one Go type through a
// pointer, without reflection: the fast path of Func's binding for common
// types. set reports false when raw does not have exactly the field's type
// (the caller then converts).
type accessor struct {
	set func(p unsafe.Pointer, raw any) bool
	get func(p unsafe.Pointer) any
}

func accessorFor[T any]() accessor {
	return accessor{
		set: func(p unsafe.Pointer, raw any) bool {
			v, ok := raw.(T)
			if ok {
				*(*T)(p) = v
			}
			return ok
		},
		get: func(p unsafe.Pointer) any { return *(*T)(p) },
	}
}

// accessors covers the types services use most; other types go through
// reflection.
var accessors = map[reflect.Type]accessor{
	reflect.TypeFor[int]():            accessorFor[int](),
	reflect.TypeFor[int64]():          accessorFor[int64](),
	reflect.TypeFor[float64]():        accessorFor[float64](),
	reflect.TypeFor[string]():         accessorFor[string](),
	reflect.TypeFor[bool]():           accessorFor[bool](),
	reflect.TypeFor[any]():            accessorFor[any](),
	reflect.TypeFor[[]any]():          accessorFor[[]any](),
	reflect.TypeFor[[]string]():       accessorFor[[]string](),
	reflect.TypeFor[[]int]():          accessorFor[[]int](),
	reflect.TypeFor[[]float64]():      accessorFor[[]float64](),
	reflect.TypeFor[map[string]any](): accessorFor[map[string]any](),
	reflect.TypeFor[time.Time]():      accessorFor[time.Time](),
	reflect.TypeFor[time.Duration]():  accessorFor[time.Duration](),
}

// planFields plans the binding of struct type t's exported fields to keys.
func planFields(t reflect.Type, input bool) ([]binding, error) {
	if t.Kind() != reflect.Struct {
		if input {
			return nil, fmt.Errorf("type %s: must be a struct", t)
		}
		return nil, fmt.Errorf("type %s: must be a struct or map[string]any", t)
	}
	var bs []binding
	seen := map[string]string{}
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("flow")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = SnakeCase(sf.Name)
		}
		b := binding{key: name, field: sf.Name, offset: sf.Offset, typ: sf.Type, acc: accessors[sf.Type]}
		if pname, ok := sf.Tag.Lookup("provide"); ok {
			if !input {
				return nil, fmt.Errorf("type %s: field %s: a provide tag applies to inputs only", t, sf.Name)
			}
			if tag != "" {
				return nil, fmt.Errorf("type %s: field %s: a provided field takes no flow tag", t, sf.Name)
			}
			bs = append(bs, binding{field: sf.Name, offset: sf.Offset, typ: sf.Type, provided: true, pname: pname})
			continue
		}
		for o := range strings.SplitSeq(opts, ",") {
			switch o {
			case "":
			case "optional":
				if !input {
					return nil, fmt.Errorf("type %s: field %s: option optional applies to inputs only", t, sf.Name)
				}
				b.optional = true
			case "omitempty":
				if input {
					return nil, fmt.Errorf("type %s: field %s: option omitempty applies to outputs only", t, sf.Name)
				}
				b.omitEmpty = true
			default:
				return nil, fmt.Errorf("type %s: field %s: unknown tag option %q (want optional or omitempty)", t, sf.Name, o)
			}
		}
		if prev, dup := seen[name]; dup {
			return nil, fmt.Errorf("type %s: fields %s and %s both bind key %q", t, prev, sf.Name, name)
		}
		seen[name] = sf.Name
		bs = append(bs, b)
	}
	return bs, nil
}

// SnakeCase converts a Go field name to the key name Func binds it to:
// CustomerID -> customer_id, HTTPStatus -> http_status, Total -> total.
func SnakeCase(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]) ||
				(i+1 < len(r) && unicode.IsLower(r[i+1]))) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(c))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

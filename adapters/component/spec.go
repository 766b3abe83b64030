package component

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/svcflow/svcflow/adapters/channel"
)

// Field describes one field of a spec struct, read from its tags:
//
//	type FilesSpec struct {
//		Dir  string        `yaml:"dir" spec:"required,scalar" doc:"the folder to watch"`
//		Glob string        `yaml:"glob" default:"*" doc:"base names to take"`
//		Every time.Duration `yaml:"rescan" default:"5s" doc:"how often to rescan"`
//	}
//
// The yaml tag names the key (default: the field name in snake_case; "-"
// skips the field). The spec tag holds flags: required (the key must be
// present; for an inline field, at least one entry), scalar (a plain value
// instead of a mapping fills this field: `cron: "@every 1m"` is `cron:
// {spec: "@every 1m"}`; at most one field), list (likewise a YAML list
// fills this field, a slice; at most one field), oneormany (a slice field
// that also takes a single item), inline (the field, a [Pairs] or a map,
// is the spec's whole mapping: `set: {total: "..."}`; the spec has no
// other field), path (a string field naming a file or folder: a relative
// path is resolved against the folder of the configuration file that
// declares it, so `dir: inbox` in conf/app.yaml is conf/inbox whatever
// the working directory; a value given with --set stays relative to the
// working directory, as do values starting with ":" such as ":memory:"). default is the value used when the key is absent: the text
// itself for a string field, else written as in YAML (default:"5s",
// default:"[a, b]"). enum lists the values a string field takes
// (enum:"debug,info,warn,error"). doc is one line
// for catalogs and schemas. A field of type [Ref] or []Ref names a
// component; its kind tag says which kind (`kind:"source"`).
//
// Field types a decoder reads: string, bool, integers, floats,
// time.Duration ("250ms"), errors.Policy (the keys of a flow's retry:),
// map[string]any, any, []T, map[string]T, [Pairs] (a mapping in the order
// written), structs (mappings of their fields), pointers to those (nil
// when absent), [Ref], and what steps read of the run's context: [Expr],
// [Cond], [Template] and [Key].
//
// In a step component's spec, a field named timeout (a time.Duration) or
// retry (an errors.Policy or a pointer to one) is the step's own timeout or
// retry policy: a configuration reader applies it as it applies the step's
// timeout: and retry: keys (its default included), and refuses a step
// that sets both; the constructor does not apply it itself.
type Field struct {
	Name      string       // the YAML key
	Index     int          // the struct field index
	Type      reflect.Type // the Go type
	Doc       string
	Default   string // the default as YAML text; "" for none
	Required  bool
	Scalar    bool
	List      bool
	OneOrMany bool
	Inline    bool
	Path      bool     // a file or folder: a relative one is resolved against the configuration file's folder
	Enum      []string // the values a string field takes; nil: any
	Min       int      // the least value of a signed integer field (tag min, default 0)
	Kind      Kind     // the component kind of a Ref field
}

// Fields describes the exported fields of the struct type t (nil for
// other types), in declaration order.
func Fields(t reflect.Type) []Field {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []Field
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = SnakeCase(sf.Name)
		}
		f := Field{Name: name, Index: i, Type: sf.Type, Doc: sf.Tag.Get("doc"), Default: sf.Tag.Get("default"), Kind: Kind(sf.Tag.Get("kind"))}
		for flag := range strings.SplitSeq(sf.Tag.Get("spec"), ",") {
			switch strings.TrimSpace(flag) {
			case "required":
				f.Required = true
			case "scalar":
				f.Scalar = true
			case "oneormany":
				f.OneOrMany = true
			case "list":
				f.List = true
			case "inline":
				f.Inline = true
			case "path":
				f.Path = true
			}
		}
		if m := sf.Tag.Get("min"); m != "" {
			n, err := strconv.Atoi(m)
			if err != nil || n > 0 {
				panic(fmt.Sprintf("component: field %s: min %q: want an integer of 0 or less", sf.Name, m))
			}
			f.Min = n
		}
		if e := sf.Tag.Get("enum"); e != "" {
			for v := range strings.SplitSeq(e, ",") {
				f.Enum = append(f.Enum, strings.TrimSpace(v))
			}
		}
		out = append(out, f)
	}
	return out
}

// ListField returns the field a YAML list fills, if the spec has one.
func ListField(t reflect.Type) (Field, bool) {
	for _, f := range Fields(t) {
		if f.List {
			return f, true
		}
	}
	return Field{}, false
}

// InlineField returns the field that is the spec's whole mapping, if the
// spec has one.
func InlineField(t reflect.Type) (Field, bool) {
	for _, f := range Fields(t) {
		if f.Inline {
			return f, true
		}
	}
	return Field{}, false
}

// ScalarField returns the field a plain value fills, if the spec has one.
func ScalarField(t reflect.Type) (Field, bool) {
	for _, f := range Fields(t) {
		if f.Scalar {
			return f, true
		}
	}
	return Field{}, false
}

// checkSpec checks the tags of a spec type, so that mistakes show at
// registration rather than when a file is read.
func checkSpec(t reflect.Type) error {
	return checkStruct(t, map[reflect.Type]bool{})
}

func checkStruct(t reflect.Type, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	scalars, lists := 0, 0
	names := map[string]bool{}
	fields := Fields(t)
	for _, f := range fields {
		if names[f.Name] {
			return fmt.Errorf("spec %v: two fields use the key %q: %w", t, f.Name, ErrInvalid)
		}
		names[f.Name] = true
		if f.Scalar {
			scalars++
		}
		if f.List {
			lists++
			if f.Type.Kind() != reflect.Slice {
				return fmt.Errorf("spec %v: field %s: list on a %v, not a slice: %w", t, f.Name, f.Type, ErrInvalid)
			}
		}
		if f.Inline {
			if len(fields) > 1 {
				return fmt.Errorf("spec %v: field %s is inline: the spec can have no other field: %w", t, f.Name, ErrInvalid)
			}
			if !IsPairs(f.Type) && !(f.Type.Kind() == reflect.Map && f.Type.Key().Kind() == reflect.String) {
				return fmt.Errorf("spec %v: field %s: inline on a %v, not Pairs or a map with string keys: %w", t, f.Name, f.Type, ErrInvalid)
			}
		}
		base := f.Type
		for base.Kind() == reflect.Pointer || base.Kind() == reflect.Slice || base.Kind() == reflect.Map {
			base = base.Elem()
		}
		if len(f.Enum) > 0 && base.Kind() != reflect.String {
			return fmt.Errorf("spec %v: field %s: enum on a %v, not a string: %w", t, f.Name, f.Type, ErrInvalid)
		}
		if base == refType && !slices.Contains(Kinds, f.Kind) {
			return fmt.Errorf("spec %v: field %s names a component but has no kind tag (kind:\"source\", ...): %w", t, f.Name, ErrInvalid)
		}
		if f.OneOrMany && f.Type.Kind() != reflect.Slice {
			return fmt.Errorf("spec %v: field %s: oneormany on a %v, not a slice: %w", t, f.Name, f.Type, ErrInvalid)
		}
		if base.Kind() == reflect.Struct && !opaque(base) {
			if err := checkStruct(base, seen); err != nil {
				return err
			}
		}
	}
	if scalars > 1 {
		return fmt.Errorf("spec %v: more than one scalar field: %w", t, ErrInvalid)
	}
	if lists > 1 {
		return fmt.Errorf("spec %v: more than one list field: %w", t, ErrInvalid)
	}
	return nil
}

// opaque reports whether t is a struct type a decoder reads as a whole,
// not as a mapping of its fields.
func opaque(t reflect.Type) bool {
	switch t {
	case refType, exprType, condType, templateType, reflect.TypeFor[time.Time]():
		return true
	}
	return t.PkgPath() == "github.com/svcflow/svcflow/errors"
}

var (
	exprType     = reflect.TypeFor[Expr]()
	condType     = reflect.TypeFor[Cond]()
	templateType = reflect.TypeFor[Template]()
	keyType      = reflect.TypeFor[Key]()
)

// SnakeCase turns a Go field name into a YAML key: MaxBody -> max_body,
// HTTPPort -> http_port.
func SnakeCase(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1]) && unicode.IsUpper(rs[i-1])) {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Ref is a component chosen by a configuration with its decoded spec: what
// `from: {http: {...}}` or `store: sqlite:data/x.db` becomes.
type Ref struct {
	// Component is the chosen component.
	Component Component
	// Spec is a pointer to its decoded spec.
	Spec any
}

var refType = reflect.TypeFor[Ref]()

// IsZero reports whether r names no component.
func (r Ref) IsZero() bool { return r.Component.build == nil }

// String returns "kind name".
func (r Ref) String() string { return string(r.Component.Kind) + " " + r.Component.Name }

// Build calls the component's constructor on the spec.
func (r Ref) Build(env Env) (any, error) {
	if r.IsZero() {
		return nil, fmt.Errorf("component: no component chosen: %w", ErrInvalid)
	}
	return r.Component.Build(env, r.Spec)
}

// Source builds a source component.
func (r Ref) Source(env Env) (channel.Source, error) {
	return as[channel.Source](r, KindSource, env)
}

// Store builds a store component: it checks the spec and returns the
// opener.
func (r Ref) Store(env Env) (StoreOpener, error) {
	return as[StoreOpener](r, KindStore, env)
}

func as[T any](r Ref, kind Kind, env Env) (T, error) {
	var zero T
	if r.Component.Kind != kind {
		return zero, fmt.Errorf("component %s %q is not a %s: %w", r.Component.Kind, r.Component.Name, kind, ErrInvalid)
	}
	v, err := r.Build(env)
	if err != nil {
		return zero, err
	}
	return v.(T), nil
}

// ParseURL chooses a component of kind from a URL-like string,
// "name:rest": the component named name, with rest in its spec's scalar
// field (`sqlite:data/orders.db`, `memory:`). Only specs whose scalar field
// is a string take a rest. Defaults of other fields are not applied: a
// configuration decoder applies them; callers of ParseURL build with
// constructors that treat zero fields as their defaults.
func (r *Registry) ParseURL(kind Kind, url string) (Ref, error) {
	name, rest, ok := strings.Cut(url, ":")
	if !ok {
		return Ref{}, fmt.Errorf("%s %q: expected name:value, such as %s: %w", kind, url, r.examples(kind), ErrInvalid)
	}
	c, err := r.Get(kind, name)
	if err != nil {
		return Ref{}, err
	}
	spec := reflect.New(c.spec)
	if rest != "" {
		f, ok := ScalarField(c.spec)
		if !ok || f.Type.Kind() != reflect.String {
			return Ref{}, fmt.Errorf("%s %q: %s takes nothing after %q: %w", kind, url, name, name+":", ErrInvalid)
		}
		spec.Elem().Field(f.Index).SetString(rest)
	}
	return Ref{Component: c, Spec: spec.Interface()}, nil
}

func (r *Registry) examples(kind Kind) string {
	var ex []string
	for _, n := range r.Names(kind) {
		c, _ := r.Lookup(kind, n)
		if f, ok := ScalarField(c.spec); ok && f.Type.Kind() == reflect.String {
			ex = append(ex, n+":"+strings.ToUpper(f.Name))
		} else {
			ex = append(ex, n+":")
		}
	}
	if len(ex) == 0 {
		return "(none registered)"
	}
	return strings.Join(ex, ", ")
}

// TypeName names a spec field's Go type for catalogs: string, integer,
// number, boolean, duration, retry policy, expression, condition,
// template, key, list of T, map of T (in order for [Pairs]), source (a
// [Ref] of that kind), object, any.
func TypeName(f Field) string {
	return typeName(f.Type, f.Kind)
}

func typeName(t reflect.Type, kind Kind) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return "duration"
	case refType:
		return string(kind)
	case reflect.TypeFor[any]():
		return "any"
	case exprType:
		return "expression"
	case condType:
		return "condition"
	case templateType:
		return "template"
	case keyType:
		return "key"
	}
	if IsPairs(t) {
		return "map of " + typeName(t.Elem().Field(1).Type, kind) + " (in order)"
	}
	if t.PkgPath() == "github.com/svcflow/svcflow/errors" && t.Name() == "Policy" {
		return "retry policy"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem(), kind)
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		return "list of " + typeName(t.Elem(), kind)
	case reflect.Map:
		return "map of " + typeName(t.Elem(), kind)
	case reflect.Struct:
		return "object"
	}
	return t.String()
}

package config

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	yaml "go.yaml.in/yaml/v4"

	"github.com/svcflow/svcflow/adapters/component"
	ferrors "github.com/svcflow/svcflow/errors"
)

// Section is a named entry of a top-level section that the loader keeps
// for another package to read, such as a channel under channels:. Read it
// into a spec struct with [Section.Decode].
type Section struct {
	// File is the name of the file it is in.
	File string
	// Name is the entry's key.
	Name string

	section string // the top-level key: channels
	file    *srcFile
	key     *yaml.Node
	node    *yaml.Node
	comps   *component.Registry
	tpl     *tplEnv
}

// what names the entry in messages: `channel "intake"`.
func (s Section) what() string {
	if s.section == "bus" {
		return "bus"
	}
	return strings.TrimSuffix(s.section, "s") + " " + strconv.Quote(s.Name)
}

// Error returns an *Error at the entry's key, for problems with the entry
// as a whole ("channel intake declared twice").
func (s Section) Error(format string, args ...any) *Error {
	return nodeError(s.File, s.key, format, args...)
}

// Decode reads the entry into spec, a pointer to a struct whose fields are
// described by their tags (see [component.Field]): keys, defaults,
// required keys, shorthands, and [component.Ref] fields naming components
// of the configuration's component registry. Every problem is reported, in
// file order, as [Errors] at file:line:col: an unknown key (with a "did
// you mean"), a wrong type, a bad duration, a missing required key, an
// unknown component. The returned [Decoded] positions problems found
// later (a flow name that does not exist).
func (s Section) Decode(spec any) (*Decoded, error) {
	if s.file == nil {
		return nil, fmt.Errorf("config: section %q was not loaded", s.Name)
	}
	return decodeSpec(s.file, s.node, s.what(), spec, s.comps, s.tpl)
}

// Sorted returns the errors ordered by file, line and column, without
// exact duplicates.
func (es Errors) Sorted() Errors { return slices.Clone(es).sort(nil) }

// Decoded records where the values of a decoded spec came from.
type Decoded struct {
	file  *srcFile
	root  *yaml.Node
	at    map[string]*yaml.Node // dotted path ("from.0", "store") -> value node
	keys  map[string]*yaml.Node // dotted path -> the key node of a mapping entry
	reads []keyRead             // the context keys Expr, Cond, Template and Key values read, in file order
}

// keyRead is a context key read by a decoded value: an expression or a
// template (the key is searched in its text), or a Key (the whole value).
type keyRead struct {
	key   string
	n     *yaml.Node
	whole bool
}

// fieldError words a FieldError: its path without list indexes (the
// error is reported at the item), then its error.
func fieldError(fe *component.FieldError) string {
	var segs []string
	for seg := range strings.SplitSeq(fe.Field, ".") {
		if seg != "" && strings.Trim(seg, "0123456789") != "" {
			segs = append(segs, seg)
		}
	}
	if len(segs) == 0 {
		return fe.Err.Error()
	}
	return strings.Join(segs, ".") + ": " + fe.Err.Error()
}

// keyNode returns the key node of the entry at path, or its value node.
func (d *Decoded) keyNode(path string) *yaml.Node {
	if k, ok := d.keys[path]; ok {
		return k
	}
	return d.at[path]
}

// readPos returns where the decoded values first read the context key k.
func (d *Decoded) readPos(k string) (pos, bool) {
	for _, r := range d.reads {
		if r.key != k {
			continue
		}
		if r.whole {
			return posOf(d.file, r.n), true
		}
		line, col := identPos(d.file, r.n, k)
		return posIn(d.file, r.n, line, col), true
	}
	return pos{}, false
}

// Error returns an *Error for err, an error about the decoded spec: each
// [component.FieldError] joined in it at its field's value (see
// [Decoded.Errorf]), the others at the spec's own position. what prefixes
// each message ("channel \"intake\": from: http").
func (d *Decoded) Error(what string, err error) Errors {
	fields, others := component.FieldErrors(err)
	var out Errors
	for _, fe := range fields {
		e := d.Errorf(fe.Field, "%s: %s", what, fieldError(fe))
		e.Err = fe
		out = append(out, e)
	}
	for _, o := range others {
		e := d.Errorf("", "%s: %v", what, o)
		e.Err = o
		out = append(out, e)
	}
	return out
}

// Has reports whether the key at path was present ("flow", "from.1").
func (d *Decoded) Has(path string) bool {
	_, ok := d.at[path]
	return ok
}

// Errorf returns an *Error at the value found at path, or at the spec's
// own position when the path was not present.
func (d *Decoded) Errorf(path, format string, args ...any) *Error {
	n, ok := d.at[path]
	if !ok {
		n = d.root
	}
	e := nodeError(d.file.name, n, format, args...)
	if n != nil {
		var note string
		e.Line, e.Column, note = d.file.place(n, n.Line, n.Column)
		e.Msg += note
	}
	return e
}

// decodeSpec decodes n into the struct spec points to.
func decodeSpec(f *srcFile, n *yaml.Node, what string, spec any, comps *component.Registry, tpl *tplEnv) (*Decoded, error) {
	v := reflect.ValueOf(spec)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil, fmt.Errorf("config: decode %s: want a non-nil pointer, got %T", what, spec)
	}
	d := &decoder{f: f, comps: comps, tpl: tpl, out: newDecoded(f, n)}
	d.value(n, v.Elem(), what, "", component.Field{})
	if len(d.errs) > 0 {
		return d.out, d.errs.sort(nil)
	}
	return d.out, nil
}

func newDecoded(f *srcFile, n *yaml.Node) *Decoded {
	return &Decoded{file: f, root: n, at: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}}
}

// decoder reads nodes into Go values by their types and spec tags.
type decoder struct {
	sink
	f     *srcFile
	comps *component.Registry
	tpl   *tplEnv
	out   *Decoded
}

// tplEnv is what templates are parsed with: the configuration's
// functions, and its vars, which the var function reads.
type tplEnv struct {
	funcs template.FuncMap
	vars  map[string]any
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	policyType   = reflect.TypeFor[ferrors.Policy]()
	refType      = reflect.TypeFor[component.Ref]()
	anyType      = reflect.TypeFor[any]()
	exprType     = reflect.TypeFor[component.Expr]()
	condType     = reflect.TypeFor[component.Cond]()
	templateType = reflect.TypeFor[component.Template]()
	keyType      = reflect.TypeFor[component.Key]()
)

// join appends a key to a dotted path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// value decodes n into v (settable); what names the value in messages,
// path is its dotted path, fd the struct field it fills (zero at the top).
func (d *decoder) value(n *yaml.Node, v reflect.Value, what, path string, fd component.Field) bool {
	n = d.f.deref(n)
	if path != "" {
		d.out.at[path] = n
	}
	t := v.Type()
	switch {
	case t == refType:
		ref, ok := d.ref(n, what, path, fd.Kind)
		if ok {
			v.Set(reflect.ValueOf(ref))
		}
		return ok
	case t == policyType:
		p, ok := d.policy(d.f, n, what)
		if ok {
			v.Set(reflect.ValueOf(*p))
		}
		return ok
	case t == durationType:
		dur, ok := d.duration(d.f, n, what)
		if ok {
			v.SetInt(int64(dur))
		}
		return ok
	case t == anyType:
		x, ok := d.sink.value(d.f, n, what)
		if ok && x != nil {
			v.Set(reflect.ValueOf(x))
		}
		return ok
	case t == exprType || t == condType:
		src, ok := d.scalar(d.f, n, what)
		if !ok {
			return false
		}
		var e component.Expr
		var err error
		if t == condType {
			var c component.Cond
			c, err = component.ParseCond(src)
			e = c.Expr
		} else {
			e, err = component.ParseExpr(src)
		}
		if err != nil {
			d.exprError(d.f, n, what, err)
			return false
		}
		d.read(e.Keys(), n, false)
		if t == condType {
			v.Set(reflect.ValueOf(component.Cond{Expr: e}))
		} else {
			v.Set(reflect.ValueOf(e))
		}
		return true
	case t == templateType:
		tp, ok := d.template(n, what)
		if ok {
			v.Set(reflect.ValueOf(tp))
		}
		return ok
	case t == keyType:
		k, ok := d.name(d.f, n, what)
		if ok {
			d.read([]string{k}, n, true)
			v.SetString(k)
		}
		return ok
	case component.IsPairs(t):
		return d.pairs(n, v, what, path)
	}
	switch t.Kind() {
	case reflect.Pointer:
		if n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
			v.SetZero()
			return true
		}
		p := reflect.New(t.Elem())
		if !d.value(n, p.Elem(), what, path, fd) {
			return false
		}
		v.Set(p)
		return true
	case reflect.String:
		s, ok := d.str(d.f, n, what)
		if ok && len(fd.Enum) > 0 && !slices.Contains(fd.Enum, s) {
			d.at(d.f, n, "%s: expected %s, got %q%s", what, orList(fd.Enum), s, suggest(s, fd.Enum))
			ok = false
		}
		if ok {
			if fd.Path {
				s = d.f.resolvePath(n, s)
			}
			v.SetString(s)
		}
		return ok
	case reflect.Bool:
		b, ok := d.boolean(d.f, n, what)
		if ok {
			v.SetBool(b)
		}
		return ok
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		hi := int(min(uint64(math.MaxInt), uint64(1)<<(t.Bits()-1)-1))
		lo := max(fd.Min, -hi-1)
		i, ok := d.integer(d.f, n, what, lo, hi)
		if ok {
			v.SetInt(int64(i))
		}
		return ok
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		hi := int(min(uint64(math.MaxInt), uint64(1)<<t.Bits()-1))
		i, ok := d.integer(d.f, n, what, 0, hi)
		if ok {
			v.SetUint(uint64(i))
		}
		return ok
	case reflect.Float32, reflect.Float64:
		x, ok := d.number(d.f, n, what, -math.MaxFloat64, math.MaxFloat64)
		if ok {
			v.SetFloat(x)
		}
		return ok
	case reflect.Slice:
		return d.slice(n, v, what, path, fd)
	case reflect.Map:
		return d.mapValue(n, v, what, path)
	case reflect.Struct:
		return d.structValue(n, v, what, path)
	}
	d.at(d.f, n, "%s: cannot read into a Go %v (a spec type the decoder does not know)", what, t)
	return false
}

// orList lists choices: "a", "a or b", "a, b or c".
func orList(choices []string) string {
	if len(choices) < 2 {
		return strings.Join(choices, "")
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}

// read records context keys read by the value at node n.
func (d *decoder) read(keys []string, n *yaml.Node, whole bool) {
	for _, k := range keys {
		d.out.reads = append(d.out.reads, keyRead{key: k, n: n, whole: whole})
	}
}

// template parses a template over the run's context, with the
// configuration's functions, and checks the vars it reads.
func (d *decoder) template(n *yaml.Node, what string) (component.Template, bool) {
	src, ok := d.str(d.f, n, what)
	if !ok {
		return component.Template{}, false
	}
	var funcs template.FuncMap
	var vars map[string]any
	if d.tpl != nil {
		funcs, vars = d.tpl.funcs, d.tpl.vars
	}
	t, err := component.ParseTemplate(src, funcs)
	if err != nil {
		d.at(d.f, n, "%s: %v", what, err)
		return component.Template{}, false
	}
	for _, v := range t.Vars() {
		if _, ok := vars[v]; !ok {
			names := slices.Sorted(maps.Keys(vars))
			line, col := identPos(d.f, n, v)
			d.atIn(d.f, n, line, col, nil, "%s: unknown var %q: declare it under vars:%s", what, v, suggest(v, names))
			return component.Template{}, false
		}
	}
	d.read(t.Keys(), n, false)
	return t, true
}

// pairs decodes a mapping into a component.Pairs, in the order written;
// each entry is named `what "key"` in messages.
func (d *decoder) pairs(n *yaml.Node, v reflect.Value, what, path string) bool {
	fs, ok := d.mapping(d.f, n, what, nil)
	if !ok {
		return false
	}
	out := reflect.MakeSlice(v.Type(), len(fs.order), len(fs.order))
	good := true
	for i, k := range fs.order {
		e := out.Index(i)
		e.Field(0).SetString(k)
		p := join(path, k)
		d.out.keys[p] = fs.m[k].key
		if !d.value(fs.m[k].val, e.Field(1), what+" "+strconv.Quote(k), p, component.Field{}) {
			good = false
		}
	}
	v.Set(out)
	return good
}

func (d *decoder) slice(n *yaml.Node, v reflect.Value, what, path string, fd component.Field) bool {
	var items []*yaml.Node
	if fd.OneOrMany && (n == nil || n.Kind != yaml.SequenceNode) {
		items = []*yaml.Node{n}
	} else {
		var ok bool
		if items, ok = d.seq(d.f, n, what); !ok {
			return false
		}
	}
	// Items that cannot be read stay zero, so that a reader can still
	// check the others; the problems are reported.
	out := reflect.MakeSlice(v.Type(), len(items), len(items))
	good := true
	for i, it := range items {
		p := join(path, strconv.Itoa(i))
		if !d.value(it, out.Index(i), what, p, component.Field{Kind: fd.Kind, Enum: fd.Enum}) {
			good = false
		}
	}
	v.Set(out)
	return good
}

func (d *decoder) mapValue(n *yaml.Node, v reflect.Value, what, path string) bool {
	if v.Type().Key().Kind() != reflect.String {
		d.at(d.f, n, "%s: cannot read into a Go %v (map keys must be strings)", what, v.Type())
		return false
	}
	fs, ok := d.mapping(d.f, n, what, nil)
	if !ok {
		return false
	}
	out := reflect.MakeMapWithSize(v.Type(), len(fs.order))
	good := true
	for _, k := range fs.order {
		e := reflect.New(v.Type().Elem()).Elem()
		if !d.value(fs.m[k].val, e, what+": "+k, join(path, k), component.Field{}) {
			good = false
			continue
		}
		out.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
	}
	if good {
		v.Set(out)
	}
	return good
}

// structValue decodes a mapping into the fields of a struct, or a plain
// value into its scalar field.
func (d *decoder) structValue(n *yaml.Node, v reflect.Value, what, path string) bool {
	specFields := component.Fields(v.Type())
	if inl, ok := component.InlineField(v.Type()); ok {
		// the whole mapping is the field; null is no entry
		good := true
		if !(n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null") {
			good = d.value(n, v.Field(inl.Index), what, path, inl)
		}
		if good && inl.Required && v.Field(inl.Index).Len() == 0 {
			d.at(d.f, n, "%s: expected at least one entry%s", what, docHint(inl))
			good = false
		}
		return good
	}
	if n != nil && n.Kind == yaml.SequenceNode {
		if lf, ok := component.ListField(v.Type()); ok {
			good := d.defaults(n, v, specFields, map[string]bool{lf.Name: true}, what)
			return d.value(n, v.Field(lf.Index), what, join(path, lf.Name), lf) && good
		}
	}
	if n != nil && n.Kind != yaml.MappingNode && !(n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null") {
		if sf, ok := component.ScalarField(v.Type()); ok {
			good := d.defaults(n, v, specFields, map[string]bool{sf.Name: true}, what)
			return d.value(n, v.Field(sf.Index), what, join(path, sf.Name), sf) && good
		}
	}
	var fs *fields
	if n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		fs = &fields{m: map[string]field{}} // `http:` with nothing: all defaults
	} else {
		keys := make([]string, len(specFields))
		for i, f := range specFields {
			keys[i] = f.Name
		}
		var ok bool
		if fs, ok = d.mapping(d.f, n, what, keys); !ok {
			return false
		}
	}
	good := fs.unknown == 0
	present := map[string]bool{}
	for _, f := range specFields {
		fd, ok := fs.get(f.Name)
		if !ok {
			continue
		}
		present[f.Name] = true
		d.out.keys[join(path, f.Name)] = fd.key
		if !d.value(fd.val, v.Field(f.Index), what+": "+f.Name, join(path, f.Name), f) {
			good = false
		}
	}
	if !d.defaults(n, v, specFields, present, what) {
		good = false
	}
	for _, f := range specFields {
		if f.Required && !present[f.Name] {
			d.at(d.f, n, "%s: missing %s%s", what, f.Name, docHint(f))
			good = false
		}
	}
	return good
}

// defaults fills the absent fields that declare a default.
func (d *decoder) defaults(n *yaml.Node, v reflect.Value, fields []component.Field, present map[string]bool, what string) bool {
	good := true
	for _, f := range fields {
		if present[f.Name] || f.Default == "" {
			continue
		}
		fv := v.Field(f.Index)
		if fv.Kind() == reflect.String {
			fv.SetString(f.Default) // a string default is the text itself
			continue
		}
		var dn yaml.Node
		if err := yaml.Unmarshal([]byte(f.Default), &dn); err != nil || len(dn.Content) != 1 {
			d.at(d.f, n, "%s: %s: the spec's default %q is not YAML", what, f.Name, f.Default)
			good = false
			continue
		}
		sub := &decoder{f: d.f, comps: d.comps, tpl: d.tpl, out: newDecoded(d.f, nil)}
		if !sub.value(dn.Content[0], fv, what+": "+f.Name, "", f) {
			for _, e := range sub.errs {
				d.at(d.f, n, "%s (the spec's default %q)", e.Msg, f.Default)
			}
			good = false
		}
	}
	return good
}

// docHint is " (what it is)" from a field's doc.
func docHint(f component.Field) string {
	if f.Doc == "" {
		return ""
	}
	return " (" + f.Doc + ")"
}

// ref reads a component choice: a mapping with one key naming the
// component, whose value is its spec ({http: {path: /orders}}), or a
// string "name:value" filling the spec's scalar field (sqlite:data/x.db),
// or a string "name" (memory) for a spec whose fields all have defaults.
func (d *decoder) ref(n *yaml.Node, what, path string, kind component.Kind) (component.Ref, bool) {
	if d.comps == nil {
		d.at(d.f, n, "%s: no component registry to look up %s components in", what, kind)
		return component.Ref{}, false
	}
	names := d.comps.Names(kind)
	var nameNode, specNode *yaml.Node
	switch {
	case n != nil && n.Kind == yaml.MappingNode && len(n.Content) == 2:
		nameNode, specNode = d.f.child(n, 0), d.f.child(n, 1)
	case n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && n.Value != "":
		// "name:value", or "name" alone for a spec that needs nothing.
		name, rest, _ := strings.Cut(n.Value, ":")
		c, ok := d.lookup(n, name, what, kind, names)
		if !ok {
			return component.Ref{}, false
		}
		spec := c.NewSpec()
		sv := reflect.ValueOf(spec).Elem()
		fields := component.Fields(c.SpecType())
		sf, hasScalar := component.ScalarField(c.SpecType())
		present := map[string]bool{}
		if rest != "" {
			if !hasScalar || sf.Type.Kind() != reflect.String {
				d.at(d.f, n, "%s: %s takes nothing after %q", what, name, name+":")
				return component.Ref{}, false
			}
			if sf.Path {
				rest = d.f.resolvePath(n, rest)
			}
			sv.Field(sf.Index).SetString(rest)
			present[sf.Name] = true
		}
		good := d.defaults(n, sv, fields, present, what+": "+name)
		for _, f := range fields {
			if f.Required && !present[f.Name] {
				d.at(d.f, n, "%s: %s: missing %s after %q%s", what, name, f.Name, name+":", docHint(f))
				good = false
			}
		}
		return component.Ref{Component: c, Spec: spec}, good
	default:
		d.at(d.f, n, "%s: expected one %s: {name: spec} with name one of %s, got %s", what, kind, strings.Join(names, ", "), describe(n))
		return component.Ref{}, false
	}
	if nameNode == nil || nameNode.Kind != yaml.ScalarNode {
		d.at(d.f, n, "%s: expected a %s name as the key, got %s", what, kind, describe(nameNode))
		return component.Ref{}, false
	}
	c, ok := d.lookup(nameNode, nameNode.Value, what, kind, names)
	if !ok {
		return component.Ref{}, false
	}
	spec := c.NewSpec()
	if !d.value(specNode, reflect.ValueOf(spec).Elem(), what+": "+nameNode.Value, join(path, nameNode.Value), component.Field{}) {
		return component.Ref{}, false
	}
	return component.Ref{Component: c, Spec: spec}, true
}

func (d *decoder) lookup(n *yaml.Node, name, what string, kind component.Kind, names []string) (component.Component, bool) {
	c, ok := d.comps.Lookup(kind, name)
	if !ok {
		known := "none is registered"
		if len(names) > 0 {
			known = "expected " + oneOf(names)
		}
		d.at(d.f, n, "%s: unknown %s %q: %s%s", what, kind, name, known, suggest(name, names))
		return component.Component{}, false
	}
	return c, true
}

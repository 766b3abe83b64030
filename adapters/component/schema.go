package component

import (
	"reflect"
	"regexp"
	"time"
)

// durationPattern matches what time.ParseDuration takes ("250ms", "1h30m").
const durationPattern = `^([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$`

// PolicySchema is the JSON Schema of a retry policy (a flow's retry:, a
// channel's restart:).
func PolicySchema() map[string]any {
	dur := map[string]any{"type": "string", "pattern": durationPattern}
	return map[string]any{
		"type":                 "object",
		"description":          "a retry policy: exponential backoff between attempts",
		"additionalProperties": false,
		"properties": map[string]any{
			"initial":      withDoc(dur, "the first wait"),
			"multiplier":   map[string]any{"type": "number", "minimum": 1, "description": "each wait is the previous times this"},
			"max":          withDoc(dur, "the longest wait"),
			"max_interval": withDoc(dur, "the longest wait (same as max)"),
			"max_attempts": map[string]any{"type": "integer", "minimum": 1, "description": "attempts in all, the first included"},
			"max_elapsed":  withDoc(dur, "give up after this long"),
			"jitter":       map[string]any{"type": "number", "minimum": 0, "maximum": 1, "description": "randomize each wait by up to this fraction"},
			"retry_all":    map[string]any{"type": "boolean", "description": "retry every error, not only errors.Retry"},
		},
	}
}

func withDoc(s map[string]any, doc string) map[string]any {
	out := make(map[string]any, len(s)+1)
	for k, v := range s {
		out[k] = v
	}
	if doc != "" {
		out["description"] = doc
	}
	return out
}

// Schema returns the JSON Schema (draft 2020-12 vocabulary, as a value
// ready for encoding/json) of what a spec of type t accepts in YAML:
// its fields with their types, defaults and docs, required keys, the
// shorthand of its scalar field, and, for [Ref] fields, one alternative
// per component of their kind in reg.
func Schema(t reflect.Type, reg *Registry) map[string]any {
	return schemaOf(t, Field{}, reg, map[reflect.Type]bool{})
}

// ComponentSchema is the JSON Schema of a choice among the components of
// kind: {name: spec} for each, or "name:value" / "name" strings.
func ComponentSchema(kind Kind, reg *Registry) map[string]any {
	return refSchema(kind, reg, map[reflect.Type]bool{})
}

func schemaOf(t reflect.Type, f Field, reg *Registry, seen map[reflect.Type]bool) map[string]any {
	switch t {
	case durationType:
		return map[string]any{"type": "string", "pattern": durationPattern}
	case refType:
		return refSchema(f.Kind, reg, seen)
	case anyType:
		return map[string]any{}
	case exprType, condType, templateType:
		// the text of an expression or a template: YAML reads 7 or true
		// as text too
		return map[string]any{"type": []any{"string", "number", "boolean"}}
	}
	if t.PkgPath() == "github.com/svcflow/svcflow/errors" && t.Name() == "Policy" {
		return PolicySchema()
	}
	if IsPairs(t) {
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem().Field(1).Type, Field{Kind: f.Kind}, reg, seen)}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem(), f, reg, seen)
	case reflect.String:
		if len(f.Enum) > 0 {
			enum := make([]any, len(f.Enum))
			for i, e := range f.Enum {
				enum[i] = e
			}
			return map[string]any{"type": "string", "enum": enum}
		}
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer", "minimum": f.Min}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		items := schemaOf(t.Elem(), Field{Kind: f.Kind, Enum: f.Enum}, reg, seen)
		list := map[string]any{"type": "array", "items": items}
		if f.OneOrMany {
			return map[string]any{"anyOf": []any{list, items}}
		}
		return list
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": schemaOf(t.Elem(), Field{Kind: f.Kind}, reg, seen)}
	case reflect.Struct:
		return structSchema(t, reg, seen)
	}
	return map[string]any{}
}

func structSchema(t reflect.Type, reg *Registry, seen map[reflect.Type]bool) map[string]any {
	if seen[t] {
		return map[string]any{"type": "object"} // a recursive spec: not described twice
	}
	seen[t] = true
	defer delete(seen, t)
	if f, ok := InlineField(t); ok {
		s := withDoc(schemaOf(f.Type, f, reg, seen), f.Doc)
		if f.Required {
			s["minProperties"] = 1
			return s
		}
		return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
	}
	props := map[string]any{}
	var required []any
	var shorthands []any
	for _, f := range Fields(t) {
		s := withDoc(schemaOf(f.Type, f, reg, seen), f.Doc)
		if f.Default != "" {
			s["default"] = f.Default
		}
		props[f.Name] = s
		if f.Required {
			required = append(required, f.Name)
		}
		if f.Scalar || f.List {
			shorthands = append(shorthands, schemaOf(f.Type, f, reg, seen))
		}
	}
	obj := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		obj["required"] = required
	}
	if len(shorthands) == 0 {
		if len(required) == 0 {
			return map[string]any{"anyOf": []any{obj, map[string]any{"type": "null"}}}
		}
		return obj
	}
	alts := append([]any{obj}, shorthands...)
	if len(required) == 0 {
		alts = append(alts, map[string]any{"type": "null"})
	}
	return map[string]any{"anyOf": alts}
}

func refSchema(kind Kind, reg *Registry, seen map[reflect.Type]bool) map[string]any {
	var alts []any
	var strs []any
	if reg != nil {
		for _, name := range reg.Names(kind) {
			c, _ := reg.Lookup(kind, name)
			alts = append(alts, map[string]any{
				"type":                 "object",
				"description":          c.Doc,
				"properties":           map[string]any{name: schemaOf(c.spec, Field{}, reg, seen)},
				"required":             []any{name},
				"additionalProperties": false,
			})
			strs = append(strs, map[string]any{"type": "string", "pattern": "^" + regexp.QuoteMeta(name) + "(:.*)?$"})
		}
	}
	alts = append(alts, strs...)
	if len(alts) == 0 {
		return map[string]any{"not": map[string]any{}, "description": "no " + string(kind) + " is registered"}
	}
	return map[string]any{"anyOf": alts}
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	anyType      = reflect.TypeFor[any]()
)

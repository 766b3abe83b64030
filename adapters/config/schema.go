package config

import (
	"reflect"

	"github.com/svcflow/svcflow/adapters/component"
)

// SchemaOptions say what [Schema] describes beyond the flows.
type SchemaOptions struct {
	// Channel is the spec type of an entry under channels: (serve.Spec);
	// nil: channels are described as objects only.
	Channel reflect.Type
	// Service is the spec type of an entry under services: (bus.Spec);
	// nil: services are described as objects only.
	Service reflect.Type
	// Bus is the spec type of the bus: section (bus.FileSpec); nil: any
	// object.
	Bus reflect.Type
	// Component is the spec type of an entry under production:
	// (production.Spec); nil: components are described as objects only.
	Component reflect.Type
	// Components are the step kinds flows name and the components
	// channel specs name (default component.Default()).
	Components *component.Registry
}

// Schema returns a JSON Schema (draft 2020-12) of a whole configuration
// file: version, vars, providers (the provider components), flows with
// every step kind (those of the step components from their specs) and
// combinator, channels (with the sources and stores of the component
// registry), services (the bus), production (its components) and tests. It is a value for encoding/json; `flowrun schema` prints it for editors.
// It checks the shape of a file; the loader checks the rest (expressions,
// keys provided on every path, flow names).
func Schema(opts SchemaOptions) map[string]any {
	if opts.Components == nil {
		opts.Components = component.Default()
	}
	str := map[string]any{"type": "string"}
	dur := map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$`}
	ref := func(name string) map[string]any { return map[string]any{"$ref": "#/$defs/" + name} }
	obj := func(props map[string]any, required ...string) map[string]any {
		o := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			req := make([]any, len(required))
			for i, r := range required {
				req[i] = r
			}
			o["required"] = req
		}
		return o
	}
	anyOf := func(alts ...any) map[string]any { return map[string]any{"anyOf": alts} }

	kinds := map[string]any{
		// the kinds the loader knows itself
		"call": withDescription(str, "run another flow of the configuration on this context"),
		"use":  withDescription(str, "a registered service"),
		// combinators
		"then": ref("steps"),
		"tap":  anyOf(ref("step"), ref("steps")),
		"fork": obj(map[string]any{"on": str, "cases": map[string]any{"type": "object", "additionalProperties": ref("steps")}, "default": ref("steps")}, "on"),
		"when": obj(map[string]any{"if": str, "steps": ref("steps"),
			"divert": withDescription(map[string]any{"type": "boolean"}, "when the condition holds, run the steps and end the flow (the rest does not run)")}, "if", "steps"),
		"unless": obj(map[string]any{"if": str, "steps": ref("steps")}, "if", "steps"),
		"all":    anyOf(ref("steps"), obj(map[string]any{"steps": ref("steps"), "limit": map[string]any{"type": "integer", "minimum": 1}}, "steps")),
		"each": obj(map[string]any{"over": str, "as": str, "index": str, "concurrency": map[string]any{"type": "integer", "minimum": 1},
			"collect": obj(map[string]any{"from": str, "into": str}, "from", "into"), "steps": ref("steps")}, "over", "steps"),
		"until": obj(map[string]any{"if": str, "max_loops": map[string]any{"type": "integer", "minimum": 1}, "steps": ref("steps")}, "if", "steps"),
		"first": map[string]any{"type": "array", "minItems": 1, "items": obj(map[string]any{"if": str, "steps": ref("steps")}, "steps")},
		"saga":  anyOf(ref("steps"), obj(map[string]any{"steps": ref("steps"), "compensation_timeout": dur}, "steps")),
	}
	stepProps := map[string]any{
		"name": str, "retry": ref("policy"), "timeout": dur,
		"compensate": anyOf(ref("step"), ref("steps")), "with": map[string]any{"type": "object"},
		"passthrough":     withDescription(map[string]any{"type": "boolean"}, "run the step and discard its writes"),
		"store_input_as":  withDescription(str, "store a copy of the context before the step under this key"),
		"store_output_as": withDescription(str, "store the keys the step wrote, as a map, under this key"),
		"record":          withDescription(component.ComponentSchema(component.KindStore, opts.Components), "record every run reaching the step, with its outcome, in this store"),
	}
	// the step kinds of the step components, from their specs
	steps := opts.Components.Names(component.KindStep)
	for _, name := range steps {
		c, _ := opts.Components.Lookup(component.KindStep, name)
		kinds[name] = withDescription(component.Schema(c.SpecType(), opts.Components), c.Doc)
	}
	var oneKind []any
	for _, k := range append(append(steps, structuralKinds...), comboKinds...) {
		stepProps[k] = kinds[k]
		oneKind = append(oneKind, map[string]any{"required": []any{k}})
	}
	step := anyOf(
		map[string]any{"type": "string", "description": "a registered service: use: NAME"},
		map[string]any{"type": "object", "properties": stepProps, "additionalProperties": false, "oneOf": oneKind},
	)

	input := anyOf(str, obj(map[string]any{"name": str, "type": str, "optional": map[string]any{"type": "boolean"}, "default": map[string]any{}}, "name"))
	flowSchema := obj(map[string]any{
		"description": str,
		"input":       map[string]any{"type": "array", "items": input},
		"retry":       ref("policy"),
		"sample":      map[string]any{"type": "object"},
		"steps":       ref("steps"),
	}, "steps")

	channel := map[string]any{"type": "object"}
	if opts.Channel != nil {
		channel = component.Schema(opts.Channel, opts.Components)
	}
	busSpec := map[string]any{"type": "object"}
	if opts.Bus != nil {
		busSpec = component.Schema(opts.Bus, opts.Components)
	}
	service := map[string]any{"type": "object"}
	if opts.Service != nil {
		service = component.Schema(opts.Service, opts.Components)
	}
	prodComponent := map[string]any{"type": "object"}
	if opts.Component != nil {
		prodComponent = component.Schema(opts.Component, opts.Components)
	}

	errorKinds := make([]any, len(ErrorKinds))
	for i, k := range ErrorKinds {
		errorKinds[i] = k
	}
	stub := anyOf(ref("step"), obj(map[string]any{"output": map[string]any{"type": "object"}, "error": map[string]any{"enum": errorKinds}, "message": str}))
	stubs := map[string]any{"type": "object", "additionalProperties": stub}
	testCase := obj(map[string]any{
		"name": str, "input": map[string]any{"type": "object"}, "want": map[string]any{"type": "object"},
		"error": map[string]any{"enum": errorKinds}, "error_contains": str, "stubs": stubs, "from": str, "through": str,
	}, "name")
	answer := obj(map[string]any{"status": map[string]any{"type": "integer", "minimum": 100, "maximum": 599},
		"headers": map[string]any{"type": "object", "additionalProperties": str}, "json": map[string]any{}, "body": str})
	httpService := obj(map[string]any{"var": str, "default": answer, "routes": map[string]any{"type": "object",
		"additionalProperties": anyOf(answer, map[string]any{"type": "array", "items": answer})}}, "var")
	suite := obj(map[string]any{"flow": str, "stubs": stubs, "http_service": httpService, "cases": map[string]any{"type": "array", "items": testCase}}, "flow", "cases")

	return map[string]any{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"title":       "svcflow configuration",
		"description": "flows, channels and tests for flowrun",
		"type":        "object",
		"properties": map[string]any{
			"version":    map[string]any{"const": Version},
			"vars":       map[string]any{"type": "object"},
			"providers":  map[string]any{"type": "object", "additionalProperties": component.ComponentSchema(component.KindProvider, opts.Components)},
			"flows":      map[string]any{"type": "object", "additionalProperties": flowSchema},
			"channels":   map[string]any{"type": "object", "additionalProperties": channel},
			"services":   map[string]any{"type": "object", "additionalProperties": service},
			"bus":        busSpec,
			"production": map[string]any{"type": "object", "additionalProperties": prodComponent},
			"tests":      map[string]any{"type": "array", "items": suite},
		},
		"additionalProperties": false,
		"$defs": map[string]any{
			"policy": component.PolicySchema(),
			"step":   step,
			"steps":  map[string]any{"type": "array", "minItems": 1, "items": ref("step")},
		},
	}
}

// withDescription returns a copy of schema s with a description.
func withDescription(s map[string]any, doc string) map[string]any {
	out := make(map[string]any, len(s)+1)
	for k, v := range s {
		out[k] = v
	}
	if doc != "" {
		out["description"] = doc
	}
	return out
}

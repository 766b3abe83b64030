package component

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/svcflow/svcflow/internal/jsonenc"
)

// JSON returns the template in JSON mode, for a template that builds a
// JSON document (an http step's body_template with a JSON content type).
// In JSON mode what an action inserts is encoded for where it stands, the
// way html/template escapes for HTML, so that no value can change the
// document's structure:
//
//	{"id": {{.meta.id}}, "total": {{.total}}}   a value: inserted as JSON ("o-1", 6, {"a":1}, null)
//	{"note": "order {{.meta.id}}"}              inside a string: inserted escaped, without quotes
//
// An action whose last command is json ({{json .x}}) in a value position
// is inserted as it is: json encodes already. The output of every run is
// checked to be valid JSON (else Execute fails), and a plain-text template
// must be valid JSON itself. JSON returns an error for a template whose
// positions cannot be told: one that ends inside a string, whose if or
// with branches end in different positions (inside and outside a string),
// whose range body does not end where it starts, that calls {{template}},
// or that inserts right after a backslash.
func (t Template) JSON() (Template, error) {
	if t.t == nil {
		return t, nil
	}
	if t.t.json {
		return t, nil
	}
	if t.t.t == nil {
		if !json.Valid([]byte(t.t.src)) {
			return Template{}, &templateError{msg: "not valid JSON (the content type is JSON)"}
		}
		out := *t.t
		out.json = true
		return Template{&out}, nil
	}
	nt, err := t.t.t.Clone()
	if err != nil {
		return Template{}, &templateError{msg: err.Error(), err: err}
	}
	nt.Tree = nt.Tree.Copy()
	nt.Funcs(template.FuncMap{jsonValueFunc: jsonValue, jsonStringFunc: jsonStringContent})
	e := jsonEscaper{tree: nt.Tree}
	end, err := e.list(nt.Tree.Root, jsValue)
	if err == nil && end != jsValue {
		err = fmt.Errorf("ends inside a JSON string")
	}
	if err != nil {
		return Template{}, &templateError{msg: "JSON: " + err.Error(), err: err}
	}
	out := *t.t
	out.t, out.json = nt, true
	return Template{&out}, nil
}

// IsJSON reports whether the template is in JSON mode (see Template.JSON).
func (t Template) IsJSON() bool { return t.t != nil && t.t.json }

// The functions JSON mode adds to the pipeline of each action.
const (
	jsonValueFunc  = "_json_value"
	jsonStringFunc = "_json_string"
)

// jsonValue encodes v as a JSON value.
func jsonValue(v any) (string, error) {
	b, err := jsonenc.Append(nil, deref(v))
	if err != nil {
		return "", fmt.Errorf("json: %w", err)
	}
	return string(b), nil
}

// jsonStringContent encodes v as the inside of a JSON string: a string as
// it is, a map or a slice as its JSON text, anything else as printed,
// escaped and without the quotes.
func jsonStringContent(v any) (string, error) {
	var s string
	switch x := deref(v).(type) {
	case nil:
		s = ""
	case string:
		s = x
	case fmt.Stringer:
		s = x.String()
	case map[string]any, []any:
		b, err := jsonenc.Append(nil, x)
		if err != nil {
			return "", fmt.Errorf("json: %w", err)
		}
		s = string(b)
	default:
		s = fmt.Sprint(x)
	}
	b := jsonenc.AppendString(nil, s)
	return string(b[1 : len(b)-1]), nil
}

// deref returns what a pointer given by a template points at.
func deref(v any) any {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		return rv.Elem().Interface()
	}
	return v
}

// jsonCtx is where an action stands in the JSON a template writes.
type jsonCtx uint8

const (
	jsValue     jsonCtx = iota // outside strings: a value, a key, punctuation
	jsString                   // inside a string
	jsStringEsc                // inside a string, right after a backslash
)

// jsonEscaper rewrites a parsed template for JSON mode.
type jsonEscaper struct{ tree *parse.Tree }

// list rewrites the nodes of l, starting at st, and returns where they end.
func (e *jsonEscaper) list(l *parse.ListNode, st jsonCtx) (jsonCtx, error) {
	if l == nil {
		return st, nil
	}
	for _, n := range l.Nodes {
		var err error
		switch n := n.(type) {
		case *parse.TextNode:
			st = scanJSON(n.Text, st)
		case *parse.ActionNode:
			err = e.action(n, st)
		case *parse.IfNode:
			st, err = e.branches(n.List, n.ElseList, st, "if")
		case *parse.WithNode:
			st, err = e.branches(n.List, n.ElseList, st, "with")
		case *parse.RangeNode:
			var end jsonCtx
			if end, err = e.list(n.List, st); err == nil && end != st {
				err = fmt.Errorf("%s: the range body ends %s, it starts %s", e.where(n), end, st)
			}
			if err == nil {
				st, err = e.branches(nil, n.ElseList, st, "range")
			}
		case *parse.TemplateNode:
			err = fmt.Errorf("%s: {{template}} is not supported in a JSON template", e.where(n))
		}
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// branches rewrites the two branches of an if, with or range, which must
// end in the same position.
func (e *jsonEscaper) branches(a, b *parse.ListNode, st jsonCtx, what string) (jsonCtx, error) {
	ea, err := e.list(a, st)
	if err != nil {
		return st, err
	}
	eb, err := e.list(b, st)
	if err != nil {
		return st, err
	}
	if ea != eb {
		n := parse.Node(a)
		if n == nil {
			n = b
		}
		return st, fmt.Errorf("%s: the branches of %s end in different positions (%s and %s)", e.where(n), what, ea, eb)
	}
	return ea, nil
}

// action makes the action at st insert JSON: a value, or the inside of a
// string.
func (e *jsonEscaper) action(n *parse.ActionNode, st jsonCtx) error {
	if len(n.Pipe.Decl) > 0 {
		return nil // an assignment writes nothing
	}
	cmds := n.Pipe.Cmds
	fn := jsonValueFunc
	switch st {
	case jsStringEsc:
		return fmt.Errorf("%s: %s right after a backslash in a string", e.where(n), n)
	case jsString:
		fn = jsonStringFunc
	case jsValue:
		if last := cmds[len(cmds)-1]; len(last.Args) > 0 {
			if id, ok := last.Args[0].(*parse.IdentifierNode); ok && id.Ident == "json" {
				return nil // encodes already
			}
		}
	}
	id := parse.NewIdentifier(fn).SetTree(e.tree).SetPos(n.Pos)
	n.Pipe.Cmds = append(cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Pos: n.Pos, Args: []parse.Node{id}})
	return nil
}

// where is "line N" for n.
func (e *jsonEscaper) where(n parse.Node) string {
	loc, _ := e.tree.ErrorContext(n)
	// "template:LINE:COL"
	parts := strings.Split(loc, ":")
	if len(parts) >= 2 {
		return "line " + parts[len(parts)-2]
	}
	return loc
}

func (c jsonCtx) String() string {
	if c == jsValue {
		return "outside a string"
	}
	return "inside a string"
}

// scanJSON returns where text written at st leaves the JSON.
func scanJSON(text []byte, st jsonCtx) jsonCtx {
	for _, b := range text {
		switch st {
		case jsValue:
			if b == '"' {
				st = jsString
			}
		case jsString:
			switch b {
			case '\\':
				st = jsStringEsc
			case '"':
				st = jsValue
			}
		case jsStringEsc:
			st = jsString
		}
	}
	return st
}

package component

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
)

// Template is a spec field holding a text/template over the run's
// context: `log: "order {{.id}} priced"`. A decoder parses it with the
// functions of the configuration (adapters/config gives var, json,
// upper, lower, trim and pathescape) and reports a bad template at its
// position in the YAML. A template without actions is kept as its text
// and costs nothing to execute. The zero Template holds no template.
//
// A Template is immutable and safe for concurrent use.
type Template struct{ t *tmpl }

type tmpl struct {
	src  string
	t    *template.Template // nil: constant
	keys []string           // top-level context keys it reads
	vars []string           // names passed to var
	json bool               // JSON mode: see Template.JSON
}

// ParseTemplate parses src as a text/template with funcs (missing keys
// are errors when it is executed). The error of a bad template says "bad
// template: line N: ...".
func ParseTemplate(src string, funcs template.FuncMap) (Template, error) {
	const name = "template"
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(src)
	if err != nil {
		// "template: NAME:1: unclosed action" -> "line 1: unclosed action"
		msg := strings.TrimPrefix(err.Error(), "template: "+name+":")
		if line, rest, ok := strings.Cut(msg, ": "); ok && line != "" && strings.Trim(line, "0123456789") == "" {
			msg = "line " + line + ": " + rest
		}
		return Template{}, &templateError{msg: msg, err: err}
	}
	out := &tmpl{src: src, t: t}
	if t.Tree == nil || t.Tree.Root == nil || constant(t.Tree.Root) {
		out.t = nil
		return Template{out}, nil
	}
	w := &tmplWalker{}
	w.walk(t.Tree.Root, true)
	out.keys = w.keys
	out.vars = w.vars
	return Template{out}, nil
}

// Text returns a template that renders s as it is.
func Text(s string) Template { return Template{&tmpl{src: s}} }

// IsZero reports whether t holds no template.
func (t Template) IsZero() bool { return t.t == nil }

// Source returns the template's text.
func (t Template) Source() string {
	if t.t == nil {
		return ""
	}
	return t.t.src
}

// String returns the template's text.
func (t Template) String() string { return t.Source() }

// Constant reports whether the template is plain text, with no actions.
func (t Template) Constant() bool { return t.t == nil || t.t.t == nil }

// Keys returns the top-level context keys the template reads (.key,
// $.key, index . "key"), in order of first use.
func (t Template) Keys() []string {
	if t.t == nil {
		return nil
	}
	return slices.Clone(t.t.keys)
}

// Vars returns the names the template passes to a var function (the
// configuration's vars: {{var "api"}}), in order of first use.
func (t Template) Vars() []string {
	if t.t == nil {
		return nil
	}
	return slices.Clone(t.t.vars)
}

// Execute renders the template over the context map m (nil: empty).
func (t Template) Execute(m map[string]any) (string, error) {
	if t.t == nil {
		return "", nil
	}
	if t.t.t == nil {
		return t.t.src, nil
	}
	if m == nil {
		m = map[string]any{}
	}
	var b strings.Builder
	if err := t.t.t.Execute(&b, m); err != nil {
		return "", fmt.Errorf("template %q: %w", t.t.src, err)
	}
	if t.t.json && !json.Valid([]byte(b.String())) {
		return "", fmt.Errorf("template %q: the output is not valid JSON", t.t.src)
	}
	return b.String(), nil
}

// constant reports whether a parsed template is plain text.
func constant(l *parse.ListNode) bool {
	for _, n := range l.Nodes {
		if n.Type() != parse.NodeText {
			return false
		}
	}
	return true
}

// tmplWalker collects the context keys a template reads: .key and $.key
// where dot is the context, and index . "key".
type tmplWalker struct {
	keys []string
	vars []string
}

func (w *tmplWalker) add(k string) {
	if !slices.Contains(w.keys, k) {
		w.keys = append(w.keys, k)
	}
}

// walk visits n; root says whether dot is still the context map.
func (w *tmplWalker) walk(n parse.Node, root bool) {
	switch n := n.(type) {
	case nil:
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			w.walk(c, root)
		}
	case *parse.ActionNode:
		w.walk(n.Pipe, root)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			w.walk(c, root)
		}
	case *parse.CommandNode:
		if len(n.Args) == 3 {
			if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == "index" {
				if _, dot := n.Args[1].(*parse.DotNode); dot && root {
					if s, ok := n.Args[2].(*parse.StringNode); ok {
						w.add(s.Text)
					}
				}
			}
		}
		if len(n.Args) == 2 {
			if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == "var" {
				if s, ok := n.Args[1].(*parse.StringNode); ok && !slices.Contains(w.vars, s.Text) {
					w.vars = append(w.vars, s.Text)
				}
			}
		}
		for _, a := range n.Args {
			w.walk(a, root)
		}
	case *parse.FieldNode:
		if root && len(n.Ident) > 0 {
			w.add(n.Ident[0])
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			w.add(n.Ident[1])
		}
	case *parse.ChainNode:
		w.walk(n.Node, root)
	case *parse.IfNode:
		w.walk(n.Pipe, root)
		w.walk(n.List, root)
		w.walk(n.ElseList, root)
	case *parse.RangeNode:
		w.walk(n.Pipe, root)
		w.walk(n.List, false)
		w.walk(n.ElseList, root)
	case *parse.WithNode:
		w.walk(n.Pipe, root)
		w.walk(n.List, false)
		w.walk(n.ElseList, root)
	case *parse.TemplateNode:
		w.walk(n.Pipe, root)
	}
}

// templateError is a template parse error, its message cleaned of the
// template's internal name.
type templateError struct {
	msg string
	err error
}

func (e *templateError) Error() string { return "bad template: " + e.msg }
func (e *templateError) Unwrap() error { return e.err }

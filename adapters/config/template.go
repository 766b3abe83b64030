package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/template"
	"text/template/parse"
)

// tmpl is a text/template over the run's context, parsed once at load.
// A template without actions is kept as its constant text.
type tmpl struct {
	src    string
	t      *template.Template // nil: constant
	idents []string           // top-level context keys it reads
	vars   []string           // names passed to var
}

// templateFuncs returns the functions templates may call. var reads the
// configuration's vars section.
func templateFuncs(vars map[string]any) template.FuncMap {
	return template.FuncMap{
		"var": func(name string) (any, error) {
			v, ok := vars[name]
			if !ok {
				return nil, fmt.Errorf("no var %q", name)
			}
			return v, nil
		},
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			if err != nil {
				return "", fmt.Errorf("json: %w", err)
			}
			return string(b), nil
		},
		"upper":      strings.ToUpper,
		"lower":      strings.ToLower,
		"trim":       strings.TrimSpace,
		"pathescape": url.PathEscape,
	}
}

// parseTemplate parses src with the configuration's functions.
func parseTemplate(name, src string, funcs template.FuncMap) (*tmpl, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(src)
	if err != nil {
		// "template: NAME:1: unclosed action" -> "line 1: unclosed action"
		msg := strings.TrimPrefix(err.Error(), "template: "+name+":")
		if line, rest, ok := strings.Cut(msg, ": "); ok && line != "" && strings.Trim(line, "0123456789") == "" {
			msg = "line " + line + ": " + rest
		}
		return nil, &templateError{msg: msg, err: err}
	}
	out := &tmpl{src: src, t: t}
	if t.Tree == nil || t.Tree.Root == nil || constant(t.Tree.Root) {
		out.t = nil
		return out, nil
	}
	w := &tmplWalker{}
	w.walk(t.Tree.Root, true)
	out.idents = w.idents
	out.vars = w.vars
	return out, nil
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

// exec renders the template over the context map.
func (t *tmpl) exec(m map[string]any) (string, error) {
	if t.t == nil {
		return t.src, nil
	}
	if m == nil {
		m = map[string]any{}
	}
	var b strings.Builder
	if err := t.t.Execute(&b, m); err != nil {
		return "", fmt.Errorf("template %q: %w", t.src, err)
	}
	return b.String(), nil
}

// tmplWalker collects the context keys a template reads: .key and $.key
// where dot is the context, and index . "key".
type tmplWalker struct {
	idents []string
	vars   []string
}

func (w *tmplWalker) add(k string) {
	if !slices.Contains(w.idents, k) {
		w.idents = append(w.idents, k)
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

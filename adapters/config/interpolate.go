package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v4"
)

// WithLookupEnv makes ${VAR} references read variables with lookup
// instead of os.LookupEnv (tests, a program with its own environment).
func WithLookupEnv(lookup func(string) (string, bool)) Option {
	return func(o *options) { o.lookupEnv = lookup }
}

// interpolate replaces the references in the scalar values (never the
// keys) of file f, before anything is read from it:
//
//	${NAME}          the environment variable NAME; unset is an error
//	${NAME:default}  NAME, or default when NAME is unset or empty
//	${file:PATH}     the content of the file PATH (relative to f's folder),
//	                 without one trailing newline
//	$${...}          the text ${...}, unreplaced (the escape)
//
// A reference replaces text inside one scalar: it never adds YAML
// structure. A plain (unquoted) scalar then has the type its new text
// has (port: ${PORT} is a number when PORT=8080); a quoted one stays a
// string. Problems (an unset variable, an unreadable file, a malformed
// reference) are reported at the reference's position.
func (l *loader) interpolate(f *srcFile, lookup func(string) (string, bool)) {
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n == nil {
			return
		}
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c)
			}
		case yaml.MappingNode:
			for i := 1; i < len(n.Content); i += 2 {
				walk(n.Content[i])
			}
		case yaml.ScalarNode:
			if strings.Contains(n.Value, "${") {
				l.interpolateScalar(f, n, lookup)
			}
		}
	}
	walk(f.root)
}

// interpolateScalar replaces the references in scalar n.
func (l *loader) interpolateScalar(f *srcFile, n *yaml.Node, lookup func(string) (string, bool)) {
	src := n.Value
	var b strings.Builder
	good := true
	for i := 0; i < len(src); {
		switch {
		case strings.HasPrefix(src[i:], "$${"):
			b.WriteString("${")
			i += 3
			continue
		case !strings.HasPrefix(src[i:], "${"):
			b.WriteByte(src[i])
			i++
			continue
		}
		end := strings.IndexByte(src[i:], '}')
		if end < 0 {
			l.refError(f, n, i, "unclosed reference %q: expected ${NAME}, ${NAME:default} or ${file:PATH} (write $${ for a literal ${)", src[i:])
			return
		}
		ref := src[i : i+end+1]
		inner := ref[2 : len(ref)-1]
		val, ok := l.resolveRef(f, n, i, ref, inner, lookup)
		good = good && ok
		b.WriteString(val)
		i += end + 1
	}
	if !good {
		return
	}
	n.Value = b.String()
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		n.Tag = plainTag(n.Value)
	}
}

// resolveRef returns the value of one reference ref (inner is its text
// between the braces) found at byte offset off of scalar n's value.
func (l *loader) resolveRef(f *srcFile, n *yaml.Node, off int, ref, inner string, lookup func(string) (string, bool)) (string, bool) {
	if path, ok := strings.CutPrefix(inner, "file:"); ok {
		if path == "" {
			l.refError(f, n, off, "%s: expected a file path after file:", ref)
			return "", false
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(f.name), path)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			l.refError(f, n, off, "%s: cannot read the file: %v", ref, err)
			return "", false
		}
		s := string(data)
		if t, ok := strings.CutSuffix(s, "\n"); ok {
			s = strings.TrimSuffix(t, "\r")
		}
		return s, true
	}
	name, def, hasDef := strings.Cut(inner, ":")
	if !validVarName(name) {
		l.refError(f, n, off, "bad reference %s: expected ${NAME}, ${NAME:default} or ${file:PATH}, NAME made of letters, digits and _ (write $${ for a literal ${)", ref)
		return "", false
	}
	v, set := lookup(name)
	switch {
	case set && v != "":
		return v, true
	case hasDef:
		return def, true
	case set:
		return "", true
	}
	l.refError(f, n, off, "%s: environment variable %s is not set (give a default: ${%s:value})", ref, name, name)
	return "", false
}

// refError reports a problem at byte offset off of scalar n's value.
func (l *loader) refError(f *srcFile, n *yaml.Node, off int, format string, args ...any) {
	src := n.Value[:off]
	line := 1 + strings.Count(src, "\n")
	col := utf8.RuneCountInString(src[strings.LastIndex(src, "\n")+1:]) + 1
	fl, fc := textPos(f, n, line, col)
	l.atIn(f, n, fl, fc, nil, "%s", fmt.Sprintf(format, args...))
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// plainTag returns the tag YAML resolves a plain scalar with text s to:
// !!int, !!float, !!bool, !!null or !!str. Text that would parse as more
// than one scalar (a mapping, a list, a comment) is a string.
func plainTag(s string) string {
	if s == "" || strings.ContainsAny(s, "\n#") {
		return "!!str"
	}
	var doc yaml.Node
	if err := safeYAML([]byte(s), &doc); err != nil || len(doc.Content) != 1 {
		return "!!str"
	}
	n := doc.Content[0]
	if n.Kind != yaml.ScalarNode || n.Style != 0 || n.Value != s {
		return "!!str"
	}
	return n.ShortTag()
}

// resolvePath returns path, read from node n of f, resolved against f's
// folder when it is relative (see the path flag of component.Field). A
// value given with --set, an absolute path, an empty one and one starting
// with ":" (":memory:") are returned as they are.
func (f *srcFile) resolvePath(n *yaml.Node, path string) string {
	if path == "" || filepath.IsAbs(path) || strings.HasPrefix(path, ":") || (n != nil && n.Line >= setLineBase) {
		return path
	}
	return filepath.Join(filepath.Dir(f.name), path)
}

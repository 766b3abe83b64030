package config

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/branch"
	yaml "go.yaml.in/yaml/v4"
)

// textPos maps a 1-based line and rune column inside the text of scalar
// n to a position in the file, accounting for quotes and block scalars.
func textPos(f *srcFile, n *yaml.Node, line, col int) (int, int) {
	if line < 1 || col < 1 {
		return n.Line, n.Column
	}
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		fl := n.Line + line // content starts on the line after the indicator
		return fl, lineIndent(f, fl) + col
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if line == 1 {
			return n.Line, n.Column + col
		}
	default:
		if line == 1 {
			return n.Line, n.Column + col - 1
		}
	}
	fl := n.Line + line - 1
	return fl, lineIndent(f, fl) + col
}

// lineIndent returns the number of leading blanks of a 1-based file line.
func lineIndent(f *srcFile, line int) int {
	if line < 1 || line > len(f.lines) {
		return 0
	}
	s := f.lines[line-1]
	return len(s) - len(strings.TrimLeft(s, " \t"))
}

// identPos returns the position of the first use of key in the source of
// expression or template scalar n, or n's own position.
func identPos(f *srcFile, n *yaml.Node, key string) (int, int) {
	src := n.Value
	for off := 0; off < len(src); {
		i := strings.Index(src[off:], key)
		if i < 0 {
			break
		}
		i += off
		before, _ := utf8.DecodeLastRuneInString(src[:i])
		after, _ := utf8.DecodeRuneInString(src[i+len(key):])
		if i > 0 && (isIdentRune(before) || before == '.' || before == '#') || isIdentRune(after) {
			off = i + len(key)
			continue
		}
		line := 1 + strings.Count(src[:i], "\n")
		col := utf8.RuneCountInString(src[strings.LastIndex(src[:i], "\n")+1:i]) + 1
		return textPos(f, n, line, col)
	}
	return n.Line, n.Column
}

func isIdentRune(r rune) bool {
	return r == '_' || r == '$' || unicode.IsLetter(r) || unicode.IsDigit(r)
}

// compileExpr parses and compiles the expression held by scalar n (a
// condition when cond), with the keys it reads of unknown type: the
// flow's build checks that every key it reads is provided.
func (l *loader) compileExpr(f *srcFile, n *yaml.Node, what string, cond bool) (component.Expr, bool) {
	src, ok := l.scalar(f, n, what)
	if !ok {
		return component.Expr{}, false
	}
	var e component.Expr
	var err error
	if cond {
		var c component.Cond
		c, err = component.ParseCond(src)
		e = c.Expr
	} else {
		e, err = component.ParseExpr(src)
	}
	if err != nil {
		l.exprError(f, n, what, err)
		return component.Expr{}, false
	}
	return e, true
}

// exprError reports an expression error at its position in the file.
func (s *sink) exprError(f *srcFile, n *yaml.Node, what string, err error) {
	var be *branch.Error
	if errors.As(err, &be) {
		line, col := textPos(f, n, be.Line, be.Column)
		s.atIn(f, n, line, col, err, "%s: bad expression %q: %s", what, be.Expr, be.Msg)
		return
	}
	s.atIn(f, n, n.Line, n.Column, err, "%s: bad expression: %v", what, err)
}

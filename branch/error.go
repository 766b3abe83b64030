package branch

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr/file"
)

// ErrNotCompiled is returned (wrapped in an *Error) by Eval and EvalBool when
// the expression has not been compiled yet.
var ErrNotCompiled = errors.New("expression not compiled")

// ErrUnknownKey is wrapped by the *Error that Compile returns when the
// expression reads a context key that is not in the known set.
var ErrUnknownKey = errors.New("unknown key")

// Error is a parse, compile or runtime error of an expression. It carries the
// expression source and, when known, the 1-based line and column of the
// offending token. Line and Column are 0 when no position is available.
type Error struct {
	// Expr is the full source of the expression.
	Expr string
	// Line is the 1-based line of the error, or 0 if unknown.
	Line int
	// Column is the 1-based column (in runes) of the error, or 0 if unknown.
	Column int
	// Msg describes the problem.
	Msg string
	// Err is the underlying error, if any.
	Err error
}

// Error formats the error on a single line, e.g.
// `expr "len(items) >" at 1:13: unexpected token EOF`.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("expr %q at %d:%d: %s", e.Expr, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("expr %q: %s", e.Expr, e.Msg)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Snippet returns the source line the error points at followed by a caret
// line marking the column, or "" when the error has no position.
func (e *Error) Snippet() string {
	if e.Line < 1 || e.Column < 1 {
		return ""
	}
	lines := strings.Split(e.Expr, "\n")
	if e.Line > len(lines) {
		return ""
	}
	line := strings.ReplaceAll(lines[e.Line-1], "\t", " ")
	return line + "\n" + strings.Repeat(" ", e.Column-1) + "^"
}

// newError converts err into an *Error for src, taking the position from an
// expr *file.Error in err's chain when there is one.
func newError(src string, err error) *Error {
	var fe *file.Error
	if errors.As(err, &fe) {
		line, col := position(src, fe.From)
		return &Error{Expr: src, Line: line, Column: col, Msg: fe.Message, Err: err}
	}
	return &Error{Expr: src, Msg: err.Error(), Err: err}
}

// position converts a rune offset into src (as used by expr locations) to a
// 1-based line and column. Offsets past the end point just after the last rune.
func position(src string, from int) (line, col int) {
	line, col = 1, 1
	n := 0
	for _, r := range src {
		if n == from {
			break
		}
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
		n++
	}
	return line, col
}

package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v4"
)

// Error is one problem found in a configuration file, at a position:
// "orders.yaml:12:9: unknown key "iff" in stop: expected if or reason".
type Error struct {
	File   string // the file name as given to the loader
	Line   int    // 1-based; 0 when the position is unknown
	Column int    // 1-based; 0 when unknown
	Msg    string // what is wrong and what was expected
	Err    error  // the cause, if any (an expression error, a build error)
}

// Error implements error: "file:line:col: message".
func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return e.Msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found while loading a configuration, sorted by
// file and position. Loading never stops at the first problem.
type Errors []*Error

// Error implements error: one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the errors, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sort orders the errors by file, line and column, keeping the order in
// which errors at the same position were found, and drops exact duplicates.
func (es Errors) sort(fileOrder map[string]int) Errors {
	slices.SortStableFunc(es, func(a, b *Error) int {
		return cmp.Or(
			cmp.Compare(fileOrder[a.File], fileOrder[b.File]),
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
		)
	})
	return slices.CompactFunc(es, func(a, b *Error) bool { return a.Error() == b.Error() })
}

// nodeError returns an *Error positioned at n in file.
func nodeError(file string, n *yaml.Node, format string, args ...any) *Error {
	e := &Error{File: file, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	for _, a := range args {
		if err, ok := a.(error); ok && e.Err == nil {
			e.Err = err
		}
	}
	return e
}

package component

import (
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"

	"github.com/svcflow/svcflow/branch"
)

// Expr is a spec field holding an expr-lang expression over the run's
// context: `set: {total: "subtotal * (1 - rate)"}`. A decoder parses it
// and compiles it with every key it reads of unknown type, so a syntax
// error is reported at its line and column inside the YAML value; the step
// compiles it again against the Go types of the keys known where it sits
// with [Expr.Compile]. The zero Expr holds no expression.
//
// An Expr is immutable and safe for concurrent use; copies share the
// parsed expression.
type Expr struct{ s *exprState }

// Cond is an [Expr] that must yield a boolean: a condition (`stop: {if:
// "len(items) == 0"}`). Compile requires a boolean result.
type Cond struct{ Expr }

type exprState struct {
	e    *branch.Expr // compiled with every key of unknown type
	cond bool

	mu    sync.Mutex // guards the last typed compilation
	known map[string]reflect.Type
	typed *branch.Expr
	err   error
}

// ParseExpr parses src and compiles it with every key it reads of unknown
// type. The error is a *branch.Error with the position inside src when
// one is known.
func ParseExpr(src string) (Expr, error) { return parseExpr(src, false) }

// ParseCond is [ParseExpr] for a condition: an expression whose result
// must be a boolean.
func ParseCond(src string) (Cond, error) {
	e, err := parseExpr(src, true)
	return Cond{e}, err
}

// MustParseExpr is ParseExpr that panics on error, for expressions
// written in Go.
func MustParseExpr(src string) Expr {
	e, err := ParseExpr(src)
	if err != nil {
		panic(err)
	}
	return e
}

func parseExpr(src string, cond bool) (Expr, error) {
	e, err := safeParse(src)
	if err != nil {
		return Expr{}, err
	}
	schema := make(map[string]reflect.Type, len(e.Idents()))
	for _, id := range e.Idents() {
		schema[id] = nil
	}
	var opts []branch.Option
	if cond {
		opts = append(opts, branch.AsBool())
	}
	if err := e.Compile(schema, opts...); err != nil {
		return Expr{}, err
	}
	return Expr{&exprState{e: e, cond: cond}}, nil
}

// safeParse parses an expression; a panic in the expression parser on odd
// input becomes an error.
func safeParse(src string) (e *branch.Expr, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("expression %q: parser failed: %v", src, r)
		}
	}()
	return branch.Parse(src)
}

// IsZero reports whether e holds no expression.
func (e Expr) IsZero() bool { return e.s == nil }

// Source returns the expression's text ("" for the zero Expr).
func (e Expr) Source() string {
	if e.s == nil {
		return ""
	}
	return e.s.e.Source()
}

// String returns the expression's text.
func (e Expr) String() string { return e.Source() }

// Keys returns the top-level context keys the expression reads, sorted
// (see branch.Expr.Idents).
func (e Expr) Keys() []string {
	if e.s == nil {
		return nil
	}
	return e.s.e.Idents()
}

// Parsed returns the expression compiled with every key it reads of
// unknown type: ready to evaluate, with no type checks beyond those. Nil
// for the zero Expr.
func (e Expr) Parsed() *branch.Expr {
	if e.s == nil {
		return nil
	}
	return e.s.e
}

// Compile compiles a copy of the expression against the Go types of the
// keys in known (nil: any), as a [flow.Preparer] service does where it
// sits, so that a type mistake is a build error; keys it reads that known
// lacks are of any type (the flow's own checks report them). A Cond must
// yield a boolean. The result for the same known types as the last call
// is remembered: the instances of a flow put a step in the same place,
// and compile it once.
func (e Expr) Compile(known map[string]reflect.Type) (*branch.Expr, error) {
	if e.s == nil {
		return nil, fmt.Errorf("component: compile of an empty expression: %w", ErrInvalid)
	}
	s := e.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.known != nil && maps.Equal(s.known, known) {
		return s.typed, s.err
	}
	s.typed, s.err = s.compile(known)
	s.known = maps.Clone(known)
	if s.known == nil {
		s.known = map[string]reflect.Type{}
	}
	return s.typed, s.err
}

func (s *exprState) compile(known map[string]reflect.Type) (*branch.Expr, error) {
	ne, err := branch.Parse(s.e.Source())
	if err != nil {
		return nil, err
	}
	sch, cloned := known, false
	for _, id := range ne.Idents() {
		if _, ok := sch[id]; !ok {
			if !cloned {
				sch, cloned = maps.Clone(known), true
				if sch == nil {
					sch = map[string]reflect.Type{}
				}
			}
			sch[id] = nil
		}
	}
	var opts []branch.Option
	if s.cond {
		opts = append(opts, branch.AsBool())
	}
	if err := ne.Compile(sch, opts...); err != nil {
		return nil, err
	}
	return ne, nil
}

// Constant returns the value of an expression that reads no key and calls
// nothing, when it is a scalar (nil, a boolean, a number or a string):
// such an expression can be evaluated once, when the step is made.
func (e Expr) Constant() (any, bool) {
	if e.s == nil || len(e.s.e.Idents()) > 0 || strings.ContainsAny(e.s.e.Source(), "(") {
		return nil, false
	}
	v, err := e.s.e.Eval(map[string]any{})
	if err != nil {
		return nil, false
	}
	switch v.(type) {
	case nil, bool, int, int64, float64, string:
		return v, true
	}
	return nil, false
}

package branch

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
)

// Expr is an expression over the context map. Safe for concurrent Eval after Compile.
//
// An Expr must not be copied after first use; pass it by pointer.
type Expr struct {
	src    string
	refs   []identRef // context keys read, by first occurrence in the source
	idents []string   // sorted names of refs
	ident  bool       // the whole source is a single plain identifier
	// wholeEnv is true when the source uses $env other than to read a key
	// ($env.key, $env["key"]): Eval then runs on a copy of the environment.
	wholeEnv bool
	// compares is true when the source compares a value it reads for
	// equality (==, !=, in) with something else than a string, bool or nil
	// literal: Eval then converts json.Number values first (see Eval).
	// eqPaths are the compared values that are plain member chains, which
	// Eval looks up; scanRefs is true when others are compared, and Eval
	// looks through every key the source reads.
	compares bool
	eqPaths  [][]string
	scanRefs bool
	// anyKey is true when the source may read any key ($env as a value,
	// $env[k]), not only refs.
	anyKey bool
	path   []string // key and member names if the source is a plain member chain like a.b.c

	prog atomic.Pointer[program]
	vms  sync.Pool // of *vm.VM; a VM is not safe for concurrent use
}

// program is the result of a successful Compile.
type program struct {
	vm     *vm.Program
	asBool bool
}

// Parse checks the syntax of src and returns the parsed expression. It does
// not resolve identifiers; that happens in Compile. A syntax error is
// returned as an *Error with the position of the offending token (just past
// the end for a truncated expression). An empty or blank src is an error.
func Parse(src string) (*Expr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &Error{Expr: src, Line: 1, Column: 1, Msg: "empty expression"}
	}
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, parseError(src, err)
	}
	e := &Expr{src: src, refs: collectIdents(tree.Node)}
	e.idents = make([]string, len(e.refs))
	for i, r := range e.refs {
		e.idents[i] = r.name
	}
	slices.Sort(e.idents)
	e.path = memberPath(tree.Node)
	e.ident = len(e.path) == 1
	e.wholeEnv = usesWholeEnv(tree.Node)
	var cv compareVisitor
	ast.Walk(&tree.Node, &cv)
	e.compares, e.anyKey = cv.compares, e.wholeEnv || cv.dynamicEnv
	e.eqPaths, e.scanRefs = cv.paths, cv.scan
	return e, nil
}

// usesWholeEnv reports whether the tree uses $env as a value, not only as
// the object of a member access ($env.key, $env[k]).
func usesWholeEnv(n ast.Node) bool {
	var v envUses
	ast.Walk(&n, &v)
	return v.all > v.member
}

// compareVisitor finds equality comparisons of values read from the
// context, and reads of $env by a computed key.
type compareVisitor struct {
	compares, dynamicEnv bool
	paths                [][]string
	scan                 bool
}

func (v *compareVisitor) Visit(n *ast.Node) {
	switch n := (*n).(type) {
	case *ast.BinaryNode:
		switch n.Operator {
		case "==", "!=", "in", "not in":
			v.operand(n.Left, n.Right)
			v.operand(n.Right, n.Left)
		}
	case *ast.MemberNode:
		if id, ok := n.Node.(*ast.IdentifierNode); ok && id.Value == envIdent {
			if _, ok := n.Property.(*ast.StringNode); !ok {
				v.dynamicEnv = true
			}
		}
	}
}

// operand notes n, compared for equality with other.
func (v *compareVisitor) operand(n, other ast.Node) {
	if !mayRead(n) || plainLiteral(other) {
		return
	}
	v.compares = true
	if p := memberPath(n); p != nil {
		v.paths = append(v.paths, p)
	} else {
		v.scan = true
	}
}

// plainLiteral reports whether n is a string, bool or nil literal, which
// no number equals.
func plainLiteral(n ast.Node) bool {
	switch n.(type) {
	case *ast.StringNode, *ast.BoolNode, *ast.NilNode:
		return true
	}
	return false
}

// mayRead reports whether n may yield a value as read from the context
// (a json.Number among them): not a literal, nor an operation whose result
// is computed (arithmetic fails on a json.Number, see Eval).
func mayRead(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.StringNode, *ast.BoolNode, *ast.NilNode, *ast.IntegerNode, *ast.FloatNode, *ast.ConstantNode,
		*ast.BinaryNode, *ast.UnaryNode:
		return false
	case *ast.BuiltinNode:
		switch n.Name {
		case "len", "count", "type", "string", "lower", "upper", "trim", "abs", "int", "float",
			"ceil", "floor", "round", "sum", "mean", "median", "all", "any", "none", "one":
			return false
		}
	}
	return true
}

// envUses counts the $env identifiers of a tree, and those that are the
// object of a member access.
type envUses struct{ all, member int }

func (v *envUses) Visit(n *ast.Node) {
	switch n := (*n).(type) {
	case *ast.IdentifierNode:
		if n.Value == envIdent {
			v.all++
		}
	case *ast.MemberNode:
		if id, ok := n.Node.(*ast.IdentifierNode); ok && id.Value == envIdent {
			v.member++
		}
	}
}

// memberPath returns [a b c] for a plain member chain a.b.c (or a["b"]),
// [a] for a plain identifier, and nil for anything else.
func memberPath(n ast.Node) []string {
	var rev []string
	for {
		switch m := n.(type) {
		case *ast.IdentifierNode:
			if m.Value == envIdent {
				return nil
			}
			rev = append(rev, m.Value)
			slices.Reverse(rev)
			return rev
		case *ast.MemberNode:
			prop, ok := m.Property.(*ast.StringNode)
			if !ok || m.Optional || m.Method {
				return nil
			}
			rev = append(rev, prop.Value)
			n = m.Node
		default:
			return nil
		}
	}
}

// parseError converts a parser error. expr locates the EOF token on the
// last rune of the input; an error about it is moved just past the end,
// where the missing token belongs (as expr already does for lexer errors).
func parseError(src string, err error) *Error {
	pe := newError(src, err)
	var fe *file.Error
	if errors.As(err, &fe) && strings.Contains(fe.Message, "EOF") && fe.To == utf8.RuneCountInString(src) {
		pe.Line, pe.Column = position(src, fe.To)
	}
	return pe
}

// MustParse is like Parse but panics on error. It is meant for expressions
// that are constants of the program.
func MustParse(src string) *Expr {
	e, err := Parse(src)
	if err != nil {
		panic(err)
	}
	return e
}

// Source returns the expression source as given to Parse.
func (e *Expr) Source() string { return e.src }

// Idents returns the sorted, deduplicated top-level context keys the
// expression reads: for "customer.tier == 'gold' && len(items) > 0" it is
// [customer items]. Builtins, closure variables (#, .field), let-bound names
// and member names after a dot are not included; `$env.key` counts as key.
// The returned slice is a copy.
func (e *Expr) Idents() []string { return slices.Clone(e.idents) }

// IsIdent reports whether the expression is a single plain identifier such
// as "tier". Callers may then read the context map directly with the key
// returned by Ident instead of calling Eval.
func (e *Expr) IsIdent() bool { return e.ident }

// Ident returns the key and true if the expression is a single plain
// identifier (see IsIdent), or "" and false otherwise.
func (e *Expr) Ident() (string, bool) {
	if !e.ident {
		return "", false
	}
	return e.idents[0], true
}

// Option configures Compile.
type Option func(*compileOptions)

type compileOptions struct {
	asBool bool
}

// AsBool makes Compile require the expression to return a bool. Conditions
// use it so that `total + 1` is rejected when the flow is built.
func AsBool() Option {
	return func(o *compileOptions) { o.asBool = true }
}

// Compile type-checks the expression against the keys the flow knows and
// compiles it to a program that Eval runs. known maps each context key to
// its Go type, or to nil when the type is unknown (any). Reading a key not in
// known is an error (wrapping ErrUnknownKey) positioned at its first use.
//
// Compile is meant to run once, when the flow is built, never per run. It may
// be called again (for example when a flow is built twice): on success the
// new program replaces the old one; on error the Expr is left unchanged.
func (e *Expr) Compile(known map[string]reflect.Type, opts ...Option) (err error) {
	var o compileOptions
	for _, opt := range opts {
		opt(&o)
	}
	for _, r := range e.refs {
		if _, ok := known[r.name]; !ok {
			line, col := position(e.src, r.from)
			return &Error{
				Expr: e.src, Line: line, Column: col,
				Msg: fmt.Sprintf("unknown key %q", r.name),
				Err: ErrUnknownKey,
			}
		}
	}

	env := make(types.Map, len(known))
	for k, t := range known {
		env[k] = exprType(t)
	}
	eopts := []expr.Option{expr.Env(env)}
	if o.asBool {
		eopts = append(eopts, expr.AsBool())
	}

	defer func() {
		if r := recover(); r != nil {
			err = &Error{Expr: e.src, Msg: fmt.Sprintf("compile: %v", r)}
		}
	}()
	prog, err := expr.Compile(e.src, eopts...)
	if err != nil {
		return newError(e.src, err)
	}
	e.prog.Store(&program{vm: prog, asBool: o.asBool})
	return nil
}

// exprType converts a Go type to the expr type of a context key.
func exprType(t reflect.Type) types.Type {
	if t == nil || t.Kind() == reflect.Interface {
		// Interface values are only known at run time.
		return types.Any
	}
	return types.TypeOf(reflect.Zero(t).Interface())
}

// Type returns the Go type of the expression's result as inferred by the
// last successful Compile, or nil when it is not known before run time
// (an interface, a key of unknown type) or the expression is not compiled.
func (e *Expr) Type() reflect.Type {
	p := e.prog.Load()
	if p == nil {
		return nil
	}
	if p.asBool {
		return reflect.TypeFor[bool]()
	}
	t := p.vm.Node().Type()
	if t == nil || t.Kind() == reflect.Interface {
		return nil
	}
	return t
}

// Compiled reports whether Compile has succeeded at least once.
func (e *Expr) Compiled() bool { return e.prog.Load() != nil }

// Eval runs the compiled expression against env. Keys missing from env
// evaluate to nil. A plain key or member chain over map[string]any values
// (such as "tier" or "customer.tier") is read directly without the VM; the
// result is the same. It returns an *Error wrapping ErrNotCompiled before
// Compile, and runtime failures (such as len(nil)) as an *Error with the
// position of the failing operation; it never panics on them.
//
// env must be a plain map[string]any: the compiled program reads it with a
// type assertion to exactly that type.
//
// A number decoding kept as text (a json.Number, for digits a float64
// would lose, such as 12345678901234567891) is read as it is: "id" and
// "order.id" yield the json.Number, so storing it keeps its digits. An
// expression computes with one as a float64, as before decoding kept them:
// one that fails on it (`id + 1`, `id > 5`: expr cannot compute on text)
// runs again on a copy of env in which such numbers are float64, which
// costs nothing to expressions that do not fail; one that compares a value
// it reads for equality (`id == 5`, `x in ids`, but not `tier == 'gold'`)
// first looks for json.Number values in the keys it reads, and runs on
// such a copy when it finds one. `string(id)` gives the digits.
//
// An expression that uses $env as a value (`$env`, `{audit: $env}`,
// `keys($env)`), not only to read a key ($env.key, $env["key"]), sees a
// shallow copy of env taken when it runs: what it yields never is env
// itself, so storing the result back into the map env came from cannot
// make the map contain itself. Only such expressions pay for the copy.
func (e *Expr) Eval(env map[string]any) (any, error) {
	prog := e.prog.Load()
	if prog == nil {
		return nil, &Error{Expr: e.src, Msg: "not compiled", Err: ErrNotCompiled}
	}
	if e.compares && e.comparesNumbers(env) {
		// `id == other` or `id == 5` of a json.Number would not fail, but
		// compare text with a number: compare as float64, as arithmetic
		// does (see run).
		env, _ = numbersAsFloats(env)
	}
	if e.wholeEnv {
		env = maps.Clone(env)
		if env == nil {
			env = map[string]any{}
		}
	}
	if e.path != nil {
		if v, ok := prog.lookup(env, e.path); ok {
			return v, nil
		}
	}
	return e.run(prog, env)
}

// lookup evaluates a plain member chain directly when every intermediate
// value is a map[string]any, with the same result the program would give
// (missing keys are nil; AsBool turns nil into false). It reports false when
// the program must run instead: other container types, nil intermediates and
// non-bool results under AsBool, whose errors the program produces.
func (p *program) lookup(env map[string]any, path []string) (any, bool) {
	v := env[path[0]]
	for _, k := range path[1:] {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		v = m[k]
	}
	if p.asBool {
		switch v.(type) {
		case nil:
			return false, true
		case bool:
		default:
			return nil, false
		}
	}
	return v, true
}

// run evaluates the compiled program with a pooled VM.
func (e *Expr) run(prog *program, env map[string]any) (any, error) {
	m, _ := e.vms.Get().(*vm.VM)
	if m == nil {
		m = new(vm.VM)
	}
	out, err := m.Run(prog.vm, env)
	if err != nil {
		if floats, ok := numbersAsFloats(env); ok {
			out, err = m.Run(prog.vm, floats)
		}
	}
	e.vms.Put(m)
	if err != nil {
		return nil, newError(e.src, err)
	}
	return out, nil
}

// scanBudget bounds the values readsNumbers looks at: a larger context is
// compared as read.
const scanBudget = 1 << 16

// comparesNumbers reports whether a value the expression compares for
// equality may be or hold a json.Number.
func (e *Expr) comparesNumbers(env map[string]any) bool {
	if e.scanRefs {
		return readsNumbers(env, e.refs, e.anyKey)
	}
	budget := scanBudget
	for _, p := range e.eqPaths {
		v := env[p[0]]
		for _, k := range p[1:] {
			m, ok := v.(map[string]any)
			if !ok {
				break
			}
			v = m[k]
		}
		if holdsNumber(v, &budget) {
			return true
		}
	}
	return false
}

// readsNumbers reports whether the values of the keys refs (of every key
// when all) hold a json.Number.
func readsNumbers(env map[string]any, refs []identRef, all bool) bool {
	budget := scanBudget
	if all {
		return holdsNumber(env, &budget)
	}
	for _, r := range refs {
		if holdsNumber(env[r.name], &budget) {
			return true
		}
	}
	return false
}

// holdsNumber reports whether v holds a json.Number, looking at no more
// than *budget values (so a map a Go service made contain itself ends the
// search too).
func holdsNumber(v any, budget *int) bool {
	switch x := v.(type) {
	case json.Number:
		return true
	case map[string]any:
		for _, el := range x {
			if *budget--; *budget < 0 {
				return false
			}
			if holdsNumber(el, budget) {
				return true
			}
		}
	case []any:
		for _, el := range x {
			if *budget--; *budget < 0 {
				return false
			}
			if holdsNumber(el, budget) {
				return true
			}
		}
	}
	return false
}

// numbersAsFloats returns a copy of env in which every json.Number (a
// number decoding keeps as text because a float64 would not keep its
// digits) is a float64, and whether env held any. Maps and slices without
// one are shared, not copied.
func numbersAsFloats(env map[string]any) (map[string]any, bool) {
	var w floatWalk
	out, ok := w.walk(env)
	if !ok {
		return nil, false
	}
	return out.(map[string]any), true
}

// floatWalk walks a value for numbersAsFloats. It visits each map and
// slice once, however often it is shared, and a map a Go service made
// contain itself ends the walk instead of the stack.
type floatWalk struct {
	depth int
	seen  map[container]*walked
}

// container identifies a map (len 0) or slice.
type container struct {
	ptr unsafe.Pointer
	len int
}

// walked is the result of walking a container; done is false while the
// walk is inside it.
type walked struct {
	out      any
	ok, done bool
}

// maxNesting bounds the walk: what JSON decoding gives is no deeper.
const maxNesting = 10000

func (w *floatWalk) walk(v any) (any, bool) {
	var c container
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64() // out of range: ±Inf, as a float64 decoding would fail
		return f, true
	case map[string]any:
		c.ptr = *(*unsafe.Pointer)(unsafe.Pointer(&x))
	case []any:
		if len(x) == 0 {
			return v, false
		}
		c = container{ptr: unsafe.Pointer(unsafe.SliceData(x)), len: len(x)}
	default:
		return v, false
	}
	if c.ptr == nil || w.depth >= maxNesting {
		return v, false
	}
	if r, ok := w.seen[c]; ok {
		return r.out, r.ok && r.done // inside it still: a cycle, left as it is
	}
	if w.seen == nil {
		w.seen = map[container]*walked{}
	}
	r := &walked{out: v}
	w.seen[c] = r
	w.depth++
	switch x := v.(type) {
	case map[string]any:
		var out map[string]any
		for k, el := range x {
			if conv, ok := w.walk(el); ok {
				if out == nil {
					out = maps.Clone(x)
				}
				out[k] = conv
			}
		}
		if out != nil {
			r.out, r.ok = out, true
		}
	case []any:
		var out []any
		for i, el := range x {
			if conv, ok := w.walk(el); ok {
				if out == nil {
					out = slices.Clone(x)
				}
				out[i] = conv
			}
		}
		if out != nil {
			r.out, r.ok = out, true
		}
	}
	w.depth--
	r.done = true
	return r.out, r.ok
}

// EvalBool is like Eval but requires a bool result; any other result is an
// *Error naming the expression and the type it got. With AsBool, expr itself
// converts a nil result to false and fails on other non-bool results; without
// it, nil is an error too.
func (e *Expr) EvalBool(env map[string]any) (bool, error) {
	out, err := e.Eval(env)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, &Error{Expr: e.src, Msg: fmt.Sprintf("result is %T, want bool", out)}
	}
	return b, nil
}

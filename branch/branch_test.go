package branch_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/branch"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		line, col int
		msg       string
		str       string
		snippet   string
	}{
		{
			name: "truncated binary", src: "len(items) >", line: 1, col: 13,
			msg:     "unexpected token EOF",
			str:     `expr "len(items) >" at 1:13: unexpected token EOF`,
			snippet: "len(items) >\n            ^",
		},
		{
			name: "double operator", src: "a +* b", line: 1, col: 4,
			msg:     `unexpected token Operator("*")`,
			str:     `expr "a +* b" at 1:4: unexpected token Operator("*")`,
			snippet: "a +* b\n   ^",
		},
		{
			name: "unterminated string", src: `"unterminated`, line: 1, col: 14,
			msg: "literal not terminated",
			str: `expr "\"unterminated" at 1:14: literal not terminated`,
		},
		{
			name: "empty", src: "", line: 1, col: 1,
			msg: "empty expression",
			str: `expr "" at 1:1: empty expression`,
		},
		{
			name: "blank", src: " \t\n ", line: 1, col: 1,
			msg: "empty expression",
		},
		{
			name: "unclosed call", src: "foo(", line: 1, col: 5,
			msg: "unexpected token EOF",
		},
		{
			name: "second line", src: "a &&\n  + )", line: 2, col: 5,
			msg:     `unexpected token Bracket(")")`,
			snippet: "  + )\n    ^",
		},
		{
			name: "juxtaposed identifiers", src: "a b", line: 1, col: 3,
			msg: `unexpected token Identifier("b")`,
		},
		{
			name: "multibyte runes before error", src: `"héllo" ++`, line: 1, col: 11,
			msg: "unexpected token EOF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := branch.Parse(tt.src)
			require.Error(t, err)
			assert.Nil(t, e)

			var perr *branch.Error
			require.ErrorAs(t, err, &perr)
			assert.Equal(t, tt.src, perr.Expr)
			assert.Equal(t, tt.line, perr.Line, "line")
			assert.Equal(t, tt.col, perr.Column, "column")
			assert.Equal(t, tt.msg, perr.Msg)
			if tt.str != "" {
				assert.Equal(t, tt.str, err.Error())
			}
			assert.NotContains(t, err.Error(), "\n", "Error() must be a single line")
			if tt.snippet != "" {
				assert.Equal(t, tt.snippet, perr.Snippet())
			}
		})
	}
}

func TestMustParse(t *testing.T) {
	assert.Equal(t, "a > 1", branch.MustParse("a > 1").Source())
	assert.Panics(t, func() { branch.MustParse("a >") })
}

func TestIdents(t *testing.T) {
	tests := []struct {
		src  string
		want []string
	}{
		{"tier", []string{"tier"}},
		{"customer.tier == 'gold' && len(items) > 0", []string{"customer", "items"}},
		{"customer.address.city", []string{"customer"}},
		{"customer['tier'] + customer[key]", []string{"customer", "key"}},
		{"map(items, #.price * #.qty)", []string{"items"}},
		{"sum(map(items, .price * .qty)) > limit", []string{"items", "limit"}},
		{"filter(items, {# > min})", []string{"items", "min"}},
		{"reduce(items, #acc + #, zero)", []string{"items", "zero"}},
		{"map(items, #index)", []string{"items"}},
		{"let x = 1; x + y", []string{"y"}},
		{"let x = x; x", []string{"x"}},
		{"let a = b; let c = a * 2; c + d", []string{"b", "d"}},
		{"map(items, {let p = #.price; p * rate})", []string{"items", "rate"}},
		{"(let x = 1; x) + x", []string{"x"}},
		{"len(upper(trim(name))) > max(a, b)", []string{"a", "b", "name"}},
		{"lookup(code).name", []string{"code", "lookup"}},
		{"customer?.tier ?? default", []string{"customer", "default"}},
		{"a?.b?.c ?? b", []string{"a", "b"}},
		{"z > 1 ? a : b", []string{"a", "b", "z"}},
		{"if ok { x } else { y }", []string{"ok", "x", "y"}},
		{"{name: first, 'last': last}", []string{"first", "last"}},
		{"[a, b, a]", []string{"a", "b"}},
		{"list[lo:hi]", []string{"hi", "list", "lo"}},
		{"tier in ['gold', 'silver'] and not blocked", []string{"blocked", "tier"}},
		{"items | filter(.ok) | len()", []string{"items"}},
		{"$env.total > 1 && $env['qty'] > 0", []string{"qty", "total"}},
		{"true && nil == nil", []string{}},
		{"now() > date('2024-01-01')", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := branch.Parse(tt.src)
			require.NoError(t, err)
			assert.Equal(t, tt.want, e.Idents())
		})
	}

	t.Run("copy", func(t *testing.T) {
		e := branch.MustParse("a + b")
		e.Idents()[0] = "zzz"
		assert.Equal(t, []string{"a", "b"}, e.Idents())
	})
}

func TestIsIdent(t *testing.T) {
	tests := []struct {
		src  string
		want bool
	}{
		{"tier", true},
		{"  tier\n", true},
		{"customer.tier", false},
		{"tier()", false},
		{"len(tier)", false},
		{"true", false},
		{"nil", false},
		{"$env", false},
		{"(tier)", true},
		{"'tier'", false},
		{"let t = 1; t", false},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e := branch.MustParse(tt.src)
			assert.Equal(t, tt.want, e.IsIdent())
			key, ok := e.Ident()
			assert.Equal(t, tt.want, ok)
			if tt.want {
				assert.Equal(t, "tier", key)
			} else {
				assert.Empty(t, key)
			}
		})
	}
}

var (
	typString = reflect.TypeOf("")
	typInt    = reflect.TypeOf(0)
	typFloat  = reflect.TypeOf(0.0)
	typBool   = reflect.TypeOf(false)
	typMap    = reflect.TypeOf(map[string]any{})
	typSlice  = reflect.TypeOf([]any{})
)

func TestCompileUnknownKey(t *testing.T) {
	known := map[string]reflect.Type{"total": typInt, "items": nil, "customer": typMap}
	tests := []struct {
		src       string
		key       string
		line, col int
	}{
		{"totl > 100", "totl", 1, 1},
		{"total > 100 && len(itemz) > 0", "itemz", 1, 20},
		{"customer.tier == tier", "tier", 1, 18},
		{"total > 1 &&\n  missing", "missing", 2, 3},
		{"b + a + b", "b", 1, 1},
		{"lookup(total)", "lookup", 1, 1},
		{"$env.nope", "nope", 1, 6},
		{"map(items, #.x + y)", "y", 1, 18},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e := branch.MustParse(tt.src)
			err := e.Compile(known)
			require.Error(t, err)
			assert.ErrorIs(t, err, branch.ErrUnknownKey)
			var cerr *branch.Error
			require.ErrorAs(t, err, &cerr)
			assert.Equal(t, fmt.Sprintf("unknown key %q", tt.key), cerr.Msg)
			assert.Equal(t, tt.line, cerr.Line, "line")
			assert.Equal(t, tt.col, cerr.Column, "column")
			assert.False(t, e.Compiled())
		})
	}

	t.Run("nil known", func(t *testing.T) {
		err := branch.MustParse("a").Compile(nil)
		assert.ErrorIs(t, err, branch.ErrUnknownKey)
		assert.EqualError(t, err, `expr "a" at 1:1: unknown key "a"`)
	})
	t.Run("no keys needed", func(t *testing.T) {
		e := branch.MustParse("1 + 2")
		require.NoError(t, e.Compile(nil))
		got, err := e.Eval(nil)
		require.NoError(t, err)
		assert.Equal(t, 3, got)
	})
}

func TestCompileTypes(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		known   map[string]reflect.Type
		opts    []branch.Option
		wantErr string // substring of Msg; "" means success
		line    int
		col     int
	}{
		{name: "string vs int", src: "total > 100", known: map[string]reflect.Type{"total": typString},
			wantErr: "mismatched types string and int", line: 1, col: 7},
		{name: "int ok", src: "total > 100", known: map[string]reflect.Type{"total": typInt}},
		{name: "float ok", src: "total > 100", known: map[string]reflect.Type{"total": typFloat}},
		{name: "untyped ok", src: "total > 100", known: map[string]reflect.Type{"total": nil}},
		{name: "interface type is any", src: "err.Error() == 'x'", known: map[string]reflect.Type{"err": reflect.TypeOf((*error)(nil)).Elem()}},
		{name: "len of int", src: "len(n)", known: map[string]reflect.Type{"n": typInt},
			wantErr: "invalid argument for len (type int)"},
		{name: "member of bool", src: "flag.x", known: map[string]reflect.Type{"flag": typBool},
			wantErr: "type bool has no field x"},
		{name: "as bool rejects int", src: "total + 1", known: map[string]reflect.Type{"total": typInt},
			opts: []branch.Option{branch.AsBool()}, wantErr: "expected bool, but got int"},
		{name: "as bool rejects string key", src: "tier", known: map[string]reflect.Type{"tier": typString},
			opts: []branch.Option{branch.AsBool()}, wantErr: "expected bool, but got string"},
		{name: "as bool accepts comparison", src: "total > 1 && ok", known: map[string]reflect.Type{"total": typInt, "ok": typBool},
			opts: []branch.Option{branch.AsBool()}},
		{name: "as bool accepts untyped key", src: "ok", known: map[string]reflect.Type{"ok": nil},
			opts: []branch.Option{branch.AsBool()}},
		{name: "without as bool int is fine", src: "total + 1", known: map[string]reflect.Type{"total": typInt}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := branch.MustParse(tt.src)
			err := e.Compile(tt.known, tt.opts...)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.True(t, e.Compiled())
				return
			}
			var cerr *branch.Error
			require.ErrorAs(t, err, &cerr)
			assert.Contains(t, cerr.Msg, tt.wantErr)
			assert.Equal(t, tt.src, cerr.Expr)
			if tt.line != 0 {
				assert.Equal(t, tt.line, cerr.Line, "line")
				assert.Equal(t, tt.col, cerr.Column, "column")
			}
			assert.False(t, e.Compiled())
		})
	}
}

func TestCompileAgain(t *testing.T) {
	e := branch.MustParse("x * 2")
	require.NoError(t, e.Compile(map[string]reflect.Type{"x": typInt}))
	got, err := e.Eval(map[string]any{"x": 2})
	require.NoError(t, err)
	assert.Equal(t, 4, got)

	// A failed recompile leaves the previous program in place.
	require.Error(t, e.Compile(map[string]reflect.Type{"y": typInt}))
	assert.True(t, e.Compiled())
	got, err = e.Eval(map[string]any{"x": 3})
	require.NoError(t, err)
	assert.Equal(t, 6, got)

	// A successful recompile replaces it.
	require.NoError(t, e.Compile(map[string]reflect.Type{"x": typFloat}))
	got, err = e.Eval(map[string]any{"x": 1.5})
	require.NoError(t, err)
	assert.Equal(t, 3.0, got)
}

func TestEval(t *testing.T) {
	known := map[string]reflect.Type{
		"tier": nil, "customer": nil, "total": nil, "items": nil, "name": nil, "missing": nil,
	}
	env := map[string]any{
		"tier":     "gold",
		"customer": map[string]any{"tier": "silver", "address": map[string]any{"city": "Oslo"}},
		"total":    150,
		"items": []any{
			map[string]any{"price": 2.5, "qty": 2},
			map[string]any{"price": 10.0, "qty": 1},
		},
		"name": "  Ada ",
	}
	tests := []struct {
		src  string
		want any
	}{
		{"tier", "gold"},
		{"customer.tier", "silver"},
		{"customer.address.city", "Oslo"},
		{"customer?.nope?.deeper", nil},
		{"missing", nil},
		{"missing ?? 'default'", "default"},
		{"total > 100 && len(items) > 0", true},
		{"total > 1000 || len(items) > 5", false},
		{"sum(map(items, #.price * #.qty))", 15.0},
		{"let t = total * 2; t + 1", 301},
		{"trim(name)", "Ada"},
		{"tier in ['gold', 'platinum'] ? 'vip' : 'std'", "vip"},
		{"count(items, .qty > 1)", 1},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e := branch.MustParse(tt.src)
			require.NoError(t, e.Compile(known))
			got, err := e.Eval(env)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestEvalBool(t *testing.T) {
	known := map[string]reflect.Type{"total": nil, "items": nil, "tier": nil, "flag": nil}
	tests := []struct {
		src     string
		env     map[string]any
		opts    []branch.Option
		want    bool
		wantErr string
	}{
		{src: "total > 100 && len(items) > 0", env: map[string]any{"total": 101, "items": []any{1}}, want: true},
		{src: "total > 100 && len(items) > 0", env: map[string]any{"total": 101, "items": []any{}}, want: false},
		{src: "total > 100 && len(items) > 0", env: map[string]any{"total": 5}, want: false}, // short-circuit
		{src: "flag", env: map[string]any{"flag": true}, want: true},
		{src: "tier == 'gold'", env: nil, want: false},
		{src: "flag", env: map[string]any{"flag": "yes"}, wantErr: `expr "flag": result is string, want bool`},
		{src: "flag", env: nil, wantErr: `expr "flag": result is <nil>, want bool`},
		{src: "total", env: map[string]any{"total": 3}, wantErr: `expr "total": result is int, want bool`},
		// With AsBool expr converts the result: nil is false, other types fail.
		{src: "flag", env: nil, opts: []branch.Option{branch.AsBool()}, want: false},
		{src: "flag", env: map[string]any{"flag": true}, opts: []branch.Option{branch.AsBool()}, want: true},
		{src: "flag", env: map[string]any{"flag": "yes"}, opts: []branch.Option{branch.AsBool()},
			wantErr: `expr "flag" at 1:1: invalid operation: bool(string)`},
		{src: "total > 1 && flag", env: map[string]any{"total": 2, "flag": 1}, opts: []branch.Option{branch.AsBool()},
			wantErr: `expr "total > 1 && flag" at 1:1: invalid operation: bool(int)`},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e := branch.MustParse(tt.src)
			require.NoError(t, e.Compile(known, tt.opts...))
			got, err := e.EvalBool(tt.env)
			if tt.wantErr != "" {
				assert.EqualError(t, err, tt.wantErr)
				var berr *branch.Error
				assert.ErrorAs(t, err, &berr)
				assert.False(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestEvalNotCompiled(t *testing.T) {
	e := branch.MustParse("a == 1")
	assert.False(t, e.Compiled())

	_, err := e.Eval(map[string]any{"a": 1})
	assert.ErrorIs(t, err, branch.ErrNotCompiled)
	assert.EqualError(t, err, `expr "a == 1": not compiled`)

	_, err = e.EvalBool(map[string]any{"a": 1})
	assert.ErrorIs(t, err, branch.ErrNotCompiled)

	// A failed Compile does not make it compiled either.
	require.Error(t, e.Compile(nil))
	_, err = e.Eval(nil)
	assert.ErrorIs(t, err, branch.ErrNotCompiled)
}

func TestRuntimeErrors(t *testing.T) {
	known := map[string]reflect.Type{"items": nil, "customer": nil, "n": nil, "s": nil, "f": nil}
	tests := []struct {
		src       string
		env       map[string]any
		msg       string
		line, col int
	}{
		{src: "len(items) > 0", env: nil, msg: "invalid argument for len (type <nil>)", line: 1, col: 1},
		{src: "customer.tier", env: map[string]any{}, msg: "cannot fetch tier from <nil>", line: 1, col: 10},
		{src: "n + 1", env: map[string]any{"n": "x"}, msg: "invalid operation: string + int", line: 1, col: 3},
		{src: "items[5]", env: map[string]any{"items": []any{1}}, msg: "index out of range: 5 (array length is 1)", line: 1, col: 6},
		{src: "n ==\n upper(s)", env: map[string]any{"s": 1}, msg: "interface conversion", line: 2, col: 2},
		{src: "f()", env: map[string]any{"f": func() any { panic("boom") }}, msg: "boom", line: 1, col: 1},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e := branch.MustParse(tt.src)
			require.NoError(t, e.Compile(known))
			var (
				got any
				err error
			)
			require.NotPanics(t, func() { got, err = e.Eval(tt.env) })
			assert.Nil(t, got)
			var rerr *branch.Error
			require.ErrorAs(t, err, &rerr)
			assert.Equal(t, tt.src, rerr.Expr)
			assert.Contains(t, rerr.Msg, tt.msg)
			assert.Equal(t, tt.line, rerr.Line, "line")
			assert.Equal(t, tt.col, rerr.Column, "column")
			assert.NotEmpty(t, rerr.Snippet())
			assert.NotNil(t, errors.Unwrap(err))

			// The pooled VM is still usable after a failure.
			_, err2 := e.Eval(tt.env)
			assert.Equal(t, err.Error(), err2.Error())
		})
	}
}

func TestErrorFormat(t *testing.T) {
	inner := errors.New("inner")
	e := &branch.Error{Expr: "a\n\tb + ", Line: 2, Column: 4, Msg: "bad", Err: inner}
	assert.Equal(t, `expr "a\n\tb + " at 2:4: bad`, e.Error())
	assert.Equal(t, " b + \n   ^", e.Snippet())
	assert.ErrorIs(t, e, inner)

	noPos := &branch.Error{Expr: "x", Msg: "bad"}
	assert.Equal(t, `expr "x": bad`, noPos.Error())
	assert.Empty(t, noPos.Snippet())
	assert.Nil(t, noPos.Unwrap())
}

func TestConcurrentEval(t *testing.T) {
	cond := branch.MustParse("total > 100 && len(items) > 0")
	key := branch.MustParse("customer.tier + '-' + string(total)")
	known := map[string]reflect.Type{"total": typInt, "items": typSlice, "customer": typMap}
	require.NoError(t, cond.Compile(known, branch.AsBool()))
	require.NoError(t, key.Compile(known))

	const goroutines, iterations = 50, 200
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range iterations {
				total := g*10 + i%3
				items := make([]any, g%2)
				env := map[string]any{
					"total":    total,
					"items":    items,
					"customer": map[string]any{"tier": fmt.Sprintf("t%d", g)},
				}
				ok, err := cond.EvalBool(env)
				if err != nil {
					errs <- err
					return
				}
				if want := total > 100 && len(items) > 0; ok != want {
					errs <- fmt.Errorf("goroutine %d iter %d: cond = %v, want %v", g, i, ok, want)
					return
				}
				k, err := key.Eval(env)
				if err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf("t%d-%d", g, total); k != want {
					errs <- fmt.Errorf("goroutine %d iter %d: key = %v, want %v", g, i, k, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestType(t *testing.T) {
	known := map[string]reflect.Type{"total": reflect.TypeFor[float64](), "n": reflect.TypeFor[int](), "x": nil}
	for src, want := range map[string]reflect.Type{
		"total * 2": reflect.TypeFor[float64](),
		"n + 1":     reflect.TypeFor[int](),
		"'a' + 'b'": reflect.TypeFor[string](),
		"n > 1":     reflect.TypeFor[bool](),
		"x":         nil,
		"x.y + 1":   nil,
		"[1, 2]":    reflect.TypeFor[[]any](),
	} {
		e := branch.MustParse(src)
		assert.Nil(t, e.Type(), "before Compile")
		require.NoError(t, e.Compile(known), src)
		assert.Equal(t, want, e.Type(), src)
	}
}

// TestEvalEnvIsACopy checks that an expression using $env as a value gets
// a copy of the environment: storing its result back cannot make the map
// contain itself, while $env.key reads stay direct.
func TestEvalEnvIsACopy(t *testing.T) {
	known := map[string]reflect.Type{"total": nil, "audit": nil}
	for _, src := range []string{"$env", "{audit: $env}", "[$env]", "let e = $env; e", "true ? $env : nil", "map([1], $env)"} {
		t.Run(src, func(t *testing.T) {
			env := map[string]any{"total": 3.0}
			e := branch.MustParse(src)
			require.NoError(t, e.Compile(known))
			got, err := e.Eval(env)
			require.NoError(t, err)
			env["audit"] = got // what a set step does
			data, err := json.Marshal(env)
			require.NoError(t, err, "the result does not contain the map it is stored in")
			assert.Contains(t, string(data), `"total":3`)
		})
	}
	env := map[string]any{"total": 3.0}
	for src, want := range map[string]any{
		"$env.total": 3.0, "$env['total'] + 1": 4.0, "'total' in $env": true, "len($env)": 1, "keys($env)": []any{"total"},
	} {
		e := branch.MustParse(src)
		require.NoError(t, e.Compile(known))
		got, err := e.Eval(env)
		require.NoError(t, err, src)
		assert.Equal(t, want, got, src)
	}
	e := branch.MustParse("$env")
	require.NoError(t, e.Compile(known))
	got, err := e.Eval(nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{}, got)
}

// TestEvalBigNumbers: numbers kept as text (json.Number) are read as they
// are, and computed with as float64.
func TestEvalBigNumbers(t *testing.T) {
	known := map[string]reflect.Type{"id": nil, "order": nil, "items": nil, "ids": nil}
	env := map[string]any{
		"ids":   []any{1.0, json.Number("12345678901234567891")},
		"id":    json.Number("12345678901234567891"),
		"order": map[string]any{"id": json.Number("12345678901234567891"), "n": 2.0},
		"items": []any{map[string]any{"price": json.Number("0.10000000000000000001")}, map[string]any{"price": 1.0}},
	}
	for src, want := range map[string]any{
		"id":                       json.Number("12345678901234567891"),
		"order.id":                 json.Number("12345678901234567891"),
		"[id, order.n]":            []any{json.Number("12345678901234567891"), 2.0},
		"id ?? 0":                  json.Number("12345678901234567891"),
		"id > 1e19":                true,
		"id + 1":                   12345678901234567891.0 + 1,
		"order.id * order.n":       12345678901234567891.0 * 2,
		"sum(map(items, #.price))": 1.1,
		"string(id)":               "12345678901234567891",
		"id == order.id":           true,
	} {
		e := branch.MustParse(src)
		require.NoError(t, e.Compile(known), src)
		got, err := e.Eval(env)
		require.NoError(t, err, src)
		assert.Equal(t, want, got, src)
	}
	assert.Equal(t, json.Number("12345678901234567891"), env["order"].(map[string]any)["id"], "env is not changed")
	e := branch.MustParse("id + 'x'")
	require.NoError(t, e.Compile(known))
	_, err := e.Eval(env)
	assert.ErrorContains(t, err, "invalid operation: float64 + string", "an expression that fails on numbers fails as before")
}

// TestEvalFailingOnACycle: an expression that fails on a context a Go
// service made contain itself fails with its error; looking for numbers
// to convert does not overflow the stack.
func TestEvalFailingOnACycle(t *testing.T) {
	env := map[string]any{"n": json.Number("12345678901234567891")}
	env["self"] = env
	e := branch.MustParse("self.n + 'x'")
	require.NoError(t, e.Compile(map[string]reflect.Type{"self": nil}))
	_, err := e.Eval(env)
	assert.ErrorContains(t, err, "invalid operation")
}

// TestEvalFailingOnAWideCycle: a map holding itself under many keys does
// not make the search for numbers explode either.
func TestEvalFailingOnAWideCycle(t *testing.T) {
	env := map[string]any{"n": json.Number("12345678901234567891")}
	for _, k := range []string{"a", "b", "c", "d"} {
		env[k] = env
	}
	e := branch.MustParse("a.n + 'x'")
	require.NoError(t, e.Compile(map[string]reflect.Type{"a": nil}))
	_, err := e.Eval(env)
	assert.ErrorContains(t, err, "invalid operation")
}

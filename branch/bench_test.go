package branch

import (
	"reflect"
	"testing"
)

// benchEnv is a run context of ~10 keys.
func benchEnv() map[string]any {
	return map[string]any{
		"tier":     "gold",
		"customer": map[string]any{"tier": "gold", "id": 42},
		"total":    250,
		"items":    []any{"a", "b"},
		"currency": "EUR",
		"country":  "NO",
		"channel":  "web",
		"attempt":  1,
		"priority": 3,
		"flags":    map[string]any{"beta": true},
	}
}

var benchKnown = map[string]reflect.Type{
	"tier": nil, "customer": nil, "total": nil, "items": nil, "currency": nil,
	"country": nil, "channel": nil, "attempt": nil, "priority": nil, "flags": nil,
}

var (
	sinkAny  any
	sinkBool bool
)

func compiledB(b *testing.B, src string, opts ...Option) *Expr {
	b.Helper()
	e := MustParse(src)
	if err := e.Compile(benchKnown, opts...); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkKeyEval measures per-run evaluation of compiled expressions next to
// the equivalent hand-written Go ("baseline") for the ratio. "expr" is Eval as
// callers use it; "vm" forces the pooled-VM path that Eval skips for plain
// keys and member chains over map[string]any.
func BenchmarkKeyEval(b *testing.B) {
	env := benchEnv()

	b.Run("ident/expr", func(b *testing.B) {
		e := compiledB(b, "tier")
		b.ReportAllocs()
		for b.Loop() {
			sinkAny, _ = e.Eval(env)
		}
	})
	b.Run("ident/vm", func(b *testing.B) {
		e := compiledB(b, "tier")
		p := e.prog.Load()
		b.ReportAllocs()
		for b.Loop() {
			sinkAny, _ = e.run(p, env)
		}
	})
	b.Run("ident/baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkAny = env["tier"]
		}
	})

	b.Run("member/expr", func(b *testing.B) {
		e := compiledB(b, "customer.tier")
		b.ReportAllocs()
		for b.Loop() {
			sinkAny, _ = e.Eval(env)
		}
	})
	b.Run("member/vm", func(b *testing.B) {
		e := compiledB(b, "customer.tier")
		p := e.prog.Load()
		b.ReportAllocs()
		for b.Loop() {
			sinkAny, _ = e.run(p, env)
		}
	})
	b.Run("member/baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v any
			if c, ok := env["customer"].(map[string]any); ok {
				v = c["tier"]
			}
			sinkAny = v
		}
	})

	b.Run("cond/expr", func(b *testing.B) {
		e := compiledB(b, "total > 100 && len(items) > 0", AsBool())
		b.ReportAllocs()
		for b.Loop() {
			sinkBool, _ = e.EvalBool(env)
		}
	})
	b.Run("cond/baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			total, _ := env["total"].(int)
			items, _ := env["items"].([]any)
			sinkBool = total > 100 && len(items) > 0
		}
	})

	b.Run("cond/expr-parallel", func(b *testing.B) {
		e := compiledB(b, "total > 100 && len(items) > 0", AsBool())
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if ok, err := e.EvalBool(env); !ok || err != nil {
					b.Error("unexpected result", ok, err)
					return
				}
			}
		})
	})
}

// BenchmarkCompile shows what a build-time Compile costs; it is orders of
// magnitude above Eval, which is why it must never run per run.
func BenchmarkCompile(b *testing.B) {
	for _, src := range []string{"customer.tier", "total > 100 && len(items) > 0"} {
		b.Run(src, func(b *testing.B) {
			e := MustParse(src)
			b.ReportAllocs()
			for b.Loop() {
				if err := e.Compile(benchKnown); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParse shows the construction-time cost of Parse.
func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("total > 100 && len(items) > 0"); err != nil {
			b.Fatal(err)
		}
	}
}

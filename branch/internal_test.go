package branch

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemberPath(t *testing.T) {
	tests := []struct {
		src  string
		want []string
	}{
		{"tier", []string{"tier"}},
		{"customer.tier", []string{"customer", "tier"}},
		{"a.b.c", []string{"a", "b", "c"}},
		{"a['b'].c", []string{"a", "b", "c"}},
		{"a?.b", nil},
		{"a.b?.c", nil},
		{"a[0]", nil},
		{"a[k]", nil},
		{"a.b()", nil},
		{"$env.a", nil},
		{"$env", nil},
		{"len(a)", nil},
		{"a + b", nil},
		{"'tier'", nil},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			assert.Equal(t, tt.want, MustParse(tt.src).path)
		})
	}
}

type tiered struct{ Tier string }

type namedMap map[string]any

// TestDirectLookupMatchesVM checks that the direct path lookup in Eval gives
// exactly what the compiled program gives, for values it handles and for
// values it hands over to the program.
func TestDirectLookupMatchesVM(t *testing.T) {
	srcs := []string{"tier", "customer.tier", "customer['tier']", "customer.address.city"}
	envs := []map[string]any{
		nil,
		{},
		{"tier": "gold", "customer": map[string]any{"tier": "silver", "address": map[string]any{"city": "Oslo"}}},
		{"tier": true, "customer": map[string]any{"tier": false, "address": map[string]any{"city": true}}},
		{"tier": nil, "customer": map[string]any{}},
		{"customer": map[string]any{"address": nil}},
		{"customer": map[string]any(nil)},
		{"customer": map[string]string{"tier": "x"}},
		{"customer": namedMap{"tier": "named", "address": namedMap{"city": "Bergen"}}},
		{"customer": tiered{Tier: "struct"}},
		{"customer": &tiered{Tier: "ptr"}},
		{"customer": 42},
		{"customer": "str"},
		{"customer": []any{1}},
		{"customer": map[string]any{"address": map[string]any{"city": 7}}},
	}
	known := map[string]reflect.Type{"tier": nil, "customer": nil}
	for _, src := range srcs {
		for _, asBool := range []bool{false, true} {
			e := MustParse(src)
			require.NotNil(t, e.path)
			var opts []Option
			if asBool {
				opts = append(opts, AsBool())
			}
			require.NoError(t, e.Compile(known, opts...))
			prog := e.prog.Load()
			for i, env := range envs {
				t.Run(fmt.Sprintf("%s/asBool=%v/env%d", src, asBool, i), func(t *testing.T) {
					got, gotErr := e.Eval(env)
					want, wantErr := e.run(prog, env)
					assert.Equal(t, want, got)
					if wantErr == nil {
						assert.NoError(t, gotErr)
					} else {
						assert.EqualError(t, gotErr, wantErr.Error())
					}
				})
			}
		}
	}
}

func TestEvalAllocs(t *testing.T) {
	env := map[string]any{
		"tier":     "gold",
		"customer": map[string]any{"tier": "gold"},
		"total":    250,
		"items":    []any{1},
	}
	known := map[string]reflect.Type{"tier": nil, "customer": nil, "total": nil, "items": nil}
	for _, src := range []string{"tier", "customer.tier", "total > 100 && len(items) > 0"} {
		e := MustParse(src)
		require.NoError(t, e.Compile(known))
		_, _ = e.Eval(env) // warm the VM pool
		allocs := testing.AllocsPerRun(100, func() { _, _ = e.Eval(env) })
		assert.Zero(t, allocs, src)
	}
}

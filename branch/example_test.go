package branch_test

import (
	"fmt"
	"reflect"

	"github.com/svcflow/svcflow/branch"
)

func ExampleParse() {
	e, err := branch.Parse("customer.tier == 'gold' && len(items) > 0")
	if err != nil {
		panic(err)
	}
	fmt.Println(e.Idents())

	_, err = branch.Parse("len(items) >")
	fmt.Println(err)
	fmt.Println(err.(*branch.Error).Snippet())
	// Output:
	// [customer items]
	// expr "len(items) >" at 1:13: unexpected token EOF
	// len(items) >
	//             ^
}

func ExampleExpr_Eval() {
	// At construction: parse.
	key := branch.MustParse("customer.tier")
	cond := branch.MustParse("total > 100 && len(items) > 0")

	// At build: compile once against the keys the flow knows.
	known := map[string]reflect.Type{
		"customer": reflect.TypeOf(map[string]any{}),
		"total":    reflect.TypeOf(0),
		"items":    nil, // type unknown until run time
	}
	if err := key.Compile(known); err != nil {
		panic(err)
	}
	if err := cond.Compile(known, branch.AsBool()); err != nil {
		panic(err)
	}

	// Per run: evaluate against the run's context.
	run := map[string]any{
		"customer": map[string]any{"tier": "gold"},
		"total":    250,
		"items":    []any{"book"},
	}
	tier, err := key.Eval(run)
	fmt.Println(tier, err)
	ok, err := cond.EvalBool(run)
	fmt.Println(ok, err)

	// Runtime failures are errors, not panics.
	_, err = cond.EvalBool(map[string]any{"total": 500})
	fmt.Println(err)
	// Output:
	// gold <nil>
	// true <nil>
	// expr "total > 100 && len(items) > 0" at 1:16: invalid argument for len (type <nil>)
}

func ExampleExpr_Compile() {
	e := branch.MustParse("total > 100 && len(itemz) > 0")
	err := e.Compile(map[string]reflect.Type{"total": reflect.TypeOf(0), "items": nil})
	fmt.Println(err)

	e = branch.MustParse("total > 100")
	err = e.Compile(map[string]reflect.Type{"total": reflect.TypeOf("")})
	fmt.Println(err)
	// Output:
	// expr "total > 100 && len(itemz) > 0" at 1:20: unknown key "itemz"
	// expr "total > 100" at 1:7: invalid operation: > (mismatched types string and int)
}

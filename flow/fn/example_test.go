package fn_test

import (
	"context"
	"fmt"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/flow/fn"
)

type Line struct {
	SKU   string
	Qty   int
	Price float64
}

var (
	Lines = fc.Key[[]Line]("lines")
	lines = []Line{{"pen", 2, 1.5}, {"ink", 0, 4}, {"pen", 1, 1.5}, {"pad", 3, 2}}
)

// run builds a flow of one service over the lines and prints key.
func run(svc flow.Service, key string) {
	f, err := flow.New("example", svc).Input(Lines).Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := f.Run(context.Background(), map[string]any{"lines": lines})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.View()[key])
}

func ExampleMap() {
	run(fn.Map("amounts", Lines, fc.Key[[]float64]("amounts"), func(l Line) float64 { return l.Price * float64(l.Qty) }), "amounts")
	// Output: [3 0 1.5 6]
}

func ExampleFilter() {
	run(fn.Filter("in_stock", Lines, Lines, func(l Line) bool { return l.Qty > 0 }), "lines")
	// Output: [{pen 2 1.5} {pen 1 1.5} {pad 3 2}]
}

func ExampleReject() {
	run(fn.Reject("out_of_stock", Lines, fc.Key[[]Line]("missing"), func(l Line) bool { return l.Qty > 0 }), "missing")
	// Output: [{ink 0 4}]
}

func ExampleGroupBy() {
	run(fn.GroupBy("by_sku", Lines, fc.Key[map[string][]Line]("by_sku"), func(l Line) string { return l.SKU }), "by_sku")
	// Output: map[ink:[{ink 0 4}] pad:[{pad 3 2}] pen:[{pen 2 1.5} {pen 1 1.5}]]
}

func ExampleKeyBy() {
	run(fn.KeyBy("index", Lines, fc.Key[map[string]Line]("index"), func(l Line) string { return l.SKU }), "index")
	// Output: map[ink:{ink 0 4} pad:{pad 3 2} pen:{pen 1 1.5}]
}

func ExampleChunk() {
	run(fn.Chunk("pages", Lines, fc.Key[[][]Line]("pages"), 3), "pages")
	// Output: [[{pen 2 1.5} {ink 0 4} {pen 1 1.5}] [{pad 3 2}]]
}

func ExampleUniqBy() {
	run(fn.UniqBy("one_per_sku", Lines, Lines, func(l Line) string { return l.SKU }), "lines")
	// Output: [{pen 2 1.5} {ink 0 4} {pad 3 2}]
}

func ExampleFlatten() {
	pages := fc.Key[[][]Line]("pages")
	f := flow.New("example", fn.Flatten("join", pages, Lines)).Input(pages).MustBuild()
	c, _ := f.Run(context.Background(), map[string]any{"pages": [][]Line{lines[:1], lines[3:]}})
	fmt.Println(c.View()["lines"])
	// Output: [{pen 2 1.5} {pad 3 2}]
}

func ExampleSortBy() {
	run(fn.SortBy("by_price", Lines, Lines, func(l Line) float64 { return l.Price }), "lines")
	// Output: [{pen 2 1.5} {pen 1 1.5} {pad 3 2} {ink 0 4}]
}

func ExampleSortByDesc() {
	run(fn.SortByDesc("by_qty", Lines, Lines, func(l Line) int { return l.Qty }), "lines")
	// Output: [{pad 3 2} {pen 2 1.5} {pen 1 1.5} {ink 0 4}]
}

func ExampleSumBy() {
	run(fn.SumBy("total", Lines, fc.Key[float64]("total"), func(l Line) float64 { return l.Price * float64(l.Qty) }), "total")
	// Output: 10.5
}

// order is the context of the map examples.
func order() map[string]any {
	return map[string]any{
		"id":       "o-1",
		"total":    10.5,
		"customer": map[string]any{"name": "Ada", "email": "ada@example.com", "password": "secret"},
		"prefs":    map[string]any{"lang": "fr"},
	}
}

// shape runs a flow of one map service over an order and prints the
// context.
func shape(svc flow.Service) {
	f, err := flow.New("example", svc).Input(fc.Any("id"), fc.Any("total"), fc.Any("customer"), fc.Any("prefs")).Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := f.Run(context.Background(), order())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c)
}

func ExamplePick() {
	shape(fn.Pick("reply", "id", "total"))
	// Output: {"id":"o-1","total":10.5}
}

func ExampleOmit() {
	shape(fn.Omit("scrub", "password").From("customer"))
	// Output: {"customer":{"email":"ada@example.com","name":"Ada"},"id":"o-1","prefs":{"lang":"fr"},"total":10.5}
}

func ExampleRename() {
	shape(fn.Rename("names", map[string]string{"id": "order_id", "total": "amount"}))
	// Output: {"amount":10.5,"customer":{"email":"ada@example.com","name":"Ada","password":"secret"},"order_id":"o-1","prefs":{"lang":"fr"}}
}

func ExampleDefaults() {
	shape(fn.Defaults("lang", map[string]any{"lang": "en", "currency": "EUR"}).From("prefs"))
	// Output: {"customer":{"email":"ada@example.com","name":"Ada","password":"secret"},"id":"o-1","prefs":{"currency":"EUR","lang":"fr"},"total":10.5}
}

func ExampleMerge() {
	shape(fn.Merge("profile", "customer", "prefs").Into("profile"))
	// Output: {"customer":{"email":"ada@example.com","name":"Ada","password":"secret"},"id":"o-1","prefs":{"lang":"fr"},"profile":{"email":"ada@example.com","lang":"fr","name":"Ada","password":"secret"},"total":10.5}
}

func ExampleMapStep_From() {
	shape(fn.Pick("contact", "name", "email").From("customer"))
	// Output: {"customer":{"email":"ada@example.com","name":"Ada"},"id":"o-1","prefs":{"lang":"fr"},"total":10.5}
}

func ExampleMapStep_Into() {
	shape(fn.Pick("reply", "id", "total").Into("reply"))
	// Output: {"customer":{"email":"ada@example.com","name":"Ada","password":"secret"},"id":"o-1","prefs":{"lang":"fr"},"reply":{"id":"o-1","total":10.5},"total":10.5}
}

// Command quickstart is the service-flow example in Go: small services
// chained over one shared context, with a fork on a context value.
//
//	go run ./examples/quickstart                       # the embedded order
//	go run ./examples/quickstart '{"items": [...], "tier": "gold"}'
//
// It prints the run's output context as JSON, or the error and exits 1
// (exit 2 when the run was stopped on purpose, e.g. invalid input).
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// Item is one order line.
type Item struct {
	SKU   string  `json:"sku"`
	Price float64 `json:"price"`
	Qty   int     `json:"qty"`
}

// The keys of the flow's input; typed, so the build can check every step.
var (
	Items = fc.Key[[]Item]("items")
	Tier  = fc.Key[string]("tier")
)

// Validate stops the run when the order cannot be processed.
var Validate = flow.Func("validate", func(ctx context.Context, in struct{ Items []Item }) (struct{}, error) {
	if len(in.Items) == 0 {
		return struct{}{}, errors.Stop("no items")
	}
	for i, it := range in.Items {
		if it.Qty <= 0 {
			return struct{}{}, errors.Stopf("item %d (%s): quantity must be positive, got %d", i+1, it.SKU, it.Qty)
		}
	}
	return struct{}{}, nil
})

// Price computes the subtotal.
var Price = flow.Func("price", func(ctx context.Context, in struct{ Items []Item }) (struct{ Subtotal float64 }, error) {
	var sum float64
	for _, it := range in.Items {
		sum += it.Price * float64(it.Qty)
	}
	return struct{ Subtotal float64 }{sum}, nil
})

type discountOut struct {
	Rate float64 `flow:"discount_rate"`
}

// Discount returns a service granting a discount rate.
func Discount(name string, rate float64) flow.Service {
	return flow.Func(name, func(ctx context.Context, _ struct{}) (discountOut, error) {
		return discountOut{rate}, nil
	})
}

type totalIn struct {
	Subtotal float64
	Rate     float64 `flow:"discount_rate"`
}

// Total applies the discount.
var Total = flow.Func("total", func(ctx context.Context, in totalIn) (struct{ Total float64 }, error) {
	return struct{ Total float64 }{in.Subtotal * (1 - in.Rate)}, nil
})

// Order is the flow: validate >> price >> fork on tier >> total. Build
// checks, before any run, that every key a step reads is provided on every
// path: remove the default case and Build fails, since "discount_rate"
// would be missing on that path.
func Order() (*flow.Flow, error) {
	return flow.New("order",
		Validate,
		Price,
		flow.Fork("tier",
			flow.On("gold", Discount("gold_discount", 0.2)),
			flow.On("silver", Discount("silver_discount", 0.1)),
			flow.Default(Discount("no_discount", 0)),
		),
		Total,
	).Input(Items, Tier).Build()
}

const defaultOrder = `{"tier": "gold", "items": [
  {"sku": "apple", "price": 0.5, "qty": 6},
  {"sku": "bread", "price": 2.25, "qty": 2}
]}`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	input := defaultOrder
	if len(args) > 0 {
		input = args[0]
	}
	f, err := Order()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	c, err := fc.FromJSON([]byte(input))
	if err != nil {
		fmt.Fprintln(stderr, "input:", err)
		return 1
	}
	runErr := f.RunContext(context.Background(), c)
	out, _ := json.MarshalIndent(c, "", "  ")
	fmt.Fprintln(stdout, string(out))
	switch {
	case runErr == nil:
		return 0
	case errors.IsStop(runErr):
		fmt.Fprintln(stderr, "stopped:", runErr)
		return 2
	default:
		fmt.Fprintln(stderr, "error:", runErr)
		return 1
	}
}

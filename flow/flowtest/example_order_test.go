package flowtest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/flow/flowtest"
)

// The order flow under test: validate, price, a discount by tier, total,
// charge through a payment gateway, and a receipt for big orders.

type Item struct {
	SKU   string  `json:"sku"`
	Price float64 `json:"price"`
	Qty   int     `json:"qty"`
}

var (
	Items = fc.Key[[]Item]("items")
	Tier  = fc.Key[string]("tier")
)

var validate = flow.Func("validate", func(_ context.Context, in struct{ Items []Item }) (struct{}, error) {
	if len(in.Items) == 0 {
		return struct{}{}, errors.Stop("no items")
	}
	for _, it := range in.Items {
		if it.Qty <= 0 {
			return struct{}{}, errors.Stopf("item %s: quantity %d", it.SKU, it.Qty)
		}
	}
	return struct{}{}, nil
})

var price = flow.Func("price", func(_ context.Context, in struct{ Items []Item }) (struct{ Subtotal float64 }, error) {
	var sum float64
	for _, it := range in.Items {
		sum += it.Price * float64(it.Qty)
	}
	return struct{ Subtotal float64 }{sum}, nil
})

func discount(name string, rate float64) flow.Service {
	return flow.Func(name, func(context.Context, struct{}) (struct{ Discount float64 }, error) {
		return struct{ Discount float64 }{rate}, nil
	})
}

type totalIn struct{ Subtotal, Discount float64 }

var total = flow.Func("total", func(_ context.Context, in totalIn) (struct{ Total float64 }, error) {
	return struct{ Total float64 }{in.Subtotal * (1 - in.Discount)}, nil
})

// charge would call the payment gateway: tests stub it.
var charge = flow.Func("charge", func(context.Context, struct{ Total float64 }) (struct{ PaymentID string }, error) {
	return struct{ PaymentID string }{}, errors.Fatal(errors.New("no payment gateway configured"))
})

var receipt = flow.Step("receipt", func(_ context.Context, c *fc.Context) error {
	c.Set("receipt", true)
	return nil
})

func orderFlow() *flow.Builder {
	return flow.New("order",
		validate,
		price,
		flow.Fork("tier",
			flow.On("gold", discount("gold_discount", 0.2)),
			flow.Default(discount("no_discount", 0)),
		),
		total,
		charge,
		flow.When("total > 100", receipt),
	).Input(Items, Tier)
}

// TestExampleOrder shows the intended use of flowtest on a whole flow, on
// the flow up to a step, and on one service.
func TestExampleOrder(t *testing.T) {
	twoBooks := []Item{{SKU: "book", Price: 10, Qty: 2}}
	paid := func() *flowtest.Stub { return &flowtest.Stub{Set: map[string]any{"payment_id": "p-1"}} }
	unused := paid()

	flowtest.RunFlow(t, orderFlow, []flowtest.Case{{
		Name:  "gold customer gets 20% off",
		Input: map[string]any{"items": twoBooks, "tier": "gold"},
		Want:  map[string]any{"subtotal": 20, "discount": 0.2, "total": 16, "payment_id": "p-1"},
		Stubs: map[string]*flowtest.Stub{"charge": {
			Set:  map[string]any{"payment_id": "p-1"},
			Want: map[string]any{"total": 16}, // what the gateway is asked to charge
		}},
		Absent: []string{"receipt"},
	}, {
		Name: "input as decoded JSON, big order gets a receipt",
		Input: map[string]any{
			"items": []any{map[string]any{"sku": "desk", "price": 150.0, "qty": 1.0}},
			"tier":  "silver",
		},
		Want:  map[string]any{"total": 150, "receipt": true},
		Stubs: map[string]*flowtest.Stub{"charge": paid()},
	}, {
		Name:        "no items stops before charging",
		Input:       map[string]any{"items": []Item{}, "tier": "gold"},
		Err:         errors.KindStop,
		ErrContains: "no items",
		Absent:      []string{"subtotal", "payment_id"},
		Stubs:       map[string]*flowtest.Stub{"charge": unused},
		Check: func(t *testing.T, out *fc.Context, err error) {
			assert.Empty(t, unused.Calls(), "charge must not be called")
		},
	}, {
		Name:        "declined card",
		Input:       map[string]any{"items": twoBooks, "tier": "gold"},
		Stubs:       map[string]*flowtest.Stub{"charge": {Err: errors.Stop("card declined")}},
		Err:         errors.KindStop,
		ErrContains: "card declined",
		Absent:      []string{"payment_id"},
	}, {
		Name:        "gateway down asks for a retry",
		Input:       map[string]any{"items": twoBooks, "tier": "gold"},
		Stubs:       map[string]*flowtest.Stub{"charge": {Err: errors.Retry(errors.New("gateway timeout"))}},
		Err:         errors.KindRetry,
		ErrContains: "gateway timeout",
	}, {
		Name:  "the real gateway is not reached in tests",
		Input: map[string]any{"items": twoBooks, "tier": "gold"},
		Err:   errors.KindFatal,
	}}, flowtest.RetryPolicy(errors.NoRetry))

	// The flow's own steps build the context up to the total: no stub
	// needed, since charge never runs.
	flowtest.RunFlow(t, orderFlow, []flowtest.Case{{
		Name:   "gold",
		Input:  map[string]any{"items": twoBooks, "tier": "gold"},
		Want:   map[string]any{"total": 16},
		Absent: []string{"payment_id"},
	}, {
		Name:  "standard",
		Input: map[string]any{"items": twoBooks, "tier": "standard"},
		Want:  map[string]any{"total": 20, "discount": 0},
	}, {
		// pypeman's mock(input=...): the real total runs on a subtotal
		// the test chooses.
		Name:      "the real total on a mocked subtotal",
		Input:     map[string]any{"items": twoBooks, "tier": "gold"},
		MockInput: map[string]map[string]any{"total": {"subtotal": 200.0}},
		Want:      map[string]any{"total": 160},
	}}, flowtest.Through("total"))

	// One service on its own.
	flowtest.RunService(t, validate, []flowtest.Case{
		{Name: "ok", Input: map[string]any{"items": twoBooks}},
		{Name: "empty", Input: map[string]any{"items": []Item{}}, Err: errors.KindStop},
		{Name: "missing", Input: map[string]any{}, Err: errors.KindFailed, ErrContains: `"items"`},
		{Name: "zero quantity", Input: map[string]any{"items": []Item{{SKU: "pen"}}},
			Err: errors.KindStop, ErrContains: "item pen: quantity 0"},
	})
}

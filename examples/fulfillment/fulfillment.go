// Package fulfillment is an order-processing flow written in Go with the
// flow combinators: Fork on the shipping method, All to price and check
// stock side by side, Each over the order lines, and a Saga that releases
// reserved stock and refunds the payment when a later step fails (a
// declined card must release the reserved stock).
//
// The services talk to a Warehouse and a Gateway; tests give them
// in-memory implementations, and stub steps with flowtest.
package fulfillment

import (
	"context"
	"fmt"
	"sync"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// Line is one order line.
type Line struct {
	SKU   string  `json:"sku"`
	Qty   int     `json:"qty"`
	Price float64 `json:"price"`
}

// The flow's input keys.
var (
	Lines    = fc.Key[[]Line]("lines")
	Shipping = fc.Key[string]("shipping")
	OrderID  = fc.Key[string]("order_id")
)

// Warehouse holds stock.
type Warehouse struct {
	mu    sync.Mutex
	Stock map[string]int
	held  map[string]map[string]int // order -> sku -> qty
}

// Reserve holds qty of each line for an order, all or nothing.
func (w *Warehouse) Reserve(order string, lines []Line) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range lines {
		if w.Stock[l.SKU] < l.Qty {
			return errors.Stopf("out of stock: %s (want %d, have %d)", l.SKU, l.Qty, w.Stock[l.SKU])
		}
	}
	if w.held == nil {
		w.held = map[string]map[string]int{}
	}
	w.held[order] = map[string]int{}
	for _, l := range lines {
		w.Stock[l.SKU] -= l.Qty
		w.held[order][l.SKU] += l.Qty
	}
	return nil
}

// Release returns an order's held stock.
func (w *Warehouse) Release(order string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for sku, n := range w.held[order] {
		w.Stock[sku] += n
	}
	delete(w.held, order)
}

// Gateway takes payments.
type Gateway interface {
	Charge(ctx context.Context, order string, amount float64) (paymentID string, err error)
	Refund(ctx context.Context, paymentID string) error
}

// New returns the fulfillment flow builder.
func New(w *Warehouse, g Gateway) *flow.Builder {
	lineTotal := flow.Func("line_total", func(ctx context.Context, in struct{ Item Line }) (struct{ LineTotal float64 }, error) {
		if in.Item.Qty <= 0 {
			return struct{ LineTotal float64 }{}, errors.Stopf("%s: quantity must be positive", in.Item.SKU)
		}
		return struct{ LineTotal float64 }{in.Item.Price * float64(in.Item.Qty)}, nil
	})
	subtotal := flow.Func("subtotal", func(ctx context.Context, in struct{ LineTotals []float64 }) (struct{ Subtotal float64 }, error) {
		var s float64
		for _, t := range in.LineTotals {
			s += t
		}
		return struct{ Subtotal float64 }{s}, nil
	})
	weight := flow.Func("weight", func(ctx context.Context, in struct{ Lines []Line }) (struct{ Parcels int }, error) {
		n := 0
		for _, l := range in.Lines {
			n += l.Qty
		}
		return struct{ Parcels int }{(n + 9) / 10}, nil
	})
	shipping := func(name string, base float64) flow.Service {
		return flow.Func(name, func(ctx context.Context, in struct{ Parcels int }) (struct{ ShippingCost float64 }, error) {
			return struct{ ShippingCost float64 }{base * float64(in.Parcels)}, nil
		})
	}
	total := flow.Func("total", func(ctx context.Context, in struct {
		Subtotal     float64
		ShippingCost float64
	}) (struct{ Total float64 }, error) {
		return struct{ Total float64 }{in.Subtotal + in.ShippingCost}, nil
	})

	reserve := flow.Compensate(
		flow.Func("reserve", func(ctx context.Context, in struct {
			OrderID string
			Lines   []Line
		}) (struct{ Reserved bool }, error) {
			return struct{ Reserved bool }{true}, w.Reserve(in.OrderID, in.Lines)
		}),
		func(ctx context.Context, c *fc.Context, cause error) error {
			id, err := OrderID.Get(c)
			if err != nil {
				return err
			}
			w.Release(id)
			return nil
		})
	charge := flow.Compensate(
		flow.Func("charge", func(ctx context.Context, in struct {
			OrderID string
			Total   float64
		}) (struct{ PaymentID string }, error) {
			id, err := g.Charge(ctx, in.OrderID, in.Total)
			return struct{ PaymentID string }{id}, err
		}),
		func(ctx context.Context, c *fc.Context, cause error) error {
			id, ok, err := fc.Key[string]("payment_id").Lookup(c)
			if err != nil || !ok {
				return err
			}
			return g.Refund(ctx, id)
		})
	ship := flow.Func("ship", func(ctx context.Context, in struct {
		OrderID  string
		Shipping string
	}) (struct{ Label string }, error) {
		return struct{ Label string }{fmt.Sprintf("%s/%s", in.Shipping, in.OrderID)}, nil
	})

	return flow.New("fulfillment",
		flow.All(
			flow.Then(
				flow.Each("lines", lineTotal).As("item").Collect("line_total", "line_totals").Concurrency(4),
				subtotal,
			),
			flow.Then(
				weight,
				flow.Fork("shipping",
					flow.On("express", shipping("express", 12)),
					flow.Default(shipping("standard", 4)),
				),
			),
		),
		total,
		flow.Saga(reserve, charge, ship),
	).Input(OrderID, Lines, Shipping)
}

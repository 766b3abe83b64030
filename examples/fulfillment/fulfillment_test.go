package fulfillment_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/examples/fulfillment"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/flow/flowtest"
)

// gateway is an in-memory payment gateway.
type gateway struct {
	mu       sync.Mutex
	decline  bool
	charged  map[string]float64
	refunded []string
}

func (g *gateway) Charge(ctx context.Context, order string, amount float64) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.decline {
		return "", errors.Stop("card declined")
	}
	if g.charged == nil {
		g.charged = map[string]float64{}
	}
	id := "pay-" + order
	g.charged[id] = amount
	return id, nil
}

func (g *gateway) Refund(ctx context.Context, id string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.refunded = append(g.refunded, id)
	return nil
}

var lines = []fulfillment.Line{{SKU: "apple", Qty: 12, Price: 0.5}, {SKU: "pear", Qty: 3, Price: 1}}

func input(shipping string, l []fulfillment.Line) map[string]any {
	return map[string]any{"order_id": "o1", "shipping": shipping, "lines": l}
}

func TestFulfillment(t *testing.T) {
	var w *fulfillment.Warehouse
	g := &gateway{}
	newFlow := func() *flow.Builder {
		w = &fulfillment.Warehouse{Stock: map[string]int{"apple": 20, "pear": 5}}
		return fulfillment.New(w, g)
	}
	flowtest.RunFlow(t, newFlow, []flowtest.Case{{
		Name:  "standard shipping",
		Input: input("standard", lines),
		Want:  map[string]any{"subtotal": 9, "parcels": 2, "shipping_cost": 8, "total": 17, "payment_id": "pay-o1", "label": "standard/o1"},
	}, {
		Name:  "express shipping",
		Input: input("express", lines),
		Want:  map[string]any{"shipping_cost": 24, "total": 33},
	}, {
		Name:        "bad line stops before anything is reserved",
		Input:       input("standard", []fulfillment.Line{{SKU: "apple", Qty: 0}}),
		Err:         errors.KindStop,
		ErrContains: "apple: quantity must be positive",
		Absent:      []string{"reserved", "payment_id"},
	}, {
		Name:        "out of stock",
		Input:       input("standard", []fulfillment.Line{{SKU: "pear", Qty: 50, Price: 1}}),
		Err:         errors.KindStop,
		ErrContains: "out of stock: pear",
	}, {
		Name:   "declined card releases the reserved stock",
		Input:  input("standard", lines),
		Stubs:  map[string]*flowtest.Stub{"charge": {Err: errors.Stop("card declined")}},
		Err:    errors.KindStop,
		Absent: []string{"label"},
		Check: func(t *testing.T, _ *fc.Context, _ error) {
			assert.Equal(t, map[string]int{"apple": 20, "pear": 5}, w.Stock, "the saga released the reservation")
		},
	}})
}

func TestDeclinedCardReleasesStockAndShipFailureRefunds(t *testing.T) {
	w := &fulfillment.Warehouse{Stock: map[string]int{"apple": 20, "pear": 5}}
	g := &gateway{decline: true}
	f := fulfillment.New(w, g).MustBuild()
	_, err := f.Run(t.Context(), input("standard", lines))
	require.Error(t, err)
	assert.True(t, errors.IsStop(err))
	assert.Equal(t, map[string]int{"apple": 20, "pear": 5}, w.Stock, "reserved stock released")

	// A failure after the charge refunds it and releases the stock.
	g.decline = false
	f = fulfillment.New(w, g).Replace("ship", flow.Step("ship", func(ctx context.Context, c *fc.Context) error {
		return errors.New("carrier down")
	})).MustBuild()
	_, err = f.Run(t.Context(), input("standard", lines))
	require.ErrorContains(t, err, "carrier down")
	assert.Equal(t, []string{"pay-o1"}, g.refunded)
	assert.Equal(t, map[string]int{"apple": 20, "pear": 5}, w.Stock)
}

func ExampleNew() {
	w := &fulfillment.Warehouse{Stock: map[string]int{"apple": 20, "pear": 5}}
	f := fulfillment.New(w, &gateway{}).MustBuild()
	c, err := f.Run(context.Background(), input("express", lines))
	fmt.Println(c.View()["total"], c.View()["label"], err)
	fmt.Println(w.Stock)
	// Output:
	// 33 express/o1 <nil>
	// map[apple:8 pear:2]
}

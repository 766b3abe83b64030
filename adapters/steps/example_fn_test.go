package steps_test

import (
	"context"
	"fmt"

	"github.com/svcflow/svcflow/adapters/config"
)

// The function toolkit in YAML: element expressions over `#`.
func ExampleToolkit() {
	cfg, err := config.LoadSources([]config.Source{{Name: "orders.yaml", Data: []byte(`
flows:
  orders:
    input: [items]
    steps:
      - filter: {from: items, where: "#.qty > 0"}
      - group_by: {from: items, by: "#.sku", into: by_sku}
      - sum_by: {from: items, by: "#.price * #.qty", into: total}
      - map: {from: items, as: item, to: "item.sku", into: skus}
      - uniq_by: {from: skus, by: "#"}
      - pick: [by_sku, total, skus]
`)}})
	if err != nil {
		fmt.Println(err)
		return
	}
	f, _ := cfg.Flow("orders")
	out, err := f.Run(context.Background(), map[string]any{"items": []any{
		map[string]any{"sku": "pen", "qty": 2, "price": 1.5},
		map[string]any{"sku": "ink", "qty": 0, "price": 4},
		map[string]any{"sku": "pen", "qty": 1, "price": 1.5},
	}})
	fmt.Println(out, err)
	// Output: {"by_sku":{"pen":[{"price":1.5,"qty":2,"sku":"pen"},{"price":1.5,"qty":1,"sku":"pen"}]},"skus":["pen"],"total":4.5} <nil>
}

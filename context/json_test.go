package context_test

import (
	"fmt"

	fc "github.com/svcflow/svcflow/context"
)

func ExampleAppendJSON() {
	c := fc.New()
	c.Set("total", 8.5)
	c.Set("items", []any{map[string]any{"sku": "apple", "qty": 2}})
	buf := make([]byte, 0, 256) // reusable: AppendJSON allocates nothing for these values
	buf, err := fc.AppendJSON(buf, c.View())
	if err != nil {
		panic(err)
	}
	fmt.Println(string(buf))
	// Output: {"items":[{"qty":2,"sku":"apple"}],"total":8.5}
}

func ExampleContext_Track() {
	c := fc.New()
	c.Set("input", 1)
	rec := c.Track()
	c.Set("subtotal", 10)
	c.Set("total", 12)
	fmt.Println(rec.Stop(nil))
	// Output: [subtotal total]
}

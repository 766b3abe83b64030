package cache_test

import (
	"context"
	"fmt"
	"time"

	"github.com/svcflow/svcflow/adapters/cache"
)

func ExampleRemember() {
	c := cache.NewMemory(cache.Options{TTL: 10 * time.Minute})
	defer c.Close()
	lookups := 0
	tenant := func(ctx context.Context) (string, error) { lookups++; return "t-acme", nil }
	for range 3 {
		t, err := cache.Remember(context.Background(), c, "tenant:acme", 0, tenant)
		fmt.Println(t, err)
	}
	fmt.Println("lookups:", lookups)
	// Output:
	// t-acme <nil>
	// t-acme <nil>
	// t-acme <nil>
	// lookups: 1
}

func ExampleOpenSQLite() {
	c, err := cache.OpenSQLite(":memory:", cache.Options{TTL: time.Hour})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	ctx := context.Background()
	_ = c.Put(ctx, "seats", map[string]int{"acme": 3}, 0)
	var seats map[string]int
	found, err := c.Get(ctx, "seats", &seats)
	fmt.Println(found, seats["acme"], err)
	// Output: true 3 <nil>
}

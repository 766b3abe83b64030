package serve_test

import (
	"fmt"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/serve"
)

// ExampleDiff classifies the changes between the configuration a server
// runs and a new one: adding a channel and changing a setting are safe,
// removing a channel is destructive.
func ExampleDiff() {
	running := `version: 1
flows:
  orders: {steps: [{set: {total: "1"}}]}
channels:
  intake: {from: {http: /orders}, flow: orders, max_in_flight: 100}
  legacy: {from: {http: /legacy}, flow: orders}
`
	next := `version: 1
flows:
  orders: {steps: [{set: {total: "1"}}]}
channels:
  intake: {from: {http: /orders}, flow: orders, max_in_flight: 200}   # more at once
  refunds: {from: {http: /refunds}, flow: orders}
`
	a, _ := config.Normalize([]config.Source{{Name: "shop.yaml", Data: []byte(running)}})
	b, _ := config.Normalize([]config.Source{{Name: "shop.yaml", Data: []byte(next)}})
	for _, c := range serve.Diff(a, b) {
		fmt.Println(c)
	}
	// Output:
	// safe: change channel intake: max_in_flight: 100 -> 200
	// destructive: remove channel legacy: its sources stop taking messages (its routes are removed); messages in flight finish
	// safe: add channel refunds
}

// ExampleNewPlan makes the plan `flowrun plan` writes: the changes from
// the configuration a server runs (as GET /config answers it) to new
// files, against its fingerprint. Server.Apply (POST /apply) applies it.
func ExampleNewPlan() {
	old := serve.Files{Files: []serve.File{{Name: "/srv/shop.yaml", Content: "version: 1\nvars: {limit: 10}\nflows: {f: {steps: [{set: {x: limit}}]}}\n"}}}
	n, _ := config.Normalize(old.Sources())
	running := serve.RunningConfig{Fingerprint: n.Fingerprint(), Sections: n.Sections, Config: old}

	next := serve.Files{Files: []serve.File{{Name: "/srv/shop.yaml", Content: "version: 1\nvars: {limit: 20}\nflows: {f: {steps: [{set: {x: limit}}]}}\n"}}}
	p, err := serve.NewPlan(running, next)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Base == running.Fingerprint, len(p.Destructive()))
	fmt.Println(p.Changes[0])
	// Output:
	// true 0
	// safe: change var limit: value: 10 -> 20
}

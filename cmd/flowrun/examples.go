package main

import "embed"

// examples are copies of the YAML of examples/orders, examples/batch and
// examples/enrich, embedded so that `flowrun run --example orders` works
// anywhere; the command imports nothing from examples/. `go generate`
// refreshes the copies and TestEmbeddedExamplesMatch keeps them equal.
//
//go:generate cp ../../examples/orders/orders.yaml ../../examples/batch/batch.yaml ../../examples/enrich/enrich.yaml examples/
//go:embed examples/*.yaml
var examples embed.FS

// example returns the embedded YAML of the named example.
func example(name string) []byte {
	data, err := examples.ReadFile("examples/" + name + ".yaml")
	if err != nil {
		panic(err) // the names are fixed in main
	}
	return data
}

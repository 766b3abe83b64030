// Command myflowrun is flowrun with this example's Go services (use:
// geocode) and the shipped sources and stores (component/all).
//
//	go run ./examples/myflowrun test examples/myflowrun/shipping.yaml
package main

import (
	"os"

	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/cmd/flowrun/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], Options()...)) }

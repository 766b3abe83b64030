// Command myflowrun is flowrun built with this example's Go services:
// YAML flows use them by name (use: geocode), and their typed contracts
// take part in validate's build checks.
//
//	go run ./examples/myflowrun test examples/myflowrun/shipping.yaml
package main

import (
	"os"

	"github.com/svcflow/svcflow/cmd/flowrun/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], Options()...)) }

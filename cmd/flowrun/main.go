// Command flowrun runs, validates, draws and tests flows declared in YAML.
// Run "flowrun -h" for the commands; the logic is the importable package
// github.com/svcflow/svcflow/cmd/flowrun/cli, so a program can be its own
// flowrun with its own Go services (see examples/myflowrun).
package main

import (
	"os"

	_ "github.com/svcflow/svcflow/adapters/component/all" // the shipped sources and stores
	"github.com/svcflow/svcflow/cmd/flowrun/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:],
		cli.WithExample("orders", example("orders")), // the default of "flowrun run"
		cli.WithExample("batch", example("batch")),
		cli.WithExample("enrich", example("enrich"))))
}

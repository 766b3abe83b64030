// Command crashrun is flowrun with one more service, crash, that exits the
// process (status 3) when the context has poison: true, as a service with
// a fatal bug would. The end-to-end tests of hostile input run it.
package main

import (
	"context"
	"os"

	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/cmd/flowrun/cli"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

var crash = flow.Step("crash", func(_ context.Context, c *fc.Context) error {
	if c.View()["poison"] == true {
		os.Exit(3)
	}
	return nil
})

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.WithService(crash, "exit the process when the context has poison: true")))
}

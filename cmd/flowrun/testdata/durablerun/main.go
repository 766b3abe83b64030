// Command durablerun is flowrun with one more configurable service,
// record, for the end-to-end tests of durable runs. Each call appends a
// line to the file named by SVCFLOW_RECORD: the step's name and, inside
// an Each, the element. With `with: {kill: true}` the step first kills
// its own process with SIGKILL (no deferred code, no flush) when the
// file named by SVCFLOW_MARKER is absent, creating it first: the step
// dies on its first run only. With `with: {kill_item: N}` only the
// element N of an Each does. With `with: {fail: true}` the step records
// "NAME_failed" and fails.
package main

import (
	"context"
	"fmt"
	"os"
	"syscall"

	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/cmd/flowrun/cli"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

type recordArgs struct {
	Kill     bool     `json:"kill"`
	KillItem *float64 `json:"kill_item"`
	Fail     bool     `json:"fail"`
}

func record(name string, args config.Args) (flow.Service, error) {
	var a recordArgs
	if err := args.Decode(&a); err != nil {
		return nil, err
	}
	return flow.Step(name, func(_ context.Context, c *fc.Context) error {
		item, inEach := c.Get("item")
		line := name
		if inEach {
			line += fmt.Sprintf(" %v", item)
		}
		kill := a.Kill || (a.KillItem != nil && inEach && item == *a.KillItem)
		if kill {
			if _, err := os.Stat(os.Getenv("SVCFLOW_MARKER")); os.IsNotExist(err) {
				if err := os.WriteFile(os.Getenv("SVCFLOW_MARKER"), nil, 0o644); err != nil {
					return err
				}
				appendLine(line + " killed")
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
		}
		if a.Fail {
			appendLine(line + " failed")
			return fmt.Errorf("%s failed", name)
		}
		appendLine(line)
		c.Set(name, true)
		return nil
	}), nil
}

func appendLine(s string) {
	f, err := os.OpenFile(os.Getenv("SVCFLOW_RECORD"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s + "\n"); err != nil {
		panic(err)
	}
}

func main() {
	os.Exit(cli.Main(os.Args[1:], cli.WithFactory("record", "append the step's name to $SVCFLOW_RECORD; kill: true kills the process once", record)))
}

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/svcflow/svcflow/adapters/bus"
	"github.com/svcflow/svcflow/adapters/component"
)

func init() {
	register(&Command{
		Name:    "bus",
		Summary: "send a message to a service of the services: section (a bus) and print its reply",
		Usage:   "flowrun bus send DEST ACTION [FILE...] [--input JSON|@FILE|-] [--submit] [--timeout 30s] [--data DIR]",
		Help: `Starts the services declared under services: in the files (without
their sources), sends the input to the action of the destination service
and prints the action's output context as JSON (a request), then stops the
services, which first run what their mailboxes hold (messages the action
submitted on included). DEST * broadcasts to every service that has the
action (with --submit only). --submit sends without waiting for a reply.
A Stop in the action exits 3 with its reason; any other error exits 1.
Services with a durable store recover their owed messages when they start:
stop flowrun serve first when it uses the same SQLite files. When the
files declare a bus transport (bus: transport:), no service starts here:
the message goes through the transport to the flowrun serve processes
that run the services, and the reply comes back from there.`,
		Example: `flowrun bus send emailhandler SendEmail --input '{"to": "ops@example.com", "subject": "hi"}' examples/microservicebus/microservicebus.yaml
flowrun bus send com Process --input '{"ts": "now", "temperature": 35}' --submit examples/microservicebus/microservicebus.yaml`,
		Run: busCmd,
	})
}

func busCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["bus"]
	fs := e.FlagSet(c)
	var lf LoadFlags
	lf.Register(fs)
	input := fs.String("input", "", "the message: a JSON object, @FILE, or - for standard input (default: {})")
	submit := fs.Bool("submit", false, "send without waiting for a reply (fire and forget)")
	timeout := fs.Duration("timeout", bus.DefaultRequestTimeout, "how long to wait for the reply")
	data := fs.String("data", "data", "folder of the default stores")
	pos, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) < 3 || pos[0] != "send" {
		return e.usageError(c, "expected: send DEST ACTION [FILE...]")
	}
	dest, action, files := pos[1], pos[2], pos[3:]
	if dest == bus.Broadcast && !*submit {
		return e.usageError(c, "a request has one destination: use --submit to broadcast to %q", dest)
	}
	lf.DataDir = *data
	cfg, code, ok := e.Load(c, files, &lf)
	if !ok {
		return code
	}
	if len(cfg.Services()) == 0 {
		fmt.Fprintf(e.Stderr, "flowrun bus: the configuration declares no services (add a services: section)\n")
		return ExitFailure
	}
	defer func() {
		// the configuration's providers: closed after the services that use them
		if err := cfg.Providers().Close(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(e.Stderr, "flowrun bus: closing providers: %v\n", err)
		}
	}()
	msg, code, ok := e.readInput(c, cfg, "", *input)
	if !ok {
		return code
	}
	logger := slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	built, err := bus.FromConfig(cfg, bus.ConfigOptions{
		Options: bus.Options{Logger: logger, RequestTimeout: *timeout},
		Env:     component.Env{Logger: logger, DataDir: *data},
		Open:    true, NoSources: true, ClientOnly: true,
	})
	if err != nil {
		printLoadError(e.Stderr, err)
		return ExitFailure
	}
	defer built.Close()
	b := built.Bus
	if err := b.Start(ctx); err != nil {
		fmt.Fprintf(e.Stderr, "flowrun bus: %v\n", err)
		return ExitFailure
	}
	var out map[string]any
	if *submit {
		err = b.Submit(ctx, dest, action, msg)
	} else {
		out, err = b.Request(ctx, dest, action, msg)
	}
	// Let what the message set off run (a service submitting on to
	// another) before stopping, within the timeout.
	deadline := time.Now().Add(*timeout)
	for !b.Idle() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if serr := b.Stop(stopCtx); serr != nil {
		fmt.Fprintf(e.Stderr, "flowrun bus: stop: %v\n", serr)
	}
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun bus: %v\n", err)
		return exitCode(err)
	}
	if *submit {
		fmt.Fprintf(e.Stdout, "submitted to %s %s\n", dest, action)
		return ExitOK
	}
	text, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun bus: encoding the reply: %v\n", err)
		return ExitFailure
	}
	fmt.Fprintln(e.Stdout, string(text))
	return ExitOK
}

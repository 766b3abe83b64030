package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/svcflow/svcflow/adapters/config"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func init() {
	register(&Command{
		Name:    "run",
		Summary: "run a flow on one input, or on every record of a JSONL file",
		Usage:   "flowrun run [FILE...] [--flow NAME] [--input JSON|@FILE|-] [--trace[=json]] [--jsonl IN --out OUT --workers N] [--log text|json] [--log-level LEVEL]",
		Help: `Runs a flow of the YAML files (the first declared, unless --flow names
another) and prints the output context as JSON. Without --input the run
uses the flow's sample input (sample: in the YAML), else an empty one.
Without FILE it runs an embedded example (see --example).

With --jsonl, runs the flow once per line of the input file (a JSON object
each) on --workers goroutines and writes one line per record to --out, in
input order: the output context, or {"record": N, "kind": ..., "error": ...,
"input": ...} for a record that failed, so nothing is lost and the batch
never aborts. Progress goes to standard error: a bar on a terminal, a line
per 10% otherwise; a summary ends it. The exit code is 1 when any record
failed, else 3 when any stopped.`,
		Example: `flowrun run --example orders
flowrun run examples/orders/orders.yaml --input '{"id": "A-1", "customer": {"tier": "gold"}, "items": [{"sku": "tea", "price": 4, "qty": 2}]}'
flowrun run orders.yaml --flow fulfil --input @order.json --trace
echo '{"items": []}' | flowrun run orders.yaml --input -
flowrun run examples/batch/batch.yaml --jsonl examples/batch/orders.jsonl --out priced.jsonl --workers 4`,
		Run: runCmd,
	})
}

// traceFlag is --trace (text) or --trace=json.
type traceFlag string

func (t *traceFlag) String() string { return string(*t) }
func (t *traceFlag) Set(s string) error {
	switch s {
	case "true", "text":
		*t = "text"
	case "json":
		*t = "json"
	case "false":
		*t = ""
	default:
		return fmt.Errorf("expected --trace or --trace=json")
	}
	return nil
}
func (t *traceFlag) IsBoolFlag() bool { return true }

func runCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["run"]
	fs := e.FlagSet(c)
	var lf LoadFlags
	lf.Register(fs)
	flowName := fs.String("flow", "", "the flow to run (default: the first declared)")
	input := fs.String("input", "", "the input: a JSON object, @FILE, or - for standard input (default: the flow's sample)")
	var trace traceFlag
	fs.Var(&trace, "trace", "print the run's trace to standard error (--trace=json for JSON)")
	timeout := fs.Duration("timeout", 0, "cancel the run after this long (0: no limit)")
	jsonl := fs.String("jsonl", "", "batch mode: run every line of this JSONL `FILE` (- for standard input)")
	out := fs.String("out", "-", "batch mode: write results to this `FILE` (- for standard output)")
	workers := fs.Int("workers", 0, "batch mode: records run at once (default: the number of CPUs)")
	progress := fs.String("progress", "auto", "batch mode: progress on standard error: auto, bar, lines or none")
	logFlags := registerLogFlags(fs)
	files, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	if _, code, ok := logFlags.setup(e, c); !ok {
		return code
	}
	if *jsonl != "" && *input != "" {
		return e.usageError(c, "give --input or --jsonl, not both")
	}
	if *jsonl == "" {
		var batch []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "out" || f.Name == "workers" || f.Name == "progress" {
				batch = append(batch, "--"+f.Name)
			}
		})
		if len(batch) > 0 {
			return e.usageError(c, "%s: batch flags need --jsonl FILE (a single run prints its output to standard output)", strings.Join(batch, ", "))
		}
	}
	stdinUses := 0
	for _, use := range []bool{slices.Contains(files, "-"), *input == "-", *jsonl == "-"} {
		if use {
			stdinUses++
		}
	}
	if stdinUses > 1 {
		return e.usageError(c, "standard input (-) can be read once: as the file, --input or --jsonl")
	}
	if *jsonl != "" && trace != "" {
		return e.usageError(c, "--trace applies to single runs, not --jsonl batches")
	}
	if !slices.Contains([]string{"auto", "bar", "lines", "none"}, *progress) {
		return e.usageError(c, "--progress: expected auto, bar, lines or none")
	}
	cfg, code, ok := e.Load(c, files, &lf)
	if !ok {
		return code
	}
	name, code, ok := e.pickFlow(c, cfg, *flowName)
	if !ok {
		return code
	}
	f, _ := cfg.Flow(name)
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	if err := f.Init(ctx); err != nil {
		fmt.Fprintf(e.Stderr, "flowrun run: %v\n", err)
		return ExitFailure
	}
	defer func() {
		if err := f.Close(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(e.Stderr, "flowrun run: closing: %v\n", err)
		}
		if err := cfg.Providers().Close(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(e.Stderr, "flowrun run: closing providers: %v\n", err)
		}
	}()
	if *jsonl != "" {
		return e.runBatch(ctx, c, f, *jsonl, *out, *workers, *progress)
	}
	in, code, ok := e.readInput(c, cfg, name, *input)
	if !ok {
		return code
	}
	var tr flow.Trace
	var opts []flow.RunOption
	if trace != "" {
		opts = append(opts, flow.WithTrace(&tr))
	}
	ctxData := fc.FromMap(in)
	err := f.RunContext(ctx, ctxData, opts...)
	data, merr := json.MarshalIndent(ctxData, "", "  ")
	if merr != nil {
		fmt.Fprintf(e.Stderr, "flowrun run: encoding the output: %v\n", merr)
		return ExitFailure
	}
	fmt.Fprintln(e.Stdout, string(data))
	switch trace {
	case "text":
		printTrace(e.Stderr, &tr)
	case "json":
		b, _ := json.MarshalIndent(&tr, "", "  ")
		fmt.Fprintln(e.Stderr, string(b))
	}
	if err != nil {
		kind := errors.KindOf(err)
		label := "error"
		switch kind {
		case errors.KindStop:
			label = "stopped"
		case errors.KindDropped:
			label = "dropped"
		}
		fmt.Fprintf(e.Stderr, "%s (%s): %v\n", label, kind, err)
	}
	return exitCode(err)
}

// pickFlow returns the flow named by --flow, or the first declared.
func (e *Env) pickFlow(c *Command, cfg *config.Config, name string) (string, int, bool) {
	flows := cfg.Flows()
	if name == "" {
		if len(flows) == 0 {
			fmt.Fprintf(e.Stderr, "flowrun %s: the configuration declares no flows\n", c.Name)
			return "", ExitFailure, false
		}
		return flows[0], 0, true
	}
	if _, ok := cfg.Flow(name); !ok {
		return "", e.usageError(c, "no flow %q (flows: %s)", name, strings.Join(flows, ", ")), false
	}
	return name, 0, true
}

// readInput decodes --input: JSON text, @FILE or - (standard input).
func (e *Env) readInput(c *Command, cfg *config.Config, flowName, arg string) (map[string]any, int, bool) {
	var data []byte
	src := "--input"
	switch {
	case arg == "":
		if s, ok := cfg.Sample(flowName); ok {
			return s, 0, true
		}
		return map[string]any{}, 0, true
	case arg == "-":
		b, err := io.ReadAll(e.Stdin)
		if err != nil {
			fmt.Fprintf(e.Stderr, "flowrun %s: reading standard input: %v\n", c.Name, err)
			return nil, ExitFailure, false
		}
		data, src = b, "standard input"
	case strings.HasPrefix(arg, "@"):
		b, err := os.ReadFile(arg[1:])
		if err != nil {
			return nil, e.usageError(c, "--input: %v", err), false
		}
		data, src = b, arg[1:]
	default:
		data = []byte(arg)
	}
	ctx, err := fc.FromJSON(data)
	if err != nil {
		return nil, e.usageError(c, "%s: expected a JSON object: %v", src, err), false
	}
	return ctx.Map(), 0, true
}

// printTrace writes a trace as a table: outcome, duration, step path,
// attempts, keys written and error.
func printTrace(w io.Writer, tr *flow.Trace) {
	fmt.Fprintf(w, "trace: flow %q %s in %s\n", tr.Flow, tr.Outcome, round(tr.Duration))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range tr.Steps {
		d := ""
		if s.Outcome != errors.KindSkipped {
			d = round(s.Duration).String()
		}
		note := ""
		if len(s.Wrote) > 0 {
			note = "wrote " + strings.Join(s.Wrote, ", ")
		}
		if s.Attempts > 1 {
			note = strings.TrimSpace(fmt.Sprintf("%d attempts  %s", s.Attempts, note))
		}
		if s.Err != "" {
			note = strings.TrimSpace(note + "  error: " + s.Err)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", s.Outcome, d, s.Path, note)
	}
	tw.Flush()
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(time.Microsecond)
	}
	return d
}

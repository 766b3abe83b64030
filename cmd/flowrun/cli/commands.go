package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/svcflow/svcflow/adapters/bus"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/production"
	"github.com/svcflow/svcflow/adapters/serve"
	fc "github.com/svcflow/svcflow/context"
)

func init() {
	register(&Command{
		Name:    "validate",
		Summary: "check YAML files and list every problem with file:line:col",
		Usage:   "flowrun validate FILE...|- [--data DIR] [--set path=value] [--allow-shell]",
		Help: `Loads the files as one configuration and checks everything a run would:
the format (unknown keys, wrong types, bad durations), expressions and
templates, references to flows and services, and the build checks of
every flow (each key a step needs is provided on every path before it).
Channels are built exactly as serve builds them (sources, stores, flows)
and nothing is started, opened or created. Every problem is listed, not
just the first, as file:line:col: message. FILE - reads standard input
(named stdin in positions).`,
		Example: `flowrun validate examples/orders/orders.yaml
flowrun validate flows/*.yaml`,
		Run: validateCmd,
	})
	register(&Command{
		Name:    "graph",
		Summary: "draw a flow as Graphviz DOT or Mermaid",
		Usage:   "flowrun graph FILE...|- [--flow NAME] [--format dot|mermaid]",
		Help: `Prints the structure of a flow (the first declared, unless --flow names
another). FILE - reads standard input.`,
		Example: `flowrun graph examples/orders/orders.yaml | dot -Tsvg > orders.svg
flowrun graph examples/orders/orders.yaml --flow fulfil --format mermaid`,
		Run: graphCmd,
	})
	register(&Command{
		Name:    "services",
		Summary: "list the services and components YAML can use, with their specs",
		Usage:   "flowrun services [--allow-shell]",
		Help: `Lists the built-in step kinds and the Go services this flowrun was built
with (use: NAME), with what each reads and writes, then every component
(sources, stores, ...) with the fields of its spec: type, required or
default, and what it is for.`,
		Example: `flowrun services`,
		Run:     servicesCmd,
	})
	register(&Command{
		Name:    "schema",
		Summary: "print the JSON Schema of the YAML format, for editors",
		Usage:   "flowrun schema",
		Help: `Prints a JSON Schema (draft 2020-12) of a whole configuration file:
flows with every step kind, channels with the sources and stores this
flowrun was built with, and tests. Editors use it to complete and check
YAML as you type (yaml-language-server: # yaml-language-server: $schema=...).`,
		Example: `flowrun schema > svcflow.schema.json`,
		Run:     schemaCmd,
	})
	register(&Command{
		Name:    "test",
		Summary: "run the test cases declared in YAML files",
		Usage:   "flowrun test FILE...|- [--run PATTERN] [-v] [--allow-empty] [--set path=value]",
		Help: `Runs the cases of the tests: sections. Each case runs its flow on its
input, with stubs replacing named steps, and checks the expected outcome
(error: stop|retry|retry-exhausted|fatal|failed|panic|canceled|any; retry
also matches a run whose retries ran out) or the expected subset of the
output (want:; numbers that are not integers match within a relative
1e-9). Prints a line per case, like go test -v, named FLOW/CASE as
written in the YAML, the failures with their file:line:col, and a final
"N passed, N failed". Running no case at all (no tests: section, or a
--run that matches nothing) is a failure unless --allow-empty.

--run selects cases as go test -run does, by regular expressions that
match anywhere in a name: "gold" runs the cases whose flow or case name
contains gold; "orders/gold" the cases of flow orders whose name contains
gold; "^orders$/^wrong value$" exactly one. Spaces in case names are kept
(an underscore matches a space too). FILE - reads standard input.`,
		Example: `flowrun test examples/orders/orders.yaml
flowrun test flows/*.yaml --run 'orders/gold'
flowrun test examples/orders/orders.yaml --run 'orders/^empty order$' -v`,
		Run: testCmd,
	})
}

func validateCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["validate"]
	fs := e.FlagSet(c)
	var lf LoadFlags
	lf.Register(fs)
	fs.String("data", "", dataUsage+"; nothing is created")
	files, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	if len(files) == 0 && lf.Example == "" {
		return e.usageError(c, "no file given")
	}
	cfg, code, ok := e.Load(c, files, &lf)
	if !ok {
		return code
	}
	channels, services, components := len(cfg.Channels()), len(cfg.Services()), len(cfg.Production())
	if channels > 0 || services > 0 || components > 0 {
		// Build every channel exactly as serve would, starting nothing.
		if err := serve.Check(cfg, serve.Options{DataDir: dataDir(fs, files)}); err != nil {
			printLoadError(e.Stderr, err)
			return ExitFailure
		}
	}
	cases := 0
	for _, s := range cfg.Tests() {
		cases += len(s.Cases)
	}
	what := plural(len(cfg.Flows()), "flow")
	if channels > 0 {
		what += ", " + plural(channels, "channel")
	}
	if services > 0 {
		what += ", " + plural(services, "service")
	}
	if components > 0 {
		what += ", " + plural(components, "production component")
	}
	fmt.Fprintf(e.Stdout, "ok: %s, %s in %s\n", what, plural(cases, "test case"), strings.Join(cfg.Files(), ", "))
	return ExitOK
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func graphCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["graph"]
	fs := e.FlagSet(c)
	var lf LoadFlags
	lf.Register(fs)
	flowName := fs.String("flow", "", "the flow to draw (default: the first declared)")
	format := fs.String("format", "dot", "the output format: dot or mermaid")
	files, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	if *format != "dot" && *format != "mermaid" {
		return e.usageError(c, "--format: expected dot or mermaid, got %q", *format)
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
	g := f.Graph()
	if *format == "mermaid" {
		fmt.Fprint(e.Stdout, g.Mermaid())
	} else {
		fmt.Fprint(e.Stdout, g.DOT())
	}
	return ExitOK
}

func servicesCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["services"]
	fs := e.FlagSet(c)
	var lf LoadFlags
	lf.Register(fs)
	rest, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		return e.usageError(c, "takes no arguments")
	}
	reg, err := e.Registry(&lf)
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun services: %v\n", err)
		return ExitFailure
	}
	printServices(e.Stdout, reg.ServicesIn(e.Components()))
	printComponents(e.Stdout, e.Components())
	return ExitOK
}

func schemaCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["schema"]
	fs := e.FlagSet(c)
	rest, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		return e.usageError(c, "takes no arguments")
	}
	enc := json.NewEncoder(e.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(config.Schema(config.SchemaOptions{Channel: reflect.TypeFor[serve.Spec](), Service: bus.SpecType, Bus: bus.FileSpecType, Component: production.SpecType, Components: e.Components()})); err != nil {
		fmt.Fprintf(e.Stderr, "flowrun schema: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// componentSections title the kinds in the catalog.
var componentSections = []struct {
	kind  component.Kind
	title string
}{
	{component.KindSource, "Sources (channels: from: {NAME: spec})"},
	{component.KindStore, "Stores (channels: store: NAME:value or {NAME: spec})"},
	{component.KindSink, "Sinks (channels: to: {NAME: spec})"},
	{component.KindProvider, "Providers"},
	{component.KindTransport, "Transports (bus: transport: {NAME: spec})"},
}

// printComponents lists the components of reg by kind but steps (which
// printServices lists), each with the fields of its spec.
func printComponents(w io.Writer, reg *component.Registry) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, sec := range componentSections {
		names := reg.Names(sec.kind)
		if len(names) == 0 && (sec.kind == component.KindSink || sec.kind == component.KindProvider || sec.kind == component.KindTransport) {
			continue
		}
		fmt.Fprintf(tw, "\n%s:\n", sec.title)
		if len(names) == 0 {
			fmt.Fprintln(tw, "  none registered")
		}
		for _, name := range names {
			c, _ := reg.Lookup(sec.kind, name)
			fmt.Fprintf(tw, "  %s\t%s\n", c.Name, c.Doc)
			printFields(tw, name, c.Fields())
		}
	}
	tw.Flush()
}

// printFields lists the fields of a component's spec, one a line: name,
// type, required or default, shorthand, doc.
func printFields(w io.Writer, name string, fields []component.Field) {
	for _, f := range fields {
		var notes []string
		if f.Required {
			notes = append(notes, "required")
		}
		if f.Default != "" {
			notes = append(notes, "default "+f.Default)
		}
		if len(f.Enum) > 0 {
			notes = append(notes, "one of "+strings.Join(f.Enum, ", "))
		}
		if f.Scalar {
			notes = append(notes, "shorthand: "+name+": VALUE")
		}
		if f.List {
			notes = append(notes, "shorthand: "+name+": [...]")
		}
		label := f.Name
		if f.Inline {
			label = "{KEY: VALUE, ...}" // the spec is the mapping
		}
		line := label + " (" + component.TypeName(f)
		if len(notes) > 0 {
			line += "; " + strings.Join(notes, "; ")
		}
		line += ")"
		if f.Doc != "" {
			line += ": " + f.Doc
		}
		fmt.Fprintf(w, "  \t%s\n", line)
	}
}

func printServices(w io.Writer, svcs []config.ServiceInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Built-in step kinds:")
	registered := false
	for _, s := range svcs {
		if !s.Builtin {
			registered = true
			continue
		}
		doc := s.Doc
		if s.Disabled != "" {
			doc += " [" + s.Disabled + "]"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", s.Name, doc)
		if s.Inputs != "" {
			fmt.Fprintf(tw, "  \treads: %s\n", s.Inputs)
			fmt.Fprintf(tw, "  \twrites: %s\n", s.Outputs)
		}
		printFields(tw, s.Name, s.Fields)
		if s.Example != "" {
			fmt.Fprintf(tw, "  \te.g. %s\n", s.Example)
		}
	}
	fmt.Fprintln(tw, "\nRegistered services (use: NAME):")
	if !registered {
		fmt.Fprintln(tw, "  none: build your own flowrun with cli.WithService to add Go services")
	}
	for _, s := range svcs {
		if s.Builtin {
			continue
		}
		fmt.Fprintf(tw, "  %s\t%s\n", s.Name, s.Doc)
		if s.Inputs != "" {
			fmt.Fprintf(tw, "  \treads: %s\n", s.Inputs)
		} else {
			fmt.Fprintf(tw, "  \treads: %s\n", keyList(s.Needs))
			fmt.Fprintf(tw, "  \twrites: %s\n", keyList(s.Provides))
		}
		if len(s.Given) > 0 {
			given := make([]string, len(s.Given))
			for i, g := range s.Given {
				given[i] = g.String()
			}
			fmt.Fprintf(tw, "  \tgiven: %s (providers:)\n", strings.Join(given, ", "))
		}
		fmt.Fprintf(tw, "  \te.g. %s\n", s.Example)
	}
	tw.Flush()
}

// keyList renders keys as "items []main.Item, note string (optional)".
func keyList(keys []fc.KeyInfo) string {
	if len(keys) == 0 {
		return "nothing"
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		t := "any"
		if k.Type != nil {
			t = k.Type.String()
		}
		parts[i] = k.Name + " " + t
		if k.Optional {
			parts[i] += " (optional)"
		}
	}
	return strings.Join(parts, ", ")
}

func testCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["test"]
	fs := e.FlagSet(c)
	var lf LoadFlags
	lf.Register(fs)
	run := fs.String("run", "", "run only the cases whose FLOW/CASE name matches this `pattern` (see above)")
	verbose := fs.Bool("v", false, "also print each case's output")
	allowEmpty := fs.Bool("allow-empty", false, "pass when no case runs (default: a failure)")
	timeout := fs.Duration("timeout", time.Minute, "fail a case that runs longer than this")
	files, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	if len(files) == 0 && lf.Example == "" {
		return e.usageError(c, "no file given")
	}
	var filter *casePattern
	if *run != "" {
		var err error
		if filter, err = newCasePattern(*run); err != nil {
			return e.usageError(c, "--run: %v", err)
		}
	}
	cfg, code, ok := e.Load(c, files, &lf)
	if !ok {
		fmt.Fprintln(e.Stdout, "FAIL: the configuration has errors")
		fmt.Fprintln(e.Stdout, "0 passed, 1 failed")
		return code
	}
	passed, failed, total := 0, 0, 0
	start := time.Now()
	for _, s := range cfg.Tests() {
		for _, tc := range s.Cases {
			total++
			name := s.Flow + "/" + tc.Name
			if filter != nil && !filter.match(s.Flow, tc.Name) {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, *timeout)
			r := tc.Run(cctx)
			cancel()
			status := "PASS"
			if !r.Passed() {
				status = "FAIL"
				failed++
			} else {
				passed++
			}
			fmt.Fprintf(e.Stdout, "--- %s: %s (%.2fs)\n", status, name, r.Duration.Seconds())
			for _, f := range r.Failures {
				fmt.Fprintf(e.Stdout, "    %s\n", f)
			}
			if *verbose && r.Output != nil {
				fmt.Fprintf(e.Stdout, "    output: %s\n", compactJSON(r.Output))
			}
		}
	}
	if passed+failed == 0 && !*allowEmpty {
		switch {
		case total == 0:
			fmt.Fprintf(e.Stdout, "FAIL: no test cases in %s (add a tests: section, or pass --allow-empty)\n", strings.Join(cfg.Files(), ", "))
		default:
			fmt.Fprintf(e.Stdout, "FAIL: --run %q matches none of the %s (names are FLOW/CASE as written in the YAML; pass --allow-empty to accept)\n", *run, plural(total, "test case"))
		}
		fmt.Fprintln(e.Stdout, "0 passed, 0 failed")
		return ExitFailure
	}
	if failed > 0 {
		fmt.Fprintf(e.Stdout, "FAIL (%.2fs)\n", time.Since(start).Seconds())
	} else {
		fmt.Fprintf(e.Stdout, "PASS (%.2fs)\n", time.Since(start).Seconds())
	}
	fmt.Fprintf(e.Stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return ExitFailure
	}
	return ExitOK
}

// casePattern is a --run pattern. Without a slash, a case runs when the
// pattern matches its flow's name or its own; with one, the part before
// the first slash must match the flow's name and the rest the case's
// (`orders/gold`, `^orders$/^gold customer$`). Each part is an unanchored
// regular expression, as in go test -run. A case name matches as written
// in the YAML (spaces kept), or with spaces written as underscores, the
// way go test names subtests.
type casePattern struct {
	flow, kase *regexp.Regexp // kase nil: no slash
	either     *regexp.Regexp
}

func newCasePattern(s string) (*casePattern, error) {
	p := &casePattern{}
	flowPart, casePart, slash := strings.Cut(s, "/")
	var err error
	if !slash {
		p.either, err = regexp.Compile(s)
		return p, err
	}
	if p.flow, err = regexp.Compile(flowPart); err != nil {
		return nil, err
	}
	if p.kase, err = regexp.Compile(casePart); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *casePattern) match(flowName, caseName string) bool {
	caseMatch := func(re *regexp.Regexp) bool {
		return re.MatchString(caseName) || re.MatchString(strings.ReplaceAll(caseName, " ", "_"))
	}
	if p.either != nil {
		return p.either.MatchString(flowName) || caseMatch(p.either)
	}
	return p.flow.MatchString(flowName) && caseMatch(p.kase)
}

func compactJSON(m map[string]any) string {
	return fc.FromMap(m).String()
}

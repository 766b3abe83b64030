package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	ferrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/internal/redact"
)

// Exit codes of every command.
const (
	ExitOK          = 0   // success
	ExitFailure     = 1   // a run, a test or a configuration failed
	ExitUsage       = 2   // bad command line
	ExitStopped     = 3   // a run ended with a Stop error (rejected input)
	ExitInterrupted = 130 // interrupted by SIGINT (Ctrl-C), as shells report it: 128 + 2
)

// Command is one flowrun command. Commands are kept in a table: a file of
// this package adds one with register in an init function (the serve and
// messages commands are added that way), and a program adds its own with
// WithCommand.
type Command struct {
	Name    string // as typed: "run"
	Summary string // one line for the command list
	Usage   string // the synopsis: "flowrun run [FILE...] [flags]"
	Help    string // what it does, in a few lines
	Example string // one or more example invocations
	// Run runs the command with the arguments after its name and returns
	// an exit code. It parses its flags with Env.Parse.
	Run func(ctx context.Context, env *Env, args []string) int
}

// commands is the built-in command table, filled by the init functions of
// this package's files.
var commands []*Command

// register adds a built-in command.
func register(c *Command) { commands = append(commands, c) }

// commandOrder lists the commands first in help; others follow by name.
var commandOrder = []string{"run", "test", "validate", "graph", "serve", "messages", "services"}

// Option configures a flowrun program: its services, examples and I/O.
type Option func(*Env)

// WithService registers a Go service that YAML flows use with
// `use: NAME` (the service's own name), with a one-line doc for
// `flowrun services`. A typed flow.Func brings its contract, so the YAML
// flows using it get the same build checks as Go flows.
func WithService(svc flow.Service, doc string) Option {
	return func(e *Env) {
		e.regOps = append(e.regOps, func(r *config.Registry) error { return r.Register(svc, doc) })
	}
}

// WithFactory registers a configurable service: each `use: NAME` step
// gets its own instance from f, built from the step's `with:` arguments.
func WithFactory(name, doc string, f config.Factory) Option {
	return func(e *Env) {
		e.regOps = append(e.regOps, func(r *config.Registry) error { return r.RegisterFactory(name, doc, f) })
	}
}

// WithType names a Go type for typed flow inputs
// (`input: [{name: items, type: NAME}]`).
func WithType(name string, t reflect.Type) Option {
	return func(e *Env) {
		e.regOps = append(e.regOps, func(r *config.Registry) error { return r.RegisterType(name, t) })
	}
}

// WithRegistryOptions passes options to every registry the program makes
// (an HTTP client, a logger).
func WithRegistryOptions(opts ...config.RegistryOption) Option {
	return func(e *Env) { e.regOpts = append(e.regOpts, opts...) }
}

// WithComponents makes the commands read the sources, stores and other
// components channels name from reg (default: component.Default(), which
// holds the components whose packages the program imports, such as
// adapters/component/all).
func WithComponents(reg *component.Registry) Option {
	return func(e *Env) { e.comps = reg }
}

// Components returns the component registry the commands use.
func (e *Env) Components() *component.Registry {
	if e.comps != nil {
		return e.comps
	}
	return component.Default()
}

// WithExample embeds a YAML configuration under a name: `flowrun run
// --example NAME` runs its first flow on its sample input. The first
// example given is the default of `flowrun run` without a file.
func WithExample(name string, yaml []byte) Option {
	return func(e *Env) { e.examples = append(e.examples, example{name: name, data: yaml}) }
}

// WithStdio sets the program's standard input, output and error (default
// the process's).
func WithStdio(in io.Reader, out, err io.Writer) Option {
	return func(e *Env) { e.Stdin, e.Stdout, e.Stderr = in, out, err }
}

// WithCommand adds a command, or replaces the built-in of the same name.
func WithCommand(c *Command) Option {
	return func(e *Env) { e.extra = append(e.extra, c) }
}

// WithTerminal overrides terminal detection of standard error, which
// selects the progress bar of batch runs (tests use it).
func WithTerminal(isTerminal bool) Option {
	return func(e *Env) { e.terminal = &isTerminal }
}

type example struct {
	name string
	data []byte
}

// Env is what a command runs with: standard I/O and the program's
// services and examples.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer

	regOps   []func(*config.Registry) error
	regOpts  []config.RegistryOption
	comps    *component.Registry
	examples []example
	extra    []*Command
	terminal *bool
	cmds     map[string]*Command
	flagCmds []flagCmd
	log      *slog.Logger // --log, --log-level; nil: text at info
}

// Main runs flowrun with the process's arguments (without the program
// name) and returns the exit code. SIGINT and SIGTERM cancel the running
// command, which then finishes what it can and reports; after SIGINT
// (Ctrl-C) the exit code is ExitInterrupted (130), and a second SIGINT
// ends the process at once. A custom flowrun:
//
//	func main() {
//		os.Exit(cli.Main(os.Args[1:], cli.WithService(greet, "say hello")))
//	}
func Main(args []string, opts ...Option) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var got atomic.Value
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case sig := <-sigs:
			got.Store(sig)
			signal.Reset(os.Interrupt) // a second Ctrl-C ends the process
			cancel()
		case <-ctx.Done():
		}
	}()
	code := Run(ctx, args, opts...)
	cancel()
	<-done
	signal.Stop(sigs)
	if sig, _ := got.Load().(os.Signal); sig == os.Interrupt {
		return ExitInterrupted
	}
	return code
}

// Run is Main with a context of the caller's.
func Run(ctx context.Context, args []string, opts ...Option) int {
	e := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	for _, o := range opts {
		o(e)
	}
	e.cmds = map[string]*Command{}
	for _, c := range commands {
		e.cmds[c.Name] = c
	}
	for _, c := range e.extra {
		e.cmds[c.Name] = c
	}
	if len(args) == 0 {
		e.usage(e.Stderr)
		return ExitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if c, ok := e.cmds[args[1]]; ok {
				return c.Run(ctx, e, []string{"-h"})
			}
			fmt.Fprintf(e.Stderr, "flowrun help: unknown command %q%s\n", args[1], suggestOne(args[1], e.commandNames()))
			return ExitUsage
		}
		e.usage(e.Stdout)
		return ExitOK
	case "-v", "--version":
		name = "version"
	}
	c, ok := e.cmds[name]
	if !ok {
		fmt.Fprintf(e.Stderr, "flowrun: unknown command %q%s\nRun \"flowrun -h\" for the commands.\n", name, suggestOne(name, e.commandNames()))
		return ExitUsage
	}
	return c.Run(ctx, e, args[1:])
}

// commandNames returns the names of the commands, sorted.
func (e *Env) commandNames() []string {
	return slices.Sorted(maps.Keys(e.cmds))
}

// suggestOne returns ` (did you mean "x"?)` for the choice closest to s,
// or "" when none is close.
func suggestOne(s string, choices []string) string {
	if best := closest(s, choices); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// closest returns the choice nearest to s by edit distance, when it is
// near enough to be a typo (or s is a prefix of it), else "".
func closest(s string, choices []string) string {
	best, bestD := "", 0
	for _, c := range choices {
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if strings.HasPrefix(c, s) && len(s) >= 2 {
			d = min(d, 1)
		}
		if best == "" || d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(1, len(s)/3) {
		return ""
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance of a and b (adjacent
// transpositions count one).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range rb {
		d[0][j+1] = j + 1
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// sortedCommands returns the commands in help order.
func (e *Env) sortedCommands() []*Command {
	var out []*Command
	for _, c := range e.cmds {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Command) int {
		ia, ib := slices.Index(commandOrder, a.Name), slices.Index(commandOrder, b.Name)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

func (e *Env) usage(w io.Writer) {
	fmt.Fprint(w, `flowrun runs, validates, draws and tests flows declared in YAML.

Usage:
  flowrun COMMAND [arguments]

Commands:
`)
	for _, c := range e.sortedCommands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Summary)
	}
	fmt.Fprint(w, `
Run "flowrun COMMAND -h" for a command's flags and examples, "flowrun
completion bash|zsh|fish" for shell completion.

Examples:
  flowrun run --example orders              # an embedded example on its sample input
  flowrun run orders.yaml --input @order.json --trace
  flowrun test orders.yaml

Exit codes:
  0  ok
  1  failure (a run failed, a test failed, the configuration has errors)
  2  usage error (bad command line)
  3  stopped (a run ended with a Stop error: the input was rejected)
  130 interrupted (Ctrl-C)
`)
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

// FlagSet returns a flag set for c. Parse it with [Env.Parse]: -h then
// prints the command's usage, flags and examples to standard output.
// Flags are written --name in help and errors; -name works too.
func (e *Env) FlagSet(c *Command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Parse reports flag errors itself
	fs.Usage = func() {}     // Parse prints the help itself
	e.flagCmds = append(e.flagCmds, flagCmd{fs, c})
	return fs
}

type flagCmd struct {
	fs *flag.FlagSet
	c  *Command
}

// help prints a command's usage, flags and examples.
func (e *Env) help(w io.Writer, fs *flag.FlagSet, c *Command) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n\nFlags:\n", c.Usage, strings.TrimSpace(c.Help))
	printFlags(w, fs)
	if c.Example != "" {
		fmt.Fprintf(w, "\nExamples:\n%s\n", indent(strings.TrimSpace(c.Example), "  "))
	}
}

// printFlags lists the flags of fs as --name TYPE, then the usage and
// the default, like flag.PrintDefaults with two dashes.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  " + dashed(f.Name)
		if name != "" {
			line += " " + name
		}
		if len(line) <= 4+2 {
			line += "\t"
		} else {
			line += "\n    \t"
		}
		line += strings.ReplaceAll(usage, "\n", "\n    \t")
		if d := f.DefValue; d != "" && d != "false" && d != "0" && d != "0s" && d != "[]" {
			if g, ok := f.Value.(flag.Getter); ok && reflect.TypeOf(g.Get()) == reflect.TypeFor[string]() {
				line += fmt.Sprintf(" (default %q)", d)
			} else {
				line += fmt.Sprintf(" (default %v)", d)
			}
		}
		fmt.Fprintln(w, line)
	})
}

// dashed writes a flag as it is typed: --name, or -v for a one-letter
// flag.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// flagNames returns the names of fs's flags.
func flagNames(fs *flag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *flag.Flag) { out = append(out, f.Name) })
	return out
}

// Parse parses args with fs, allowing flags after positional arguments
// (flowrun run FILE --flow NAME). It returns the positional arguments, or
// ok false with the exit code to return: 0 after -h (help printed to
// standard output), ExitUsage after a bad flag (an unknown one with a
// "did you mean").
func (e *Env) Parse(fs *flag.FlagSet, args []string) (pos []string, code int, ok bool) {
	var c *Command
	for _, fc := range e.flagCmds {
		if fc.fs == fs {
			c = fc.c
		}
	}
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			if c != nil {
				e.help(e.Stdout, fs, c)
			} else {
				printFlags(e.Stdout, fs)
			}
			return nil, ExitOK, false
		}
		if err != nil {
			fmt.Fprintf(e.Stderr, "flowrun %s: %s\nRun \"flowrun %s -h\" for usage.\n", fs.Name(), flagError(fs, err), fs.Name())
			return nil, ExitUsage, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// flagError rewrites an error of package flag with --name: an unknown
// flag with the nearest known one, a bad value naming the flag.
func flagError(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		name = strings.TrimLeft(name, "-")
		if best := closest(name, flagNames(fs)); best != "" {
			return fmt.Sprintf("unknown flag %s (did you mean %s?)", dashed(name), dashed(best))
		}
		return fmt.Sprintf("unknown flag %s", dashed(name))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: "); ok {
		return "flag --" + strings.TrimLeft(name, "-") + " needs a value"
	}
	// invalid value "x" for flag -workers: parse error
	if i := strings.Index(msg, " for flag -"); i >= 0 {
		msg = msg[:i] + " for flag --" + msg[i+len(" for flag -"):]
	}
	return msg
}

// usageError prints a usage problem for c and returns ExitUsage.
func (e *Env) usageError(c *Command, format string, args ...any) int {
	fmt.Fprintf(e.Stderr, "flowrun %s: %s\nRun \"flowrun %s -h\" for usage.\n", c.Name, fmt.Sprintf(format, args...), c.Name)
	return ExitUsage
}

// IsTerminal reports whether standard error is a terminal.
func (e *Env) IsTerminal() bool {
	if e.terminal != nil {
		return *e.terminal
	}
	f, ok := e.Stderr.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// LoadFlags are the flags of every command that loads configuration.
type LoadFlags struct {
	Sets       []string
	AllowShell bool
	Example    string
	// DataDir, when set, is where the providers: keep their files (a kv
	// provider's SQLite file with a relative path): the --data folder of
	// the commands that have one.
	DataDir string
}

// Register declares --set, --allow-shell and --example on fs.
func (lf *LoadFlags) Register(fs *flag.FlagSet) {
	fs.Func("set", "override a configuration value: `path=value` (repeatable), e.g. vars.api=http://localhost:8080", func(s string) error {
		if !strings.Contains(s, "=") {
			return fmt.Errorf("expected path=value")
		}
		lf.Sets = append(lf.Sets, s)
		return nil
	})
	fs.BoolVar(&lf.AllowShell, "allow-shell", false, "enable the shell built-in, which runs commands on this machine")
	fs.StringVar(&lf.Example, "example", "", "use the embedded example `NAME` instead of files")
}

// Registry returns a registry with the program's services.
func (e *Env) Registry(lf *LoadFlags) (*config.Registry, error) {
	// The log built-in writes to this program's standard error, with the
	// keys a channel redacts masked; a WithRegistryOptions logger, given
	// later, wins.
	log := e.log
	if log == nil {
		log = slog.New(slog.NewTextHandler(e.Stderr, nil))
	}
	opts := []config.RegistryOption{config.WithLogger(slog.New(redact.NewHandler(log.Handler())))}
	opts = append(opts, e.regOpts...)
	if lf != nil && lf.AllowShell {
		opts = append(opts, config.AllowShell())
	}
	r := config.NewRegistry(opts...)
	for _, op := range e.regOps {
		if err := op(r); err != nil {
			return nil, fmt.Errorf("registering services: %w", err)
		}
	}
	return r, nil
}

// Load loads the files (or the example named by the flags) and prints
// every problem to standard error. ok is false when loading failed, with
// the exit code to return.
func (e *Env) Load(c *Command, files []string, lf *LoadFlags) (cfg *config.Config, code int, ok bool) {
	reg, err := e.Registry(lf)
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun %s: %v\n", c.Name, err)
		return nil, ExitFailure, false
	}
	opts := []config.Option{config.WithRegistry(reg), config.WithComponents(e.Components()), config.WithSet(lf.Sets...)}
	if lf.DataDir != "" {
		opts = append(opts, config.WithDataDir(lf.DataDir))
	}
	switch {
	case lf.Example != "" && len(files) > 0:
		return nil, e.usageError(c, "give files or --example, not both"), false
	case lf.Example != "" || len(files) == 0:
		ex, found := e.example(lf.Example)
		if !found {
			if len(e.examples) == 0 {
				return nil, e.usageError(c, "no file given"), false
			}
			return nil, e.usageError(c, "no example %q (examples: %s)", lf.Example, strings.Join(e.exampleNames(), ", ")), false
		}
		cfg, err = config.LoadSources([]config.Source{{Name: ex.name + ".yaml", Data: ex.data}}, opts...)
	case slices.Contains(files, "-"):
		srcs, code, ok := e.readSources(c, files)
		if !ok {
			return nil, code, false
		}
		cfg, err = config.LoadSources(srcs, opts...)
	default:
		cfg, err = config.Load(files, opts...)
	}
	if err != nil {
		printLoadError(e.Stderr, err)
		return nil, ExitFailure, false
	}
	return cfg, 0, true
}

// stdinName is the name of a configuration read from standard input
// ("-"), in error positions: stdin:3:5: ...
const stdinName = "stdin"

// readSources reads the files, "-" being standard input (once), for a
// load that reads standard input.
func (e *Env) readSources(c *Command, files []string) ([]config.Source, int, bool) {
	var srcs []config.Source
	var errs config.Errors
	stdin := false
	for _, p := range files {
		if p != "-" {
			data, err := os.ReadFile(p)
			if err != nil {
				errs = append(errs, &config.Error{File: p, Msg: fmt.Sprintf("cannot read: %v", err), Err: err})
				continue
			}
			srcs = append(srcs, config.Source{Name: p, Data: data})
			continue
		}
		if stdin {
			return nil, e.usageError(c, "- (standard input) given twice"), false
		}
		stdin = true
		data, err := io.ReadAll(e.Stdin)
		if err != nil {
			fmt.Fprintf(e.Stderr, "flowrun %s: reading standard input: %v\n", c.Name, err)
			return nil, ExitFailure, false
		}
		srcs = append(srcs, config.Source{Name: stdinName, Data: data})
	}
	if len(errs) > 0 {
		printLoadError(e.Stderr, errs)
		return nil, ExitFailure, false
	}
	return srcs, 0, true
}

// dataDir returns the folder of the default stores: the --data flag when
// given on the command line (relative to the working directory), else
// "data" in the folder of the first configuration file (the working
// directory for an embedded example or standard input).
func dataDir(fs *flag.FlagSet, files []string) string {
	if f := fs.Lookup("data"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	for _, p := range files {
		if p != "-" {
			return filepath.Join(filepath.Dir(p), "data")
		}
	}
	return "data"
}

// dataUsage is the usage of the --data flags.
const dataUsage = "folder of the default SQLite stores (default: data in the folder of the first file)"

// printLoadError prints each problem of a load on its own line, then a
// count.
func printLoadError(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Fprintln(w, e)
		}
		if len(errs) == 1 {
			fmt.Fprintln(w, "1 problem")
		} else {
			fmt.Fprintf(w, "%d problems\n", len(errs))
		}
		return
	}
	fmt.Fprintln(w, err)
}

func (e *Env) example(name string) (example, bool) {
	if name == "" {
		if len(e.examples) == 0 {
			return example{}, false
		}
		return e.examples[0], true
	}
	for _, ex := range e.examples {
		if ex.name == name {
			return ex, true
		}
	}
	return example{}, false
}

func (e *Env) exampleNames() []string {
	var out []string
	for _, ex := range e.examples {
		out = append(out, ex.name)
	}
	return out
}

// exitCode maps a run's error to an exit code.
func exitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case ferrors.IsStop(err), ferrors.IsDrop(err):
		return ExitStopped
	}
	return ExitFailure
}

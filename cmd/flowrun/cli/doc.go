// Package cli is the flowrun command line as a library, so a program can
// be its own flowrun with its own Go services:
//
//	package main
//
//	import (
//		"os"
//
//		_ "github.com/svcflow/svcflow/adapters/component/all" // the shipped step kinds, sources and stores
//		"github.com/svcflow/svcflow/cmd/flowrun/cli"
//	)
//
//	func main() {
//		os.Exit(cli.Main(os.Args[1:], cli.WithService(Greet, "say hello to name")))
//	}
//
// YAML flows then use the service with `use: greet`; a typed flow.Func
// brings its contract, so `flowrun validate` checks the keys it needs and
// provides like any built-in step.
//
// # Commands
//
//	flowrun run [FILE...] [--flow NAME] [--input JSON|@FILE|-] [--trace[=json]]
//	flowrun run FILE --jsonl IN.jsonl [--out OUT.jsonl] [--workers N]
//	flowrun validate FILE...|-
//	flowrun graph FILE|- [--flow NAME] [--format dot|mermaid]
//	flowrun services
//	flowrun test FILE...|- [--run PATTERN] [-v] [--allow-empty]
//	flowrun eval EXPR [--input JSON|@FILE|-] [--cond]
//	flowrun serve FILE... [--data DIR] [--admin ADDR] [--admin-token-file PATH]
//	flowrun plan NEW.yaml... [--server ADDR] [--out PLAN.json] | flowrun plan --review PLAN.json
//	flowrun apply PLAN.json [--allow-destructive] [--server ADDR] [--data DIR] [--token T]
//	flowrun verify PLAN.json [--server ADDR]
//	flowrun rollback BACKUP [--server ADDR]
//	flowrun messages FILE... --channel NAME [--state S] [show ID | replay ID [--from STEP] | replay --all --state S]
//	flowrun completion bash|zsh|fish
//	flowrun version
//
// Every command takes -h; help and errors write flags --name (-name works
// too), and a mistyped command or flag gets a "did you mean". Commands
// that load YAML also take --set path=value (repeatable), --allow-shell
// and --example NAME; a FILE "-" is standard input.
//
// Exit codes: 0 ok, 1 failure, 2 usage error, 3 stopped (a run ended with
// a Stop error), 130 interrupted by SIGINT ([Main]).
//
// # Adding a command
//
// Commands live in a table of [Command] values. A file of this package adds
// a command in an init function:
//
//	func init() {
//		register(&Command{Name: "serve", Summary: "...", Usage: "...", Help: "...",
//			Example: "...", Run: runServe})
//	}
//
// where runServe parses its flags with [Env.FlagSet] and [Env.Parse],
// loads configuration with [LoadFlags] and [Env.Load] (channels are in
// config.Config.Channels), and returns one of the Exit codes. A program
// adds or replaces commands with [WithCommand].
package cli

package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

func init() {
	register(&Command{
		Name:    "completion",
		Summary: "print a shell completion script: bash, zsh or fish",
		Usage:   "flowrun completion bash|zsh|fish",
		Help: `Prints a script that completes flowrun's commands, their flags and the
values of a few flags (--format, --state, --log, --log-level, --progress,
completion's shells) in
the shell named; other arguments complete as file names. The script is
made from this flowrun's own command table, so a flowrun of your own
(commands added with WithCommand) completes its commands too.`,
		Example: `source <(flowrun completion bash)          # bash, now; add it to ~/.bashrc to keep it
flowrun completion zsh > "${fpath[1]}/_flowrun"  # zsh, then start a new shell
flowrun completion fish > ~/.config/fish/completions/flowrun.fish`,
		Run: completionCmd,
	})
}

// flagValues are the values completed after a flag, by flag name.
var flagValues = map[string][]string{
	"format":    {"dot", "mermaid"},
	"state":     {"pending", "processing", "done", "rejected", "error", "dead", "waiting"},
	"log":       {"text", "json"},
	"log-level": {"debug", "info", "warn", "error"},
	"progress":  {"auto", "bar", "lines", "none"},
}

// completionCommand is what a completion script knows of a command.
type completionCommand struct {
	name, summary string
	flags         []*flag.Flag
}

func completionCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["completion"]
	fs := e.FlagSet(c)
	pos, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return e.usageError(c, "expected one shell: bash, zsh or fish")
	}
	cmds := e.completionCommands(ctx)
	switch pos[0] {
	case "bash":
		writeBash(e.Stdout, cmds)
	case "zsh":
		writeZsh(e.Stdout, cmds)
	case "fish":
		writeFish(e.Stdout, cmds)
	default:
		return e.usageError(c, "unknown shell %q: expected bash, zsh or fish%s", pos[0], suggestOne(pos[0], []string{"bash", "zsh", "fish"}))
	}
	return ExitOK
}

// completionCommands lists the commands with their flags, found by
// asking each command for its help with its output discarded.
func (e *Env) completionCommands(ctx context.Context) []completionCommand {
	var out []completionCommand
	for _, c := range e.sortedCommands() {
		probe := *e
		probe.Stdout, probe.Stderr, probe.flagCmds = io.Discard, io.Discard, nil
		c.Run(ctx, &probe, []string{"-h"})
		cc := completionCommand{name: c.Name, summary: c.Summary}
		for _, fc := range probe.flagCmds {
			if fc.c == c {
				fc.fs.VisitAll(func(f *flag.Flag) { cc.flags = append(cc.flags, f) })
			}
		}
		out = append(out, cc)
	}
	return out
}

// isBool reports whether a flag takes no value.
func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

func writeBash(w io.Writer, cmds []completionCommand) {
	var names []string
	for _, c := range cmds {
		names = append(names, c.name)
	}
	fmt.Fprintf(w, `# bash completion for flowrun: source <(flowrun completion bash)
_flowrun() {
    local cur prev cmd flags
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    if [ "$COMP_CWORD" -eq 1 ]; then
        COMPREPLY=($(compgen -W "%s" -- "$cur"))
        return
    fi
    cmd="${COMP_WORDS[1]}"
    case "$prev" in
`, strings.Join(names, " "))
	for _, name := range sortedKeys(flagValues) {
		fmt.Fprintf(w, "        --%s|-%s) COMPREPLY=($(compgen -W \"%s\" -- \"$cur\")); return ;;\n", name, name, strings.Join(flagValues[name], " "))
	}
	fmt.Fprint(w, `    esac
    case "$cmd" in
`)
	for _, c := range cmds {
		var flags []string
		for _, f := range c.flags {
			flags = append(flags, dashed(f.Name))
		}
		if c.name == "completion" {
			fmt.Fprint(w, "        completion) COMPREPLY=($(compgen -W \"bash zsh fish\" -- \"$cur\")); return ;;\n")
			continue
		}
		fmt.Fprintf(w, "        %s) flags=\"%s\" ;;\n", c.name, strings.Join(flags, " "))
	}
	fmt.Fprint(w, `        *) flags="" ;;
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -o filenames -o bashdefault -F _flowrun flowrun
`)
}

// zshQuote escapes text for an _arguments or _describe spec inside
// single quotes.
func zshQuote(s string) string {
	return strings.NewReplacer("'", `'\''`, "[", "(", "]", ")", "\\", "").Replace(s)
}

func writeZsh(w io.Writer, cmds []completionCommand) {
	fmt.Fprint(w, `#compdef flowrun
# zsh completion for flowrun: flowrun completion zsh > "${fpath[1]}/_flowrun"
_flowrun() {
    local -a commands
    commands=(
`)
	for _, c := range cmds {
		fmt.Fprintf(w, "        '%s:%s'\n", c.name, zshQuote(c.summary))
	}
	fmt.Fprint(w, `    )
    if (( CURRENT == 2 )); then
        _describe -t commands 'flowrun command' commands
        return
    fi
    local cmd=${words[2]}
    shift words
    (( CURRENT-- ))
    case $cmd in
`)
	for _, c := range cmds {
		if c.name == "completion" {
			fmt.Fprint(w, "        completion) _values 'shell' bash zsh fish ;;\n")
			continue
		}
		fmt.Fprintf(w, "        %s)\n            _arguments -s \\\n", c.name)
		for _, f := range c.flags {
			_, usage := flag.UnquoteUsage(f)
			spec := fmt.Sprintf("'*%s[%s]", dashed(f.Name), zshQuote(usage))
			if !isBool(f) {
				values := "_files"
				if v, ok := flagValues[f.Name]; ok {
					values = "(" + strings.Join(v, " ") + ")"
				}
				spec += ":" + f.Name + ":" + values
			}
			fmt.Fprintf(w, "                %s' \\\n", spec)
		}
		fmt.Fprint(w, "                '*:file:_files' ;;\n")
	}
	fmt.Fprint(w, `    esac
}
if [ "$funcstack[1]" = "_flowrun" ]; then
    _flowrun "$@"
else
    compdef _flowrun flowrun
fi
`)
}

// fishQuote quotes s for fish, in single quotes.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func writeFish(w io.Writer, cmds []completionCommand) {
	var names []string
	for _, c := range cmds {
		names = append(names, c.name)
	}
	fmt.Fprint(w, "# fish completion for flowrun: flowrun completion fish > ~/.config/fish/completions/flowrun.fish\n")
	fmt.Fprint(w, "complete -c flowrun -e\n")
	for _, c := range cmds {
		fmt.Fprintf(w, "complete -c flowrun -f -n 'not __fish_seen_subcommand_from %s' -a %s -d %s\n",
			strings.Join(names, " "), c.name, fishQuote(c.summary))
	}
	for _, c := range cmds {
		cond := fishQuote("__fish_seen_subcommand_from " + c.name)
		if c.name == "completion" {
			fmt.Fprintf(w, "complete -c flowrun -f -n %s -a 'bash zsh fish'\n", cond)
			continue
		}
		for _, f := range c.flags {
			_, usage := flag.UnquoteUsage(f)
			opt := "-l " + f.Name
			if len(f.Name) == 1 {
				opt = "-s " + f.Name
			}
			line := fmt.Sprintf("complete -c flowrun -n %s %s -d %s", cond, opt, fishQuote(usage))
			if !isBool(f) {
				line += " -r"
				if v, ok := flagValues[f.Name]; ok {
					line += " -f -a " + fishQuote(strings.Join(v, " "))
				}
			}
			fmt.Fprintln(w, line)
		}
	}
}

func sortedKeys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

package cli

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
)

func init() {
	register(&Command{
		Name:    "version",
		Summary: "print the version of flowrun: module, Go, and the commit it was built from",
		Usage:   "flowrun version",
		Help: `Prints the version of the module this flowrun was built from ("(devel)"
for a build from a source checkout), the Go version, and the version
control information the Go tool recorded: the commit, its time, and
whether the checkout had uncommitted changes. "flowrun --version" is the
same.`,
		Example: `flowrun version`,
		Run:     versionCmd,
	})
}

func versionCmd(ctx context.Context, e *Env, args []string) int {
	c := e.cmds["version"]
	fs := e.FlagSet(c)
	rest, code, ok := e.Parse(fs, args)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		return e.usageError(c, "takes no arguments")
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(e.Stdout, "flowrun: no build information (built without module support)")
		return ExitOK
	}
	fmt.Fprint(e.Stdout, versionText(info))
	return ExitOK
}

// versionText renders build information:
//
//	flowrun (devel)
//	module: github.com/svcflow/svcflow (devel)
//	go: go1.26.0
//	commit: 102bbb4... (2026-11-30T01:00:00Z, modified)
func versionText(info *debug.BuildInfo) string {
	var b strings.Builder
	version := info.Main.Version
	if version == "" {
		version = "(unknown)"
	}
	fmt.Fprintf(&b, "flowrun %s\n", version)
	if info.Main.Path != "" {
		fmt.Fprintf(&b, "module: %s %s\n", info.Main.Path, version)
	}
	if info.Path != "" && info.Path != info.Main.Path {
		fmt.Fprintf(&b, "program: %s\n", info.Path)
	}
	fmt.Fprintf(&b, "go: %s\n", info.GoVersion)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		var notes []string
		if t := settings["vcs.time"]; t != "" {
			notes = append(notes, t)
		}
		if settings["vcs.modified"] == "true" {
			notes = append(notes, "modified")
		}
		vcs := settings["vcs"]
		if vcs == "" {
			vcs = "vcs"
		}
		fmt.Fprintf(&b, "commit: %s %s", vcs, rev)
		if len(notes) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(notes, ", "))
		}
		b.WriteString("\n")
	} else {
		b.WriteString("commit: unknown (built without version control information)\n")
	}
	return b.String()
}

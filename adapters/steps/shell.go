package steps

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"

	"github.com/svcflow/svcflow/adapters/component"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/internal/jsonenc"
)

// ShellSpec is the spec of a shell step: a command run on the host, its
// standard output stored under into. Shell is restricted: a configuration
// using it loads only when shell is enabled (config.AllowShell, flowrun
// --allow-shell).
//
//	shell: {command: [wc, -c], stdin: text, into: size}
//	shell: {command: 'printf "{\"n\": %s}" {{.n}}', into: parsed, json: true}
//
// A failing command is an error with the start of its standard error; a
// canceled run kills it. The step needs the keys its arguments and stdin
// read, and provides into.
type ShellSpec struct {
	Command ShellCommand  `yaml:"command" spec:"required" doc:"the command: a list (the program and its arguments) or a script for sh -c, templates over the context"`
	Stdin   component.Key `yaml:"stdin" doc:"a key whose value is the command's standard input (a string as it is, other values as JSON)"`
	Into    component.Key `yaml:"into" default:"stdout" doc:"the key standard output goes into (its trailing newlines cut)"`
	JSON    bool          `yaml:"json" doc:"parse standard output as JSON"`
}

// ShellCommand is the command of a shell step: a list is the program and
// its arguments (command: [wc, -c]), a plain value a script run with sh -c
// (command: "date +%s").
type ShellCommand struct {
	Argv   []component.Template `yaml:"argv" spec:"list" doc:"the program and its arguments, each a template"`
	Script component.Template   `yaml:"script" spec:"scalar" doc:"a script run with sh -c, a template"`
}

// StepName is "shell(INTO)".
func (s ShellSpec) StepName() string { return "shell(" + string(cmp.Or(s.Into, "stdout")) + ")" }

func newShell(env component.Env, s ShellSpec) (flow.Service, error) {
	argv := s.Command.Argv
	switch {
	case !s.Command.Script.IsZero() && len(argv) > 0:
		return nil, component.FieldErrorf("command", "set a script or argv, not both")
	case !s.Command.Script.IsZero():
		argv = []component.Template{component.Text("sh"), component.Text("-c"), s.Command.Script}
	case len(argv) == 0:
		return nil, component.FieldErrorf("command", "expected a command and its arguments")
	}
	svc := &shellService{name: env.Name, argv: argv, stdin: string(s.Stdin), into: string(cmp.Or(s.Into, "stdout")), asJSON: s.JSON}
	var reads []string
	for _, t := range argv {
		reads = append(reads, t.Keys()...)
	}
	if svc.stdin != "" {
		reads = append(reads, svc.stdin)
	}
	svc.contract = flow.Contract{Needs: needsOf(reads), Provides: []fc.KeyInfo{fc.Any(svc.into)}}
	return svc, nil
}

// shellService runs a command.
type shellService struct {
	name     string
	argv     []component.Template
	stdin    string
	into     string
	asJSON   bool
	contract flow.Contract
}

func (s *shellService) Name() string            { return s.name }
func (s *shellService) Contract() flow.Contract { return s.contract }

func (s *shellService) Call(ctx context.Context, c *fc.Context) error {
	args := make([]string, len(s.argv))
	for i, t := range s.argv {
		a, err := t.Execute(c.View())
		if err != nil {
			return fmt.Errorf("shell argument %d: %w", i+1, err)
		}
		args[i] = a
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	if s.stdin != "" {
		v, _ := c.Get(s.stdin)
		switch x := v.(type) {
		case string:
			cmd.Stdin = strings.NewReader(x)
		case []byte:
			cmd.Stdin = bytes.NewReader(x)
		default:
			b, err := json.Marshal(x)
			if err != nil {
				return fmt.Errorf("shell stdin %q: %w", s.stdin, err)
			}
			cmd.Stdin = bytes.NewReader(b)
		}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("shell %s: %w", args[0], ctx.Err())
		}
		return fmt.Errorf("shell %s: %w: %s", args[0], err, shortName(stderr.String()))
	}
	if s.asJSON {
		var v any
		if err := jsonenc.Unmarshal(stdout.Bytes(), &v); err != nil { // numbers keep their digits
			return fmt.Errorf("shell %s: stdout is not JSON: %w", args[0], err)
		}
		c.Set(s.into, v)
		return nil
	}
	c.Set(s.into, strings.TrimRight(stdout.String(), "\n"))
	return nil
}

package steps_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/steps"
)

// loadStep loads a flow of one step, written on line 4, with shell
// enabled, and returns the errors.
func loadStep(t *testing.T, step string) string {
	t.Helper()
	src := "vars: {api: http://x}\nflows:\n  f:\n    steps:\n      - " + step + "\n"
	_, err := config.LoadSources([]config.Source{{Name: "s.yaml", Data: []byte(src)}},
		config.WithRegistry(config.NewRegistry(config.AllowShell())))
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestSpecErrors: each built-in's spec problems are reported at their
// position, saying what was expected.
func TestSpecErrors(t *testing.T) {
	for step, want := range map[string]string{
		`set: {}`:                        `s.yaml:5:14: set: expected at least one entry (key: expression, evaluated in order)`,
		`set: [a]`:                       `s.yaml:5:14: set: expected a mapping, got a list`,
		`set: {a: "1 +", b: null}`:       "s.yaml:5:22: set \"a\": bad expression \"1 +\": unexpected token EOF\ns.yaml:5:28: set \"b\": expected a value, got null",
		`stop: {if: "1", reason: "{{"}`:  "s.yaml:5:20: stop: if: bad expression \"1\": expected bool, but got int\ns.yaml:5:33: stop: reason: bad template: line 1: unclosed action",
		`log: {level: info}`:             `s.yaml:5:14: log: missing message (the message, a template over the context)`,
		`log: {message: x, keys: [" "]}`: `s.yaml:5:34: log: keys: expected a name, got " "`,
		`template: {a: "{{.x"}`:          `s.yaml:5:23: template "a": bad template: line 1: unclosed action`,
		`http: {url: "ftp://x", body: b, body_template: t}`: "s.yaml:5:21: http: url: expected an http or https URL, got \"ftp://x\"\n" +
			"s.yaml:5:56: http: body_template: set body (a key sent as JSON) or body_template, not both",
		`http: {url: '{{var "apu"}}', timeout: 0s}`: "s.yaml:5:29: http: url: unknown var \"apu\": declare it under vars: (did you mean \"api\"?)\n" +
			"s.yaml:5:47: http: timeout: expected a positive duration, got 0s",
		`sleep: -1s`:                   `s.yaml:5:16: sleep: expected a positive duration, got -1s`,
		`shell: {command: []}`:         `s.yaml:5:26: shell: command: expected a command and its arguments`,
		`shell: {into: x}`:             `s.yaml:5:16: shell: missing command (the command: a list (the program and its arguments) or a script for sh -c, templates over the context)`,
		`shell: {command: [ls, "{{"]}`: `s.yaml:5:31: shell: command: bad template: line 1: unclosed action`,
	} {
		assert.Equal(t, want, loadStep(t, step), step)
	}
}

// TestBuiltinsAreRegistered: importing the package registers every
// built-in in component.Default(), shell restricted.
func TestBuiltinsAreRegistered(t *testing.T) {
	for _, c := range steps.All() {
		got, ok := component.Default().Lookup(component.KindStep, c.Name)
		require.True(t, ok, c.Name)
		assert.Equal(t, c.Doc, got.Doc)
		assert.Equal(t, c.Name == "shell", got.Restricted != "", c.Name)
	}
	f, _ := component.ScalarField(steps.HTTP.SpecType())
	assert.Empty(t, f.Name, "http has no shorthand")
	for _, f := range steps.HTTP.Fields() {
		if f.Name == "timeout" {
			assert.Equal(t, steps.DefaultHTTPTimeout.String(), f.Default)
		}
	}
}

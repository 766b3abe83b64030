package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v4"

	"github.com/svcflow/svcflow/cmd/flowrun/cli"
)

// compileSchema compiles what `flowrun schema` prints.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	code, out, errOut := runCLI(t.Context(), "schema")
	require.Equal(t, cli.ExitOK, code, errOut)
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(out))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("svcflow.schema.json", doc))
	s, err := c.Compile("svcflow.schema.json")
	require.NoError(t, err)
	return s
}

// asJSON reads YAML into the values JSON decoding would give, so the
// schema sees what an editor's YAML language server sees.
func asJSON(t *testing.T, src []byte) any {
	t.Helper()
	var v any
	require.NoError(t, yaml.Unmarshal(src, &v))
	data, err := json.Marshal(v)
	require.NoError(t, err)
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	require.NoError(t, err)
	return out
}

// TestSchemaAcceptsTheExamples: every YAML file the project ships is
// valid against the schema.
func TestSchemaAcceptsTheExamples(t *testing.T) {
	s := compileSchema(t)
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "examples", "*", "*.yaml"))
	require.NoError(t, err)
	files = append(files, filepath.Join("testdata", "b6.yaml"))
	require.GreaterOrEqual(t, len(files), 6)
	for _, f := range files {
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		assert.NoError(t, s.Validate(asJSON(t, src)), f)
	}
}

// TestSchemaRejects: the shape mistakes the loader reports are schema
// errors too.
func TestSchemaRejects(t *testing.T) {
	s := compileSchema(t)
	for name, src := range map[string]string{
		"unknown top key":      "version: 1\nflow: {}\n",
		"unknown flow key":     "flows:\n  f:\n    stepz: []\n",
		"two kinds":            "flows:\n  f:\n    steps: [{set: {a: '1'}, stop: x}]\n",
		"no kind":              "flows:\n  f:\n    steps: [{name: x}]\n",
		"bad duration":         "flows:\n  f:\n    steps: [{sleep: soon}]\n",
		"bad policy key":       "flows:\n  f:\n    retry: {max_atempts: 3}\n    steps: [{sleep: 1s}]\n",
		"unknown source":       "flows:\n  f:\n    steps: [{sleep: 1s}]\nchannels:\n  c:\n    from: {ftp: {}}\n    flow: f\n",
		"http without path":    "flows:\n  f:\n    steps: [{sleep: 1s}]\nchannels:\n  c:\n    from: {http: {listen: ':1'}}\n    flow: f\n",
		"unknown store":        "flows:\n  f:\n    steps: [{sleep: 1s}]\nchannels:\n  c:\n    from: {http: /a}\n    flow: f\n    store: redis:x\n",
		"channel without from": "flows:\n  f:\n    steps: [{sleep: 1s}]\nchannels:\n  c:\n    flow: f\n",
		"bad test error kind":  "flows:\n  f:\n    steps: [{sleep: 1s}]\ntests:\n  - flow: f\n    cases: [{name: x, error: oops}]\n",
	} {
		assert.Error(t, s.Validate(asJSON(t, []byte(src))), name)
	}
	ok := "flows:\n  f:\n    steps: [{sleep: 1s}]\nchannels:\n  c:\n    from: [{http: /a}, {cron: '@every 1m'}, {files: {dir: in}}, {poll: 'http://x/y'}]\n    flow: f\n    store: {sqlite: {path: x.db}}\n    restart: {max_attempts: 3, jitter: 0.2}\n"
	assert.NoError(t, s.Validate(asJSON(t, []byte(ok))))
}

// TestSchemaStepKindsFromSpecs: the step kinds are described by their
// components' specs: each spec mistake the loader reports on a built-in
// step is a schema error too.
func TestSchemaStepKindsFromSpecs(t *testing.T) {
	s := compileSchema(t)
	for name, src := range map[string]string{
		"set without keys":      "flows:\n  f:\n    steps: [{set: {}}]\n",
		"log level":             "flows:\n  f:\n    steps: [{log: {message: x, level: loud}}]\n",
		"log without message":   "flows:\n  f:\n    steps: [{log: {level: info}}]\n",
		"http without url":      "flows:\n  f:\n    steps: [{http: {method: GET}}]\n",
		"http unknown key":      "flows:\n  f:\n    steps: [{http: {url: 'http://x', intoo: y}}]\n",
		"stop unknown key":      "flows:\n  f:\n    steps: [{stop: {iff: x}}]\n",
		"shell without command": "flows:\n  f:\n    steps: [{shell: {into: x}}]\n",
		"template not a map":    "flows:\n  f:\n    steps: [{template: [a]}]\n",
	} {
		assert.Error(t, s.Validate(asJSON(t, []byte(src))), name)
	}
	ok := `flows:
  f:
    steps:
      - set: {a: "1", b: 2, c: true}
      - stop: "always"
      - stop: {if: "a > 1"}
      - log: hello
      - log: {message: "{{.a}}", level: debug, keys: [a]}
      - template: {t: "{{.a}}"}
      - http: {url: "http://x/{{.a}}", headers: {Accept: json}, retry: {max_attempts: 2}, allow_status: [404]}
      - sleep: 1ms
      - shell: {command: [wc, -c], stdin: t}
      - shell: {command: "date"}
      - call: f
`
	assert.NoError(t, s.Validate(asJSON(t, []byte(ok))))
}

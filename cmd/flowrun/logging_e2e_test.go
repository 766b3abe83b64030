package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const logYAML = `version: 1
flows:
  f:
    input: [x]
    steps:
      - log: {message: "x is {{.x}}", keys: [x]}
      - log: {message: "debugging", level: debug}
      - set: {y: "x * 2"}
channels:
  c:
    from: {http: {listen: "ADDR", path: /in}}
    flow: f
`

// jsonLines decodes every line of s as a JSON object, failing the test
// on a line that is not one (no mixed text and JSON).
func jsonLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(s) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "not a JSON line: %q in:\n%s", line, s)
		out = append(out, m)
	}
	return out
}

// TestRunLogFlags: flowrun run --log json writes the log step's records as
// JSON on standard error, --log-level filters them, bad values are usage
// errors.
func TestRunLogFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f.yaml")
	require.NoError(t, os.WriteFile(file, []byte(strings.ReplaceAll(logYAML, "ADDR", "127.0.0.1:0")), 0o644))

	r := flowrun(t, "", "run", file, "--input", `{"x": 2}`, "--log", "json")
	require.Equal(t, 0, r.code, r.errOut)
	recs := jsonLines(t, r.errOut)
	require.Len(t, recs, 1, "the debug record is below the default level")
	assert.Equal(t, "x is 2", recs[0]["msg"])
	assert.Equal(t, "INFO", recs[0]["level"])
	assert.Equal(t, 2.0, recs[0]["x"])

	r = flowrun(t, "", "run", file, "--input", `{"x": 2}`, "--log", "json", "--log-level", "debug")
	require.Equal(t, 0, r.code, r.errOut)
	recs = jsonLines(t, r.errOut)
	require.Len(t, recs, 2)
	assert.Equal(t, "debugging", recs[1]["msg"])

	r = flowrun(t, "", "run", file, "--input", `{"x": 2}`, "--log-level", "warn")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Empty(t, r.errOut)

	r = flowrun(t, "", "run", file, "--input", `{"x": 2}`, "--log", "text")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.errOut, `level=INFO msg="x is 2"`)

	r = flowrun(t, "", "run", file, "--log", "xml")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.errOut, `--log: expected text or json, got "xml"`)
	r = flowrun(t, "", "serve", file, "--log-level", "loud")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.errOut, `--log-level: expected debug, info, warn or error, got "loud"`)
}

// TestServeLogsJSON: flowrun serve --log json logs every record as JSON
// through one handler: the log step's records carry the channel and the
// message ID, durations are strings.
func TestServeLogsJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowrun")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	file := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte(strings.ReplaceAll(logYAML, "ADDR", addr)), 0o644))
	stdout, stderr := filepath.Join(dir, "out"), filepath.Join(dir, "err")
	fo, err := os.Create(stdout)
	require.NoError(t, err)
	defer fo.Close()
	fe, err := os.Create(stderr)
	require.NoError(t, err)
	defer fe.Close()
	cmd := exec.Command(flowrunBin(t), "serve", file, "--data", filepath.Join(dir, "data"), "--admin", "off",
		"--drain", "5s", "--log", "json", "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = fo, fe
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	c := &child{cmd: cmd, log: stdout, done: done}
	c.listening(t, addr)

	a := postKey("http://"+addr+"/in", "k-1", `{"x": 21}`)
	require.NoError(t, a.err)
	require.Equal(t, 200, a.code, a.body)
	id := a.id
	require.NotEmpty(t, id)
	assert.NotContains(t, a.body, "meta", "the answer does not echo meta")
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, c.exit(t))

	out, err := os.ReadFile(stderr)
	require.NoError(t, err)
	recs := jsonLines(t, string(out))
	var said, debugged, drain bool
	for _, r := range recs {
		switch r["msg"] {
		case "x is 21":
			said = true
			assert.Equal(t, "c", r["channel"], r)
			assert.Equal(t, id, r["message_id"], r)
			assert.Equal(t, 21.0, r["x"], r)
		case "debugging":
			debugged = true
			assert.Equal(t, id, r["message_id"], r)
		case "shutting down":
			drain = true
			assert.Equal(t, "5s", r["drain"], "durations are strings")
		}
	}
	assert.True(t, said && debugged && drain, "log step records and the shutdown record, in:\n%s", out)
}

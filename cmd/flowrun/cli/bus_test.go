package cli_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/cmd/flowrun/cli"
)

const busFile = `version: 1
flows:
  double:
    input: [n]
    steps:
      - set: {twice: "n * 2"}
services:
  calc:
    actions: {Double: double}
`

func TestBusSend(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bus.yaml")
	require.NoError(t, os.WriteFile(path, []byte(busFile), 0o644))

	code, out, errOut := runCLI(t.Context(), "bus", "send", "calc", "Double", "--input", `{"n": 4}`, path, "--data", dir)
	require.Equal(t, cli.ExitOK, code, errOut)
	assert.JSONEq(t, `{"n": 4, "twice": 8}`, out)

	code, _, errOut = runCLI(t.Context(), "bus", "send", "calc", "Triple", path, "--data", dir)
	assert.Equal(t, cli.ExitFailure, code)
	assert.Contains(t, errOut, `unknown action: the service has Double`)

	code, _, errOut = runCLI(t.Context(), "bus", "calc", "Double", path)
	assert.Equal(t, cli.ExitUsage, code)
	assert.Contains(t, errOut, "expected: send DEST ACTION")

	code, _, errOut = runCLI(t.Context(), "bus", "send", "*", "Double", path)
	assert.Equal(t, cli.ExitUsage, code)
	assert.Contains(t, errOut, "use --submit to broadcast")

	code, out, errOut = runCLI(t.Context(), "bus", "send", "*", "Double", "--submit", "--input", `{"n": 1}`, path, "--data", dir)
	assert.Equal(t, cli.ExitOK, code, errOut)
	assert.Contains(t, out, "submitted to * Double")

	flows := filepath.Join(dir, "flows.yaml")
	require.NoError(t, os.WriteFile(flows, []byte("version: 1\nflows:\n  f:\n    steps:\n      - set: {x: \"1\"}\n"), 0o644))
	code, _, errOut = runCLI(t.Context(), "bus", "send", "calc", "Double", flows)
	assert.Equal(t, cli.ExitFailure, code)
	assert.Contains(t, errOut, "declares no services")

	code, out, _ = runCLI(t.Context(), "validate", path)
	assert.Equal(t, cli.ExitOK, code)
	assert.Contains(t, out, "1 service")
}

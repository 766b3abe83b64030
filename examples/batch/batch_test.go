package batch_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	_ "github.com/svcflow/svcflow/adapters/steps" // the built-in step kinds its YAML uses, as flowrun links them
	"github.com/svcflow/svcflow/cmd/flowrun/cli"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func flowrun(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, cli.WithStdio(nil, &out, &errb))
	return code, out.String(), errb.String()
}

func TestBatchCases(t *testing.T) {
	code, out, errOut := flowrun("test", "batch.yaml")
	assert.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "4 passed, 0 failed")
}

// TestBatchTransform runs the JSONL export through the flow and compares
// the output with expected.jsonl, record by record, whatever the number
// of workers: output keeps input order, and bad records are written with
// their line number instead of stopping the batch.
func TestBatchTransform(t *testing.T) {
	want, err := os.ReadFile("expected.jsonl")
	require.NoError(t, err)
	for _, workers := range []string{"1", "3"} {
		out := filepath.Join(t.TempDir(), "priced.jsonl")
		code, _, errOut := flowrun("run", "batch.yaml", "--jsonl", "orders.jsonl", "--out", out, "--workers", workers)
		assert.Equal(t, cli.ExitFailure, code, "one record is not JSON: the batch reports a failure")
		assert.Contains(t, errOut, "batch: 9 records in")
		assert.Contains(t, errOut, "5 ok, 3 stopped, 1 failed")
		got, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), "workers=%s", workers)
	}
}

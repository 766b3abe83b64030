package orders_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	_ "github.com/svcflow/svcflow/adapters/steps" // the built-in step kinds its YAML uses, as flowrun links them
	"github.com/svcflow/svcflow/cmd/flowrun/cli"
	"github.com/svcflow/svcflow/examples/orders"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func flowrun(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, cli.WithStdio(nil, &out, &errb), cli.WithExample("orders", orders.YAML))
	return code, out.String(), errb.String()
}

func TestOrdersCases(t *testing.T) {
	code, out, errOut := flowrun("test", "orders.yaml")
	assert.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "9 passed, 0 failed")
}

// TestEmbeddedExample runs what README's first command runs: the embedded
// copy on its sample input.
func TestEmbeddedExample(t *testing.T) {
	code, out, errOut := flowrun("run", "--example", "orders")
	require.Equal(t, 0, code, errOut)
	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &got))
	assert.Equal(t, 6.0, got["total"])
	assert.Equal(t, "confirmed", got["status"])
	assert.Equal(t, "order A-1001: 8 items, 6 EUR, confirmed", got["summary"])

	code, _, errOut = flowrun("run", "--example", "orders", "--input", `{"id": "A-9", "customer": {"tier": "gold"}, "items": []}`)
	assert.Equal(t, cli.ExitStopped, code)
	assert.Contains(t, errOut, "no items")
}

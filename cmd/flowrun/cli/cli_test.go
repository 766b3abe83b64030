package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const ordersYAML = `version: 1
flows:
  orders:
    input: [items, tier]
    sample: {items: [{price: 2, qty: 3}], tier: gold}
    steps:
      - stop: {if: "len(items) == 0", reason: "no items"}
      - set: {subtotal: "sum(map(items, #.price * #.qty))"}
      - fork:
          on: tier
          cases:
            gold: [{set: {rate: 0.5}}]
          default: [{set: {rate: 0}}]
      - name: total
        set: {total: "subtotal * (1 - rate)"}
  broken:
    input: [x]
    steps:
      - use: explode
tests:
  - flow: orders
    cases:
      - {name: gold, input: {items: [{price: 2, qty: 3}], tier: gold}, want: {total: 3}}
      - {name: empty, input: {items: [], tier: gold}, error: stop}
`

// explode is a registered service that always fails.
var explode = flow.Step("explode", func(context.Context, *fc.Context) error {
	return fmt.Errorf("boom")
})

type result struct {
	code        int
	out, errOut string
}

// flowrun runs the CLI in process with a file dir/orders.yaml.
func flowrun(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args,
		WithStdio(strings.NewReader(stdin), &out, &errb),
		WithService(explode, "always fails"),
		WithExample("orders", []byte(ordersYAML)))
	return result{code, out.String(), errb.String()}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestHelp(t *testing.T) {
	r := flowrun(t, "", "-h")
	assert.Equal(t, 0, r.code)
	for _, want := range []string{"run ", "test ", "validate ", "graph ", "services ", "Exit codes:", "3  stopped", "flowrun run --example orders"} {
		assert.Contains(t, r.out, want)
	}
	for _, cmd := range []string{"run", "test", "validate", "graph", "services"} {
		r := flowrun(t, "", cmd, "-h")
		assert.Equal(t, 0, r.code, cmd)
		assert.Contains(t, r.out, "Usage: flowrun "+cmd, cmd)
		assert.Contains(t, r.out, "Examples:\n  flowrun "+cmd, cmd)
		assert.Contains(t, r.out, "\n  --set path=value\n", cmd)
		assert.NotRegexp(t, `(?m)^  -[a-z][a-z]`, r.out, "flags are shown --name (a one-letter flag -v)")
		assert.Equal(t, r, flowrun(t, "", "help", cmd))
	}
	r = flowrun(t, "")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, "Commands:")
	r = flowrun(t, "", "frobnicate")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, `unknown command "frobnicate"`)
	assert.NotContains(t, r.errOut, "did you mean")
	r = flowrun(t, "", "run", "--bogus")
	assert.Equal(t, ExitUsage, r.code)
	assert.Equal(t, "flowrun run: unknown flag --bogus\nRun \"flowrun run -h\" for usage.\n", r.errOut)
}

func TestDidYouMean(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rnu"}, `flowrun: unknown command "rnu" (did you mean "run"?)`},
		{[]string{"valiate", "x.yaml"}, `flowrun: unknown command "valiate" (did you mean "validate"?)`},
		{[]string{"mesages"}, `(did you mean "messages"?)`},
		{[]string{"help", "grpah"}, `flowrun help: unknown command "grpah" (did you mean "graph"?)`},
		{[]string{"run", "--flwo", "x"}, `flowrun run: unknown flag --flwo (did you mean --flow?)`},
		{[]string{"run", "-inptu", "{}"}, `flowrun run: unknown flag --inptu (did you mean --input?)`},
		{[]string{"test", "--allow-emtpy"}, `flowrun test: unknown flag --allow-emtpy (did you mean --allow-empty?)`},
		{[]string{"run", "--workers", "x"}, `flowrun run: invalid value "x" for flag --workers: parse error`},
		{[]string{"run", "--flow"}, `flowrun run: flag --flow needs a value`},
	} {
		r := flowrun(t, "", tc.args...)
		assert.Equal(t, ExitUsage, r.code, tc.args)
		assert.Contains(t, r.errOut, tc.want, tc.args)
	}
}

func TestRun(t *testing.T) {
	file := writeFile(t, "orders.yaml", ordersYAML)
	decode := func(s string) map[string]any {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(s), &m), s)
		return m
	}

	r := flowrun(t, "", "run", file)
	require.Equal(t, 0, r.code, r.errOut)
	assert.Equal(t, 3.0, decode(r.out)["total"], "the sample input")

	r = flowrun(t, "", "run", "--example", "orders")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Equal(t, 3.0, decode(r.out)["total"])
	assert.Equal(t, r, flowrun(t, "", "run"), "the default example")

	r = flowrun(t, "", "run", file, "--input", `{"items": [{"price": 1, "qty": 4}], "tier": "iron"}`)
	require.Equal(t, 0, r.code, r.errOut)
	assert.Equal(t, 4.0, decode(r.out)["total"])

	in := writeFile(t, "in.json", `{"items": [{"price": 10, "qty": 1}], "tier": "gold"}`)
	r = flowrun(t, "", "run", "--input", "@"+in, file)
	require.Equal(t, 0, r.code, r.errOut)
	assert.Equal(t, 5.0, decode(r.out)["total"])

	r = flowrun(t, `{"items": [], "tier": "gold"}`, "run", file, "--input", "-")
	assert.Equal(t, ExitStopped, r.code)
	assert.Contains(t, r.errOut, `stopped (stop): flow "orders": step "stop(no items)": stop: no items`)
	assert.Equal(t, []any{}, decode(r.out)["items"], "the partial context is printed")

	r = flowrun(t, "", "run", file, "--flow", "broken", "--input", `{"x": 1}`)
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, `error (failed): flow "broken": step "explode": boom`)

	r = flowrun(t, "", "run", file, "--trace")
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.errOut, `trace: flow "orders" ok in`)
	assert.Contains(t, r.errOut, "orders/fork(tier)/gold/set(rate)")
	assert.Contains(t, r.errOut, "wrote total")

	r = flowrun(t, "", "run", file, "--trace=json")
	require.Equal(t, 0, r.code)
	var tr flow.Trace
	require.NoError(t, json.Unmarshal([]byte(r.errOut), &tr))
	assert.Equal(t, "orders", tr.Flow)
	assert.Len(t, tr.Steps, 4)

	for _, bad := range [][]string{
		{"run", file, "--input", "{not json"},
		{"run", file, "--flow", "nope"},
		{"run", file, "--input", "@/does/not/exist.json"},
		{"run", file, "--input", "{}", "--jsonl", "x.jsonl"},
		{"run", file, "--example", "orders"},
		{"run", "--example", "nope"},
		{"run", file, "--progress", "loud"},
	} {
		r := flowrun(t, "", bad...)
		assert.Equal(t, ExitUsage, r.code, "%v: %s", bad, r.errOut)
		assert.Contains(t, r.errOut, "Run \"flowrun run -h\" for usage.")
	}
	r = flowrun(t, "", "run", writeFile(t, "bad.yaml", "flows: {a: {steps: [{sleep: 5}]}}"))
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, `bad.yaml:1:29: sleep: expected a duration such as 250ms or 2s, got "5"`)
	assert.Contains(t, r.errOut, "1 problem")
}

func TestRunSet(t *testing.T) {
	file := writeFile(t, "orders.yaml", ordersYAML)
	r := flowrun(t, "", "run", file, "--set", "flows.orders.sample.tier=iron")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, `"total": 6`)
	r = flowrun(t, "", "run", file, "--set", "no-equals")
	assert.Equal(t, ExitUsage, r.code)
}

func TestValidateGraphServices(t *testing.T) {
	file := writeFile(t, "orders.yaml", ordersYAML)
	r := flowrun(t, "", "validate", file)
	assert.Equal(t, 0, r.code, r.errOut)
	assert.Equal(t, "ok: 2 flows, 2 test cases in "+file+"\n", r.out)

	bad := writeFile(t, "bad.yaml", "version: 1\nflows:\n  a:\n    input: [x]\n    steps:\n      - set: {y: \"z + 1\"}\n      - stop: {iff: x}\n")
	r = flowrun(t, "", "validate", bad, file)
	assert.Equal(t, ExitFailure, r.code)
	assert.Equal(t, bad+`:6:19: flow "a": step "set(y)": key "z": needed but not provided: declare it in the flow's Input or have an earlier step provide it on every path`+"\n"+
		bad+`:7:16: stop: unknown key "iff": expected if or reason (did you mean "if"?)`+"\n2 problems\n", r.errOut)
	assert.Equal(t, ExitUsage, flowrun(t, "", "validate").code)

	r = flowrun(t, "", "graph", file)
	assert.Equal(t, 0, r.code, r.errOut)
	assert.True(t, strings.HasPrefix(r.out, `digraph "orders" {`), r.out)
	r = flowrun(t, "", "graph", file, "--format", "mermaid", "--flow", "orders")
	assert.Equal(t, 0, r.code, r.errOut)
	assert.True(t, strings.HasPrefix(r.out, "flowchart TD"), r.out)
	assert.Equal(t, ExitUsage, flowrun(t, "", "graph", file, "--format", "png").code)

	r = flowrun(t, "", "services")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.out, "Built-in step kinds:")
	assert.Contains(t, r.out, "explode")
	assert.Contains(t, r.out, "off unless enabled")
	r = flowrun(t, "", "services", "--allow-shell")
	assert.NotContains(t, r.out, "off unless enabled")
}

func TestTestCommand(t *testing.T) {
	file := writeFile(t, "orders.yaml", ordersYAML)
	r := flowrun(t, "", "test", file)
	assert.Equal(t, 0, r.code, r.out)
	assert.Equal(t, "--- PASS: orders/gold", strings.Split(r.out, " (")[0])
	assert.Contains(t, r.out, "--- PASS: orders/empty")
	assert.True(t, strings.HasSuffix(r.out, "\n2 passed, 0 failed\n"), r.out)

	failing := strings.Replace(ordersYAML, "want: {total: 3}", "want: {total: 4}", 1)
	r = flowrun(t, "", "test", writeFile(t, "failing.yaml", failing), "-v")
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.out, "--- FAIL: orders/gold")
	assert.Contains(t, r.out, `failing.yaml:23:79: key "total": want 4, got 3`)
	assert.Contains(t, r.out, "    output: {")
	assert.True(t, strings.HasSuffix(r.out, "FAIL\n1 passed, 1 failed\n") || strings.Contains(r.out, "\n1 passed, 1 failed\n"), r.out)

	r = flowrun(t, "", "test", file, "--run", "empty")
	assert.Equal(t, 0, r.code)
	assert.NotContains(t, r.out, "orders/gold")
	assert.Contains(t, r.out, "1 passed, 0 failed")

	r = flowrun(t, "", "test", writeFile(t, "bad.yaml", "flows: {a: {steps: []}}"))
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.out, "0 passed, 1 failed")
	assert.Contains(t, r.errOut, "expected at least one step")
}

func TestWithCommand(t *testing.T) {
	var out bytes.Buffer
	hello := &Command{Name: "hello", Summary: "say hello", Usage: "flowrun hello", Help: "Says hello.", Example: "flowrun hello",
		Run: func(ctx context.Context, e *Env, args []string) int {
			fs := e.FlagSet(e.cmds["hello"])
			name := fs.String("name", "world", "who")
			if _, code, ok := e.Parse(fs, args); !ok {
				return code
			}
			fmt.Fprintf(e.Stdout, "hello %s\n", *name)
			return 0
		}}
	code := Run(context.Background(), []string{"hello", "--name", "flows"}, WithStdio(nil, &out, &out), WithCommand(hello))
	assert.Equal(t, 0, code)
	assert.Equal(t, "hello flows\n", out.String())
	out.Reset()
	Run(context.Background(), []string{"-h"}, WithStdio(nil, &out, &out), WithCommand(hello))
	assert.Contains(t, out.String(), "  hello      say hello")
}

func TestExitCode(t *testing.T) {
	assert.Equal(t, ExitOK, exitCode(nil))
	assert.Equal(t, ExitStopped, exitCode(fmt.Errorf("wrapped: %w", errors.Stop("x"))))
	assert.Equal(t, ExitFailure, exitCode(errors.Retry(nil)))
}

package main_test

// End-to-end tests: build the flowrun binary and run every command as a
// user would, checking standard output, standard error and exit codes.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// flowrunBin builds the binary once per test run.
func flowrunBin(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowrun-e2e")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "flowrun")
		out, err := exec.Command(gobin, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

type result struct {
	code        int
	out, errOut string
}

func flowrun(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(flowrunBin(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return result{code, out.String(), errb.String()}
}

const (
	ordersYAML = "../../examples/orders/orders.yaml"
	batchYAML  = "../../examples/batch/batch.yaml"
)

func TestHelpAndUsage(t *testing.T) {
	r := flowrun(t, "", "-h")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.out, "Exit codes:")
	for _, cmd := range []string{"run", "validate", "graph", "services", "test"} {
		r := flowrun(t, "", cmd, "-h")
		assert.Equal(t, 0, r.code, cmd)
		assert.Contains(t, r.out, "Examples:", cmd)
	}
	r = flowrun(t, "", "nope")
	assert.Equal(t, 2, r.code)
	r = flowrun(t, "", "run", ordersYAML, "--input", "[1, 2]")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.errOut, "--input: expected a JSON object")
}

// TestREADMEFirstCommand runs the embedded example on its sample input, as
// the README's first command does.
func TestREADMEFirstCommand(t *testing.T) {
	r := flowrun(t, "", "run", "--example", "orders")
	require.Equal(t, 0, r.code, r.errOut)
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.out), &out))
	assert.Equal(t, 6.0, out["total"])
	assert.Equal(t, "order A-1001: 8 items, 6 EUR, confirmed", out["summary"])
	assert.Equal(t, r, flowrun(t, "", "run"), "no file: the default example")
	assert.Equal(t, r.out, flowrun(t, "", "run", ordersYAML).out, "the file and its embedded copy agree")
}

func TestRun(t *testing.T) {
	r := flowrun(t, "", "run", ordersYAML, "--flow", "fulfil", "--input", `{"items": [1, 2, 3], "total": 9.5}`, "--trace")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, `"charge_id": "CH-9.5"`)
	assert.Contains(t, r.errOut, `trace: flow "fulfil" ok`)
	assert.Contains(t, r.errOut, "fulfil/saga/charge")

	r = flowrun(t, `{"id": "A-2", "customer": {"tier": "gold"}, "items": []}`, "run", ordersYAML, "--input", "-")
	assert.Equal(t, 3, r.code, "stopped")
	assert.Contains(t, r.errOut, "stopped (stop)")
	assert.Contains(t, r.errOut, "no items")

	r = flowrun(t, "", "run", ordersYAML, "--set", "flows.orders.sample.customer.tier=silver")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, `"discount_rate": 0.1`)
}

func TestRunJSONL(t *testing.T) {
	out := filepath.Join(t.TempDir(), "priced.jsonl")
	r := flowrun(t, "", "run", batchYAML, "--jsonl", "../../examples/batch/orders.jsonl", "--out", out, "--workers", "2")
	assert.Equal(t, 1, r.code, "one record is not JSON")
	assert.Contains(t, r.errOut, "progress: ")
	assert.Contains(t, r.errOut, "batch: 9 records in")
	assert.Contains(t, r.errOut, "5 ok, 3 stopped, 1 failed")
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	want, err := os.ReadFile("../../examples/batch/expected.jsonl")
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))

	r = flowrun(t, `{"id": "x", "lines": [{"qty": 1, "unit_price": 2}]}`+"\n", "run", batchYAML, "--jsonl", "-")
	assert.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, `"gross":2`)
}

// TestRunJSONLInterrupted sends SIGINT to a batch reading an endless
// pipe: it finishes the records it read, writes them, reports, and exits
// 130 as an interrupted command does.
func TestRunJSONLInterrupted(t *testing.T) {
	cmd := exec.Command(flowrunBin(t), "run", batchYAML, "--jsonl", "-", "--progress", "none")
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	require.NoError(t, cmd.Start())
	_, err = fmt.Fprintln(stdin, `{"id": "a", "lines": [{"qty": 1, "unit_price": 2}]}`)
	require.NoError(t, err)
	first, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "the first record is written before the input ends")
	assert.Contains(t, first, `"gross":2`)
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	err = cmd.Wait()
	stdin.Close()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 130, ee.ExitCode(), "interrupted by SIGINT")
	assert.Contains(t, errb.String(), "batch: 1 records in")
	assert.Contains(t, errb.String(), "interrupted: input after line 1 was not read")
}

func TestValidate(t *testing.T) {
	r := flowrun(t, "", "validate", ordersYAML, batchYAML, "../../examples/enrich/enrich.yaml")
	assert.Equal(t, 0, r.code, r.errOut)
	assert.Equal(t, "ok: 4 flows, 21 test cases in "+ordersYAML+", "+batchYAML+", ../../examples/enrich/enrich.yaml\n", r.out)

	bad := "../../adapters/config/testdata/bad/"
	r = flowrun(t, "", "validate", bad+"not_provided.yaml", bad+"call_cycle.yaml")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, bad+`not_provided.yaml:6:27: flow "orders": step "set(count)": key "itemz": needed but not provided: declare it in the flow's Input or have an earlier step provide it on every path
`+bad+`call_cycle.yaml:10:15: call: flows call each other in a loop: a -> b -> a
2 problems
`, r.errOut)

	r = flowrun(t, "", "validate", "../../examples/myflowrun/shipping.yaml")
	assert.Equal(t, 1, r.code, "the stock flowrun lacks the custom services")
	assert.Contains(t, r.errOut, `shipping.yaml:17:9: use: unknown service "geocode" (none are registered)`)
}

func TestGraph(t *testing.T) {
	r := flowrun(t, "", "graph", ordersYAML)
	require.Equal(t, 0, r.code, r.errOut)
	assert.True(t, strings.HasPrefix(r.out, `digraph "orders"`))
	assert.Contains(t, r.out, "customer.tier")
	if dot, err := exec.LookPath("dot"); err == nil {
		cmd := exec.Command(dot, "-Tsvg")
		cmd.Stdin = strings.NewReader(r.out)
		svg, err := cmd.Output()
		require.NoError(t, err, "graphviz renders the DOT")
		assert.Contains(t, string(svg), "<svg")
	}
	r = flowrun(t, "", "graph", ordersYAML, "--flow", "fulfil", "--format", "mermaid")
	require.Equal(t, 0, r.code, r.errOut)
	assert.True(t, strings.HasPrefix(r.out, "flowchart TD"))
	assert.Contains(t, r.out, "reserve_stock")
}

func TestServices(t *testing.T) {
	r := flowrun(t, "", "services")
	require.Equal(t, 0, r.code)
	for _, kind := range []string{"set", "stop", "log", "http", "template", "sleep", "call", "shell"} {
		assert.Contains(t, r.out, "\n  "+kind+" ", kind)
	}
	assert.Contains(t, r.out, "Registered services (use: NAME):")
}

func TestTest(t *testing.T) {
	r := flowrun(t, "", "test", ordersYAML, batchYAML)
	assert.Equal(t, 0, r.code, r.out+r.errOut)
	assert.True(t, strings.HasSuffix(r.out, "\n13 passed, 0 failed\n"), r.out)

	src, err := os.ReadFile(batchYAML)
	require.NoError(t, err)
	failing := filepath.Join(t.TempDir(), "failing.yaml")
	require.NoError(t, os.WriteFile(failing, bytes.Replace(src, []byte("gross: 21.42"), []byte("gross: 21.43"), 1), 0o644))
	r = flowrun(t, "", "test", failing)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.out, "--- FAIL: price_lines/german order (", "the case's name as written")
	assert.Contains(t, r.out, `key "gross": want 21.43, got 21.42`)
	assert.True(t, strings.HasSuffix(r.out, "\n3 passed, 1 failed\n"), r.out)
}

// TestEnrichAgainstAService runs the enrichment example against a
// customers service started here.
func TestEnrichAgainstAService(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/customers/c-1" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"tier": "gold", "region": "eu"}`))
	}))
	defer srv.Close()
	r := flowrun(t, "", "run", "--example", "enrich", "--set", "vars.customers_api="+srv.URL)
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, `"priority": "high"`)
	r = flowrun(t, "", "run", "--example", "enrich", "--set", "vars.customers_api="+srv.URL, "--input", `{"order_id": "x", "customer_id": "c-404"}`)
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, `"tier": "unknown"`)
	assert.Contains(t, r.errOut, "customer c-404 not found")
}

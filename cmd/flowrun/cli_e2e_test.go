package main_test

// End-to-end tests of the command line's behaviour (issue 15), through the
// built binary: exit codes, help, suggestions, standard input, version,
// completion, eval, paths, environment variables, dead letters.

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// flowrunIn runs the binary in dir with extra environment variables.
func flowrunIn(t *testing.T, dir string, env []string, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(flowrunBin(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
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

func TestCLIHelpShowsDoubleDashFlagsAndSuggests(t *testing.T) {
	r := flowrun(t, "", "run", "-h")
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.out, "\n  --flow string\n")
	assert.Contains(t, r.out, "\n  --input string\n")
	assert.NotContains(t, r.out, "\n  -flow")

	r = flowrun(t, "", "serv", "x.yaml")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.errOut, `flowrun: unknown command "serv" (did you mean "serve"?)`)
	r = flowrun(t, "", "run", ordersYAML, "--inptu", "{}")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.errOut, "flowrun run: unknown flag --inptu (did you mean --input?)")
	r = flowrun(t, "", "run", ordersYAML, "--workers", "2")
	assert.Equal(t, 2, r.code, "a batch flag without --jsonl")
	assert.Contains(t, r.errOut, "--workers: batch flags need --jsonl FILE")
}

func TestCLIVersion(t *testing.T) {
	r := flowrun(t, "", "version")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, "module: github.com/svcflow/svcflow ")
	assert.Contains(t, r.out, "\ngo: go1.")
	assert.Equal(t, r, flowrun(t, "", "--version"))
	// With version control information stamped (go build -buildvcs),
	// the commit is the checkout's.
	if strings.Contains(r.out, "commit: git ") {
		head, err := exec.Command("git", "rev-parse", "HEAD").Output()
		require.NoError(t, err)
		assert.Contains(t, r.out, "commit: git "+strings.TrimSpace(string(head)))
	} else {
		assert.Contains(t, r.out, "commit: unknown (built without version control information)")
	}
}

func TestCLIConfigFromStdin(t *testing.T) {
	yaml, err := os.ReadFile(ordersYAML)
	require.NoError(t, err)
	r := flowrun(t, string(yaml), "validate", "-")
	assert.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, " in stdin\n")
	r = flowrun(t, string(yaml), "test", "-")
	assert.Equal(t, 0, r.code, r.out)
	r = flowrun(t, string(yaml), "graph", "-", "--format", "mermaid")
	assert.Equal(t, 0, r.code, r.errOut)
	assert.True(t, strings.HasPrefix(r.out, "flowchart TD"))
	r = flowrun(t, "flows:\n  f:\n    steps: [{sleep: 1}]\n", "validate", "-")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.errOut, "stdin:3:21: sleep: expected a duration")
}

func TestCLITestNamesAndEmptyRuns(t *testing.T) {
	r := flowrun(t, "", "test", batchYAML, "--run", "price_lines/german order")
	assert.Equal(t, 0, r.code, r.out)
	assert.Contains(t, r.out, "--- PASS: price_lines/german order (")
	assert.Contains(t, r.out, "1 passed, 0 failed")
	r = flowrun(t, "", "test", batchYAML, "--run", "price_lines/no such case")
	assert.Equal(t, 1, r.code, "no case ran: a failure")
	assert.Contains(t, r.out, `FAIL: --run "price_lines/no such case" matches none of the 4 test cases`)
	r = flowrun(t, "", "test", batchYAML, "--run", "nothing", "--allow-empty")
	assert.Equal(t, 0, r.code, r.out)
	// The enrich example declares the service its cases call.
	r = flowrun(t, "", "test", "../../examples/enrich/enrich.yaml")
	assert.Equal(t, 0, r.code, r.out+r.errOut)
	assert.Contains(t, r.out, "8 passed, 0 failed")
	r = flowrun(t, "", "test", "--example", "enrich")
	assert.Equal(t, 0, r.code, "the embedded copy too: %s", r.out)
}

func TestCLIEval(t *testing.T) {
	r := flowrun(t, `{"items": [{"price": 2, "qty": 3}]}`, "eval", "sum(map(items, #.price * #.qty)) > 5", "--input", "-")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Equal(t, "true\ntype: bool\n", r.out)
	r = flowrun(t, "", "eval", "len(items) >", "--input", `{"items": []}`)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.errOut, `at 1:13: unexpected token EOF`)
}

func TestCLICompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	r := flowrun(t, "", "completion", "bash")
	require.Equal(t, 0, r.code)
	script := filepath.Join(t.TempDir(), "flowrun.bash")
	require.NoError(t, os.WriteFile(script, []byte(r.out), 0o644))
	out, err := exec.Command(bash, "--norc", "-c", `source "$1"; COMP_WORDS=(flowrun messages x.yaml --sta); COMP_CWORD=3; _flowrun; echo "${COMPREPLY[@]}"`, "x", script).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "--state\n", string(out))
}

// TestCLIInterpolationAndRelativePaths: ${VAR} reads the environment of
// flowrun, and a relative store path is resolved against the folder of
// the configuration file, not the working directory.
func TestCLIInterpolationAndRelativePaths(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf")
	require.NoError(t, os.MkdirAll(conf, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(conf, "secret.txt"), []byte("s3cr3t\n"), 0o600))
	addr := freeAddr(t)
	file := filepath.Join(conf, "app.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`flows:
  f:
    input: [x]
    steps:
      - set: {y: "x * ${FACTOR:1}", region: "'${REGION:eu}'", token: "'${file:secret.txt}'"}
      - log: {message: fetched, keys: [token, region]}
channels:
  c:
    from: {http: {listen: "${ADDR}", path: /in}}
    flow: f
    store: sqlite:db/c.db
    redact: [token]
`), 0o644))
	cwd := t.TempDir() // elsewhere
	r := flowrunIn(t, cwd, []string{"FACTOR=3", "ADDR=" + addr}, "", "run", file, "--input", `{"x": 2}`)
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, `"y": 6`)
	assert.Contains(t, r.out, `"region": "eu"`)
	assert.Contains(t, r.out, `"token": "s3cr3t"`)

	r = flowrunIn(t, cwd, nil, "", "validate", file)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.errOut, file+":9:28: ${ADDR}: environment variable ADDR is not set")

	cmd := exec.Command(flowrunBin(t), "serve", file, "--admin", "off")
	cmd.Dir = cwd
	cmd.Env = append(os.Environ(), "ADDR="+addr)
	logf, err := os.Create(filepath.Join(t.TempDir(), "serve.log"))
	require.NoError(t, err)
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, log: logf.Name(), done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	c.listening(t, addr)
	a := postKey("http://"+addr+"/in", "k1", `{"x": 5}`)
	require.NoError(t, a.err)
	assert.Equal(t, 200, a.code)
	assert.Equal(t, "s3cr3t", a.body["token"], "the answer sees the secret")

	// A malformed JSON body is a 400 whatever its Content-Type (curl -d
	// sends form-urlencoded), and is not recorded.
	resp, err := http.Post("http://"+addr+"/in", "application/x-www-form-urlencoded", strings.NewReader(`{"x": 5,}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 400, resp.StatusCode)

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	assert.Equal(t, 130, c.exit(t), "interrupted by Ctrl-C")
	assert.FileExists(t, filepath.Join(conf, "db", "c.db"), "the store path is relative to the file's folder")
	assert.Contains(t, c.logText(), "token=[redacted] region=eu", "the log step masks what the channel redacts")
	assert.NotContains(t, c.logText(), "s3cr3t")
	assert.NoDirExists(t, filepath.Join(cwd, "db"))

	r = flowrunIn(t, cwd, []string{"ADDR=" + addr}, "", "messages", file, "--channel", "c")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, "1 of 1 messages", "the 400 was not recorded")
	r = flowrunIn(t, cwd, []string{"ADDR=" + addr}, "", "messages", file, "--channel", "c", "show", "k1")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, `"token": "[redacted]"`, "the stored context masks it")
	assert.NotContains(t, r.out, "s3cr3t")

	r = flowrunIn(t, cwd, []string{"ADDR=" + addr}, "", "messages", file, "--channel", "c", "--data", "nope")
	assert.Equal(t, 0, r.code, "a store with a path of its own ignores --data")
}

// TestCLIRunInterrupted: Ctrl-C during a run exits 130.
func TestCLIRunInterrupted(t *testing.T) {
	file := filepath.Join(t.TempDir(), "slow.yaml")
	require.NoError(t, os.WriteFile(file, []byte("flows:\n  f:\n    steps: [{log: started}, {sleep: 1m}, {set: {done: \"true\"}}]\n"), 0o644))
	cmd := exec.Command(flowrunBin(t), "run", file)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lines := bufio.NewScanner(stderr)
	var seen strings.Builder
	for lines.Scan() && !strings.Contains(lines.Text(), "started") {
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT)) // the run is in its sleep step
	for lines.Scan() {
		seen.WriteString(lines.Text() + "\n")
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 130, ee.ExitCode(), seen.String())
	assert.Contains(t, seen.String(), "canceled")
}

// TestCLIMessagesMissingStore: messages with a wrong --data names the
// store it did not find and creates nothing.
func TestCLIMessagesMissingStore(t *testing.T) {
	dir := t.TempDir()
	r := flowrun(t, "", "messages", "../../examples/intake/intake.yaml", "--channel", "intake", "--data", filepath.Join(dir, "typo"))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.errOut, "no such store: "+filepath.Join(dir, "typo"))
	assert.NoDirExists(t, filepath.Join(dir, "typo"))
	r = flowrun(t, "", "messages", "../../examples/intake/intake.yaml", "--channel", "intake", "show")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.errOut, "show: expected a message ID")
}

// TestCLISetErrorsNameTheFlag: a problem in a --set value names the flag,
// not a position in the file; store: memory: is read as a store.
func TestCLISetErrorsNameTheFlag(t *testing.T) {
	r := flowrun(t, "", "validate", ordersYAML, "--set", "flows.orders.retry.max_attempts=lots")
	assert.Equal(t, 1, r.code)
	assert.True(t, strings.HasPrefix(r.errOut, `--set flows.orders.retry.max_attempts=lots: flow "orders": retry: max_attempts: expected an integer, got "lots"`), r.errOut)

	file := filepath.Join(t.TempDir(), "mem.yaml")
	require.NoError(t, os.WriteFile(file, []byte("flows:\n  f:\n    steps: [{set: {y: \"1\"}}]\nchannels:\n  c:\n    from: {http: /in}\n    flow: f\n    store: memory:\n"), 0o644))
	r = flowrun(t, "", "validate", file)
	assert.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, "ok: 1 flow, 1 channel")
}

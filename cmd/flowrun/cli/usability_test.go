package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
)

const namedCasesYAML = `flows:
  double:
    input: [n]
    steps: [{set: {twice: "n * 2"}}]
  half:
    input: [n]
    steps: [{set: {half: "n / 2"}}]
tests:
  - flow: double
    cases:
      - {name: two, input: {n: 1}, want: {twice: 2}}
      - {name: wrong value, input: {n: 1}, want: {twice: 3}}
  - flow: half
    cases:
      - {name: two halves, input: {n: 4}, want: {half: 2}}
`

func TestTestRunPatterns(t *testing.T) {
	file := writeFile(t, "cases.yaml", namedCasesYAML)
	ran := func(r result) []string {
		var out []string
		for l := range strings.Lines(r.out) {
			if rest, ok := strings.CutPrefix(l, "--- "); ok {
				name, _, _ := strings.Cut(rest[strings.Index(rest, ": ")+2:], " (")
				out = append(out, name)
			}
		}
		return out
	}
	for _, tc := range []struct {
		run  string
		want []string
		code int
	}{
		{"double/wrong value", []string{"double/wrong value"}, ExitFailure},
		{"double/wrong_value", []string{"double/wrong value"}, ExitFailure}, // go test's spelling still matches
		{"^double$/^two$", []string{"double/two"}, ExitOK},
		{"double", []string{"double/two", "double/wrong value"}, ExitFailure},
		{"two", []string{"double/two", "half/two halves"}, ExitOK}, // no slash: flow or case name
		{"/two", []string{"double/two", "half/two halves"}, ExitOK},
		{"half/", []string{"half/two halves"}, ExitOK},
	} {
		r := flowrun(t, "", "test", file, "--run", tc.run)
		assert.Equal(t, tc.want, ran(r), tc.run)
		assert.Equal(t, tc.code, r.code, "%s: %s", tc.run, r.out)
	}
	r := flowrun(t, "", "test", file)
	assert.Contains(t, r.out, "--- FAIL: double/wrong value (", "names as written in the YAML")

	r = flowrun(t, "", "test", file, "--run", "double/wrong valeu")
	assert.Equal(t, ExitFailure, r.code, "zero cases run is a failure")
	assert.Contains(t, r.out, `FAIL: --run "double/wrong valeu" matches none of the 3 test cases`)
	r = flowrun(t, "", "test", file, "--run", "nothing", "--allow-empty")
	assert.Equal(t, ExitOK, r.code, r.out)
	assert.Contains(t, r.out, "0 passed, 0 failed")

	noTests := writeFile(t, "none.yaml", "flows:\n  f:\n    steps: [{set: {y: \"1\"}}]\n")
	r = flowrun(t, "", "test", noTests)
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.out, "FAIL: no test cases in "+noTests)
	assert.Equal(t, ExitOK, flowrun(t, "", "test", noTests, "--allow-empty").code)

	r = flowrun(t, "", "test", file, "--run", "a(")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, "--run: error parsing regexp")
}

func TestConfigFromStdin(t *testing.T) {
	r := flowrun(t, namedCasesYAML, "validate", "-")
	assert.Equal(t, ExitOK, r.code, r.errOut)
	assert.Contains(t, r.out, "ok: 2 flows, 3 test cases in stdin")

	r = flowrun(t, namedCasesYAML, "test", "-", "--run", "half")
	assert.Equal(t, ExitOK, r.code, r.out)
	assert.Contains(t, r.out, "--- PASS: half/two halves")

	r = flowrun(t, namedCasesYAML, "graph", "-", "--flow", "half", "--format", "mermaid")
	assert.Equal(t, ExitOK, r.code, r.errOut)
	assert.Contains(t, r.out, "flowchart")

	r = flowrun(t, "flows:\n  f:\n    steps:\n      - set: {y: \"1 +\"}\n", "validate", "-")
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, "stdin:4:22: ")

	other := writeFile(t, "other.yaml", "flows:\n  g:\n    steps: [{set: {z: \"2\"}}]\n")
	r = flowrun(t, namedCasesYAML, "validate", other, "-")
	assert.Equal(t, ExitOK, r.code, r.errOut)
	assert.Contains(t, r.out, "ok: 3 flows")
	r = flowrun(t, namedCasesYAML, "validate", "-", "-")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, "given twice")
	r = flowrun(t, "{}", "run", "-", "--input", "-")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, "standard input (-) can be read once")
}

func TestBatchFlagsNeedJSONL(t *testing.T) {
	file := writeFile(t, "orders.yaml", ordersYAML)
	for _, args := range [][]string{{"--out", "x.jsonl"}, {"--workers", "4"}, {"--progress", "none"}} {
		r := flowrun(t, "", append([]string{"run", file}, args...)...)
		assert.Equal(t, ExitUsage, r.code, args)
		assert.Contains(t, r.errOut, args[0]+": batch flags need --jsonl FILE", args)
		assert.Empty(t, r.out, "nothing ran")
	}
	_, err := os.Stat("x.jsonl")
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestEval(t *testing.T) {
	r := flowrun(t, "", "eval", "sum(map(items, #.price * #.qty))", "--input", `{"items": [{"price": 2, "qty": 3}, {"price": 1, "qty": 1}]}`)
	require.Equal(t, ExitOK, r.code, r.errOut)
	assert.Equal(t, "7\ntype: number\n", r.out)

	r = flowrun(t, `{"tier": "gold", "n": 12345678901234567891}`, "eval", `{"gold": tier == "gold", "n": n}`, "--input", "-")
	require.Equal(t, ExitOK, r.code, r.errOut)
	assert.Equal(t, "{\n  \"gold\": true,\n  \"n\": 12345678901234567891\n}\ntype: map\n", r.out, "numbers keep their digits")

	r = flowrun(t, "", "eval", "len(items) >", "--input", `{"items": []}`)
	assert.Equal(t, ExitFailure, r.code)
	assert.Equal(t, "flowrun eval: expr \"len(items) >\" at 1:13: unexpected token EOF\n  len(items) >\n              ^\n", r.errOut)

	r = flowrun(t, "", "eval", "price * qty", "--input", `{"price": "x", "qty": 2}`)
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, `at 1:7: invalid operation: string * float64 (price: string, qty: number)`)

	r = flowrun(t, "", "eval", "total > 1")
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, `unknown key "total" (the input is empty: give one with --input)`)

	r = flowrun(t, "", "eval", "n + 1", "--cond", "--input", `{"n": 1}`)
	assert.Equal(t, ExitFailure, r.code, "a condition must be a bool")

	r = flowrun(t, "", "eval", "[1, 'a', nil]")
	require.Equal(t, ExitOK, r.code, r.errOut)
	assert.True(t, strings.HasSuffix(r.out, "type: list\n"), r.out)

	r = flowrun(t, "", "eval")
	assert.Equal(t, ExitUsage, r.code)
}

func TestCompletionBash(t *testing.T) {
	r := flowrun(t, "", "completion", "bash")
	require.Equal(t, ExitOK, r.code, r.errOut)
	script := writeFile(t, "flowrun.bash", r.out)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	complete := func(words ...string) string {
		t.Helper()
		cmd := exec.Command(bash, "--norc", "-c", `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($#-1)); _flowrun; printf '%s\n' "${COMPREPLY[@]}"`, "x", script)
		cmd.Args = append(cmd.Args, words...)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return strings.TrimSpace(string(out))
	}
	assert.Equal(t, "run", complete("flowrun", "ru"))
	assert.Equal(t, "messages", complete("flowrun", "mes"))
	assert.Equal(t, "--flow", complete("flowrun", "run", "x.yaml", "--fl"))
	assert.Equal(t, "--allow-empty\n--allow-shell", complete("flowrun", "test", "--allow"))
	assert.Equal(t, "dot\nmermaid", complete("flowrun", "graph", "x.yaml", "--format", ""))
	assert.Equal(t, "dead", complete("flowrun", "messages", "--state", "de"))
	assert.Equal(t, "bash\nzsh\nfish", complete("flowrun", "completion", ""))
}

func TestCompletionZshAndFish(t *testing.T) {
	for _, shell := range []string{"zsh", "fish"} {
		r := flowrun(t, "", "completion", shell)
		require.Equal(t, ExitOK, r.code, r.errOut)
		assert.Contains(t, r.out, "eval", "every command")
		assert.Contains(t, r.out, "allow-empty", "every flag")
		t.Run(shell, func(t *testing.T) {
			checkShellScript(t, shell, r.out)
		})
	}
	r := flowrun(t, "", "completion", "bsh")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, `unknown shell "bsh": expected bash, zsh or fish (did you mean "bash"?)`)
}

// checkShellScript checks a completion script with the shell itself
// (skipped when the shell is not installed).
func checkShellScript(t *testing.T, shell, text string) {
	path, err := exec.LookPath(shell)
	if err != nil {
		t.Skipf("%s is not installed: its completion script is not checked", shell)
	}
	script := writeFile(t, "flowrun."+shell, text)
	out, err := exec.Command(path, "-n", script).CombinedOutput()
	assert.NoError(t, err, "%s -n: %s", shell, out)
	if shell == "fish" {
		out, err := exec.Command(path, "--no-config", "-c", "source "+script+"; complete -C 'flowrun mess'; complete -C 'flowrun run --fl'; complete -C 'flowrun graph --format '").CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), "messages\t")
		assert.Contains(t, string(out), "--flow\t")
		assert.Contains(t, string(out), "mermaid\t")
	}
}

func TestVersionText(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Path: "github.com/svcflow/svcflow/cmd/flowrun",
		Main: debug.Module{Path: "github.com/svcflow/svcflow", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123abc"},
			{Key: "vcs.time", Value: "2026-11-30T01:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	assert.Equal(t, `flowrun v1.4.0
module: github.com/svcflow/svcflow v1.4.0
program: github.com/svcflow/svcflow/cmd/flowrun
go: go1.26.0
commit: git 0123abc (2026-11-30T01:00:00Z, modified)
`, versionText(info))
	info.Settings = nil
	assert.Contains(t, versionText(info), "commit: unknown (built without version control information)")

	r := flowrun(t, "", "version")
	require.Equal(t, ExitOK, r.code)
	assert.Contains(t, r.out, "go: go1.")
	assert.Equal(t, r, flowrun(t, "", "--version"))
	assert.Equal(t, ExitUsage, flowrun(t, "", "version", "extra").code)
}

// TestMessagesErrors: the errors of flowrun messages name what is wrong:
// a missing ID, a missing store (nothing is created), an unknown message.
func TestMessagesErrors(t *testing.T) {
	file, data := messagesStore(t, func(ctx context.Context, s store.Store) {
		require.NoError(t, s.Put(ctx, &message.Message{ID: "m1", ContentType: message.ContentTypeJSON, Payload: []byte(`{"items": [1]}`)}))
	})
	messages := func(args ...string) result {
		t.Helper()
		return flowrun(t, "", append([]string{"messages", file, "--channel", "c", "--data", data}, args...)...)
	}
	r := messages("show")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, "flowrun messages: show: expected a message ID")
	r = messages("replay")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, "replay: expected a message ID, or --all with --state")
	r = messages("show", "nope")
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, `flowrun messages: no message "nope" in the channel's store`)
	r = messages("replay", "--all")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, "give --state")
	r = messages("--from", "x")
	assert.Equal(t, ExitUsage, r.code)
	r = messages("--state", "daed")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, `(did you mean "dead"?)`)
	r = flowrun(t, "", "messages", file, "--channel", "cc")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, `no channel "cc" (channels: c) (did you mean "c"?)`)

	// A store that does not exist is refused, and not created.
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo", "c.db")
	conf := writeFile(t, "m.yaml", strings.Replace(messagesYAML, "STORE", missing, 1))
	r = flowrun(t, "", "messages", conf, "--channel", "c")
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, "no such store: "+missing+": stat "+missing+": no such file or directory (nothing was created)")
	assert.NoDirExists(t, filepath.Join(dir, "typo"))

	// The default store: data/ beside the file, unless --data says.
	conf = writeFile(t, "d.yaml", strings.Replace(messagesYAML, "    store: {sqlite: STORE}\n", "", 1))
	r = flowrun(t, "", "messages", conf, "--channel", "c")
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, filepath.Join(filepath.Dir(conf), "data", "c.db")+": stat")
	r = flowrun(t, "", "messages", conf, "--channel", "c", "--data", filepath.Join(dir, "elsewhere"))
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, filepath.Join(dir, "elsewhere", "c.db")+": stat")
	assert.NoDirExists(t, filepath.Join(dir, "elsewhere"))
	assert.NoDirExists(t, filepath.Join(filepath.Dir(conf), "data"))

	mem := writeFile(t, "mem.yaml", strings.Replace(messagesYAML, "{sqlite: STORE}", "memory:", 1))
	r = flowrun(t, "", "messages", mem, "--channel", "c")
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, "no such store: a memory store keeps nothing once its process ends")
}

// TestReplayDeadLetters: replay --state dead --all replays every dead
// letter, oldest first; replay ID --from STEP skips the steps before.
func TestReplayDeadLetters(t *testing.T) {
	const yaml = `flows:
  orders:
    input: [items]
    steps:
      - name: charge
        set: {charged: "len(items) * 10"}
      - name: ship
        set: {shipped: "charged + 1"}
channels:
  c:
    from: {http: {listen: "127.0.0.1:0", path: /orders}}
    flow: orders
    store: {sqlite: STORE}
`
	dir := t.TempDir()
	path := filepath.Join(dir, "c.db")
	file := writeFile(t, "c.yaml", strings.Replace(yaml, "STORE", path, 1))
	s := openSQLite(t, path)
	ctx := t.Context()
	for _, m := range []struct{ id, state string }{{"d1", "dead"}, {"d2", "dead"}, {"e1", "error"}, {"ok1", "done"}} {
		require.NoError(t, s.Begin(ctx, &message.Message{ID: m.id, ContentType: message.ContentTypeJSON, Payload: []byte(`{"items": [1, 2]}`)}))
		require.NoError(t, s.Transition(ctx, m.id, store.State(m.state), store.Update{Err: "x", Context: map[string]any{"items": []any{1.0, 2.0}, "charged": 99.0}}))
	}
	require.NoError(t, s.Close())

	r := flowrun(t, "", "messages", file, "--channel", "c", "replay", "--all", "--state", "dead")
	require.Equal(t, ExitOK, r.code, r.errOut)
	assert.Equal(t, "d1\tdone\nd2\tdone\n", r.out)
	assert.Contains(t, r.errOut, "replayed 2 messages: 2 done")
	r = flowrun(t, "", "messages", file, "--channel", "c", "--state", "dead")
	assert.Contains(t, r.out, "0 of 0 messages")

	r = flowrun(t, "", "messages", file, "--channel", "c", "replay", "e1", "--from", "ship")
	require.Equal(t, ExitOK, r.code, r.errOut)
	assert.Contains(t, r.out, `"shipped": 100`, "ship ran on the stored context: charge did not run again")
	assert.Contains(t, r.out, `"charged": 99`)

	r = flowrun(t, "", "messages", file, "--channel", "c", "replay", "ok1", "--from", "nope")
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, `flow "orders" has no step "nope" (steps: charge, ship)`)
	r = flowrun(t, "", "messages", file, "--channel", "c", "--state", "done")
	assert.Contains(t, r.out, "ok1", "left as it was")
}

func openSQLite(t *testing.T, path string) store.Store {
	t.Helper()
	st, err := sqlite.Open(path)
	require.NoError(t, err)
	return st
}

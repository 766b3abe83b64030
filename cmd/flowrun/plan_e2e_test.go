package main_test

// End-to-end test of the production change workflow against flowrun
// serve run as a child process: plan, review, apply under load (no
// request lost or run twice: the record step appends each run's message
// id to a file), verify, a destructive plan refused, a stale plan
// refused, rollback, and the admin token.

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const planV1 = `version: 1
flows:
  orders:
    input: [key]
    steps:
      - set: {ids: "[key]"}
      - each: {over: ids, steps: [{use: record, name: run}]}
      - set: {version: "'v1'"}
  stats:
    steps:
      - set: {ok: "true"}
channels:
  intake:
    from: {http: {listen: "ADDR", path: /orders}}
    flow: orders
  stats:
    from: {http: {listen: "ADDR", path: /stats}}
    flow: stats
    store: memory:
`

func TestPlanApplyVerifyRollbackEndToEnd(t *testing.T) {
	bin := durablerunBin(t)
	dir, data := t.TempDir(), t.TempDir()
	addr, admin := freeAddr(t), freeAddr(t)
	record := filepath.Join(dir, "record.txt")
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(text, "ADDR", addr)), 0o644))
		return path
	}
	v1 := write("v1.yaml", planV1)
	v2 := write("v2.yaml", strings.Replace(planV1, `"'v1'"`, `"'v2'"`, 1)+`  audit:
    from: {http: {listen: "ADDR", path: /audit}}
    flow: stats
    store: memory:
`)
	v3 := write("v3.yaml", strings.Replace(planV1, "  stats:\n    from: {http: {listen: \"ADDR\", path: /stats}}\n    flow: stats\n    store: memory:\n", "", 1))

	c := &child{log: filepath.Join(t.TempDir(), "serve.log"), done: make(chan error, 1)}
	logf, err := os.Create(c.log)
	require.NoError(t, err)
	defer logf.Close()
	c.cmd = exec.Command(bin, "serve", v1, "--data", data, "--admin", admin, "--drain", "10s")
	c.cmd.Env = append(withoutToken(os.Environ()), "SVCFLOW_RECORD="+record)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	require.NoError(t, c.cmd.Start())
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { _ = c.cmd.Process.Kill() })
	c.listening(t, addr)

	// The token file: made at start, owner only.
	fi, err := os.Stat(filepath.Join(data, "admin-token"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	run := func(args ...string) result {
		t.Helper()
		return binIn(t, bin, dir, append([]string{args[0]}, append(args[1:], "--server", admin, "--data", data)...)...)
	}
	r := run("plan", v2, "--out", "plan.json")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, "change flow orders: steps: step 3: {set: {version:")
	assert.Contains(t, r.out, "add    channel audit")
	assert.Contains(t, r.out, "2 change(s): 2 safe, 0 destructive")
	r = binIn(t, bin, dir, "plan", "--review", "plan.json")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, "plan for "+admin)

	r = run("plan", v3, "--out", "plan3.json")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, "! destructive remove channel stats")
	r = run("apply", "plan3.json")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.errOut, "refused: the plan has destructive changes")

	r = binIn(t, bin, dir, "apply", "plan.json", "--server", admin, "--token", "wrong")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.errOut, "401 Unauthorized")

	// Apply while 32 clients send orders.
	const clients, each = 32, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	versions := map[string]int{}
	started := make(chan struct{})
	var once sync.Once
	for n := range clients {
		wg.Go(func() {
			for i := range each {
				if i == 3 {
					once.Do(func() { close(started) })
				}
				key := fmt.Sprintf("c%d-%d", n, i)
				for {
					a := postKey("http://"+addr+"/orders", key, `{"key": "`+key+`"}`)
					if a.err == nil && (a.code == http.StatusServiceUnavailable || a.code == http.StatusConflict) {
						time.Sleep(5 * time.Millisecond)
						continue
					}
					if assert.NoError(t, a.err) && assert.Equal(t, 200, a.code, "%s: %v", key, a.body) {
						mu.Lock()
						versions[fmt.Sprint(a.body["version"])]++
						mu.Unlock()
					}
					break
				}
			}
		})
	}
	<-started
	r = run("apply", "plan.json")
	require.Equal(t, 0, r.code, r.errOut+"\n"+c.logText())
	assert.Contains(t, r.out, "channels replaced: intake")
	assert.Contains(t, r.out, "channels started: audit")
	assert.Contains(t, r.out, "channels kept: stats")
	backup := regexp.MustCompile(`backup: (\S+)`).FindStringSubmatch(r.out)
	require.NotNil(t, backup, r.out)
	wg.Wait()

	b, err := os.ReadFile(record)
	require.NoError(t, err)
	runs := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		runs[strings.TrimPrefix(line, "run ")]++
	}
	delete(runs, "after")
	assert.Len(t, runs, clients*each, "every order ran")
	for id, n := range runs {
		assert.Equal(t, 1, n, "order %s ran %d times", id, n)
	}
	assert.Equal(t, clients*each, versions["v1"]+versions["v2"], "%v", versions)
	t.Logf("answers by version: %v", versions)

	a := postKey("http://"+addr+"/orders", "after", `{"key": "after"}`)
	assert.Equal(t, "v2", a.body["version"])
	r = run("verify", "plan.json")
	assert.Equal(t, 0, r.code, r.out+r.errOut)
	assert.Contains(t, r.out, "applied: the server runs the plan's configuration")

	// plan3 was made against v1: stale now.
	r = run("apply", "plan3.json", "--allow-destructive")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.errOut, "409 Conflict")
	assert.Contains(t, r.errOut, "stale plan")

	// Roll back: v1 again, audit gone; the plan is no longer applied.
	r = binIn(t, bin, dir, "rollback", backup[1], "--server", admin)
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, "channels stopped: audit")
	a = postKey("http://"+addr+"/orders", "rolled-back", `{"key": "rolled-back"}`)
	assert.Equal(t, "v1", a.body["version"])
	assert.Equal(t, http.StatusNotFound, postKey("http://"+addr+"/audit", "x", `{}`).code)
	r = run("verify", "plan.json")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.out, "not applied: 2 change(s)")

	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, c.exit(t), c.logText())
}

// binIn runs the flowrun bin in dir, without FLOWRUN_ADMIN_TOKEN.
func binIn(t *testing.T, bin, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = withoutToken(os.Environ())
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

// withoutToken drops FLOWRUN_ADMIN_TOKEN from an environment.
func withoutToken(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "FLOWRUN_ADMIN_TOKEN=") {
			out = append(out, kv)
		}
	}
	return out
}

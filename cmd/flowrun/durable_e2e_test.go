package main_test

// End-to-end tests of durable runs (`durable: steps`) against flowrun
// serve run as a child process that a step kills with SIGKILL: after a
// restart, completed steps (Each elements, All branches) are not run
// again, counted in a file the steps append to; timers and signals
// survive restarts; a changed flow is not resumed blindly.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/store"
)

var (
	durableOnce sync.Once
	durableBin  string
	durableErr  error
)

// durablerunBin builds testdata/durablerun, flowrun with a step that
// records its runs in a file and kills its process once.
func durablerunBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a flowrun")
	}
	bin := flowrunBin(t) // also skips without the go command
	durableOnce.Do(func() {
		durableBin = filepath.Join(filepath.Dir(bin), "durablerun")
		out, err := exec.Command("go", "build", "-o", durableBin, "./testdata/durablerun").CombinedOutput()
		if err != nil {
			durableErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, durableErr)
	return durableBin
}

const durableYAML = `version: 1
flows:
  five:
    steps:
      - {use: record, name: s1}
      - {use: record, name: s2}
      - {use: record, name: s3, with: {kill: true}}
      - {use: record, name: s4}
      - {use: record, name: s5}
  each:
    input: [items]
    steps:
      - {use: record, name: e1}
      - each: {over: items, steps: [{use: record, name: elem, with: {kill_item: 3}}]}
      - {use: record, name: e5}
  all:
    steps:
      - {use: record, name: a1}
      - all: {limit: 1, steps: [{use: record, name: left}, {use: record, name: mid, with: {kill: true}}, {use: record, name: right}]}
      - {use: record, name: a5}
  nap:
    steps:
      - {use: record, name: n1}
      - sleep: 2s
      - {use: record, name: n5}
  approve:
    steps:
      - {use: record, name: p1}
      - wait: {signal: approved, into: approval}
      - {use: record, name: p5}
  saga:
    steps:
      - saga:
          - {use: record, name: c1, compensate: {use: record, name: u1}}
          - {use: record, name: c2, compensate: {use: record, name: u2, with: {kill: true}}}
          - {use: record, name: c3, compensate: {use: record, name: u3}}
          - {use: record, name: charge, with: {fail: true}}
  lines:
    input: [items]
    steps:
      - each: {over: items, steps: [{use: record, name: ask}, {wait: approved}, {use: record, name: ship}]}
      - {use: record, name: l5}
  branches:
    steps:
      - all: [{use: record, name: left}, {then: [{use: record, name: pre}, {wait: approved}, {use: record, name: post}]}]
      - {use: record, name: b5}
  poll:
    input: [n]
    steps:
      - until: {if: "n >= 2", steps: [{set: {n: "n + 1"}}, {use: record, name: tick}, {sleep: 1100ms}]}
      - {use: record, name: t5}
channels:
  c:
    from:
      - {http: {listen: "ADDR", path: /five}}
    flow: FLOW
    durable: steps
`

// durableRig is one flowrun serve child process and what its steps
// record.
type durableRig struct {
	t                     *testing.T
	bin, file, data, addr string
	record, marker, admin string
	args                  []string
	env                   []string // more environment of serve
}

func newDurableRig(t *testing.T, flowName string) *durableRig {
	bin := durablerunBin(t)
	dir := t.TempDir()
	r := &durableRig{t: t, bin: bin, data: t.TempDir(), addr: freeAddr(t), admin: freeAddr(t),
		record: filepath.Join(dir, "record.txt"), marker: filepath.Join(dir, "marker")}
	r.file = filepath.Join(dir, "durable.yaml")
	r.write(flowName, nil)
	r.args = []string{r.file, "--data", r.data, "--admin", r.admin, "--drain", "5s"}
	return r
}

// write writes the configuration serving flow, with edit applied.
func (r *durableRig) write(flowName string, edit func(string) string) {
	text := strings.NewReplacer("ADDR", r.addr, "FLOW", flowName).Replace(durableYAML)
	if edit != nil {
		text = edit(text)
	}
	require.NoError(r.t, os.WriteFile(r.file, []byte(text), 0o644))
}

// serve starts flowrun serve with the recorder's environment.
func (r *durableRig) serve() *child {
	r.t.Helper()
	c := &child{log: filepath.Join(r.t.TempDir(), "serve.log"), done: make(chan error, 1)}
	f, err := os.Create(c.log)
	require.NoError(r.t, err)
	r.t.Cleanup(func() { f.Close() })
	c.cmd = exec.Command(r.bin, append([]string{"serve"}, r.args...)...)
	c.cmd.Env = append(append(os.Environ(), "SVCFLOW_RECORD="+r.record, "SVCFLOW_MARKER="+r.marker), r.env...)
	c.cmd.Stdout, c.cmd.Stderr = f, f
	require.NoError(r.t, c.cmd.Start())
	go func() { c.done <- c.cmd.Wait() }()
	r.t.Cleanup(func() { _ = c.cmd.Process.Kill() })
	return c
}

// lines returns what the steps recorded.
func (r *durableRig) lines() []string {
	b, _ := os.ReadFile(r.record)
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
}

// count returns how many times each recorded line appears.
func (r *durableRig) count() map[string]int {
	out := map[string]int{}
	for _, l := range r.lines() {
		out[l]++
	}
	return out
}

// until waits for the line to be recorded.
func (r *durableRig) until(line string, c *child) {
	r.t.Helper()
	if !assert.Eventually(r.t, func() bool { return r.count()[line] > 0 }, 30*time.Second, 10*time.Millisecond) {
		r.t.Fatalf("%q never recorded (%v); serve log:\n%s", line, r.lines(), c.logText())
	}
}

func (r *durableRig) stop(c *child) {
	r.t.Helper()
	require.NoError(r.t, c.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(r.t, 0, c.exit(r.t), c.logText())
}

// killedMidway posts a message whose run kills the process and returns
// once the process died.
func (r *durableRig) killedMidway(key, body string) {
	r.t.Helper()
	c := r.serve()
	c.listening(r.t, r.addr)
	a := postKey("http://"+r.addr+"/five", key, body)
	require.Error(r.t, a.err, "the process died answering")
	require.Equal(r.t, -1, c.exit(r.t), "killed by SIGKILL:\n%s", c.logText())
}

// TestDurableStepsSurviveSIGKILL: the third of five steps kills the
// process on its first run; at the next start the message resumes: steps
// 1-2 are not run again, step 3 is, steps 4-5 run once.
func TestDurableStepsSurviveSIGKILL(t *testing.T) {
	r := newDurableRig(t, "five")
	r.killedMidway("k1", `{"order": 1}`)
	assert.Equal(t, []string{"s1", "s2", "s3_killed"}, r.lines())

	c := r.serve()
	r.until("s5", c)
	r.stop(c)
	assert.Equal(t, map[string]int{"s1": 1, "s2": 1, "s3_killed": 1, "s3": 1, "s4": 1, "s5": 1}, r.count())
	st := openStore(t, r.data)
	rec, err := st.Get(context.Background(), "k1")
	require.NoError(t, err)
	assert.Equal(t, store.Done, rec.State)
	for _, k := range []string{"s1", "s2", "s3", "s4", "s5"} {
		assert.Equal(t, true, rec.Message.Context[k], "the context holds every step's writes, restored ones included")
	}
	assert.Contains(t, string(rec.Message.Trace), `"name":"s1","path":"five/s1"`)
	assert.Contains(t, string(rec.Message.Trace), `"outcome":"resumed"`)
}

// TestDurableEachSurvivesSIGKILL: the elements done before the kill are
// not done again.
func TestDurableEachSurvivesSIGKILL(t *testing.T) {
	r := newDurableRig(t, "each")
	r.killedMidway("k1", `{"items": [1, 2, 3, 4]}`)
	c := r.serve()
	r.until("e5", c)
	r.stop(c)
	assert.Equal(t, map[string]int{"e1": 1, "elem_1": 1, "elem_2": 1, "elem_3_killed": 1, "elem_3": 1, "elem_4": 1, "e5": 1}, r.count())
}

// TestDurableAllSurvivesSIGKILL: the branches done before the kill are
// not done again.
func TestDurableAllSurvivesSIGKILL(t *testing.T) {
	r := newDurableRig(t, "all")
	r.killedMidway("k1", `{}`)
	c := r.serve()
	r.until("a5", c)
	r.stop(c)
	assert.Equal(t, map[string]int{"a1": 1, "left": 1, "mid_killed": 1, "mid": 1, "right": 1, "a5": 1}, r.count())
}

// TestDurableSleepSurvivesSIGKILL: a message parked by a 2s sleep
// survives a SIGKILL and a restart, and wakes once, 2s after it parked
// (within a tolerance: a timer fires late, never early).
func TestDurableSleepSurvivesSIGKILL(t *testing.T) {
	r := newDurableRig(t, "nap")
	c := r.serve()
	c.listening(t, r.addr)
	a := postKey("http://"+r.addr+"/five", "k1", `{}`)
	require.NoError(t, a.err)
	require.Equal(t, 202, a.code, "%v", a.body)
	assert.Equal(t, "waiting", a.body["state"])
	require.NoError(t, c.cmd.Process.Kill())
	require.Equal(t, -1, c.exit(t))
	assert.Equal(t, []string{"n1"}, r.lines())

	c = r.serve()
	r.until("n5", c)
	r.stop(c)
	assert.Equal(t, map[string]int{"n1": 1, "n5": 1}, r.count())
	st := openStore(t, r.data)
	rec, err := st.Get(context.Background(), "k1")
	require.NoError(t, err)
	require.Equal(t, store.Done, rec.State)
	var parked, done time.Time
	for _, h := range rec.History {
		switch h.State {
		case store.Waiting:
			parked = h.At
		case store.Done:
			done = h.At
		}
	}
	slept := done.Sub(parked)
	assert.GreaterOrEqual(t, slept, 2*time.Second, "never early")
	assert.Less(t, slept, 2*time.Second+5*time.Second, "on time, within the tolerance")
}

// TestDurableWaitGetsASignalAfterRestart: a message waiting for a signal
// survives a SIGKILL; after the restart, the signal sent with flowrun
// messages ... signal --admin resumes it once.
func TestDurableWaitGetsASignalAfterRestart(t *testing.T) {
	r := newDurableRig(t, "approve")
	c := r.serve()
	c.listening(t, r.addr)
	a := postKey("http://"+r.addr+"/five", "k1", `{}`)
	require.NoError(t, a.err)
	require.Equal(t, 202, a.code, "%v", a.body)
	require.NoError(t, c.cmd.Process.Kill())
	require.Equal(t, -1, c.exit(t))

	r.env = []string{"FLOWRUN_ADMIN_TOKEN=s3cret"} // the restarted serve requires the token
	c = r.serve()
	c.listening(t, r.addr)
	signal := func(token string, args ...string) *exec.Cmd {
		cmd := exec.Command(r.bin, append([]string{"messages", r.file, "--data", r.data, "--channel", "c", "signal", "k1", "approved", "--admin", r.admin}, args...)...)
		cmd.Env = append(os.Environ(), "FLOWRUN_ADMIN_TOKEN="+token)
		return cmd
	}
	out, err := signal("", "--set", "by=mallory").CombinedOutput()
	require.Error(t, err, "no token: refused")
	assert.Contains(t, string(out), "401")
	out, err = signal("wrong", "--set", "by=mallory").CombinedOutput()
	require.Error(t, err, "a wrong token: refused")
	assert.Contains(t, string(out), "401")
	out, err = signal("s3cret", "--set", "by=ann").CombinedOutput()
	require.NoError(t, err, "%s\nserve log:\n%s", out, c.logText())
	assert.Contains(t, string(out), "signalled k1: done")
	assert.Contains(t, string(out), `"by": "ann"`)
	out, err = signal("", "--token", "s3cret").CombinedOutput()
	require.Error(t, err, "signalled once")
	assert.Contains(t, string(out), "409 Conflict")
	r.stop(c)
	assert.Equal(t, map[string]int{"p1": 1, "p5": 1}, r.count())
}

// TestDurableChangedFlowIsNotResumedBlindly: the flow changes between the
// crash and the restart (a step inserted before the completed ones): the
// message is not resumed into it; it is left in error naming the change,
// and nothing of the new flow runs.
func TestDurableChangedFlowIsNotResumedBlindly(t *testing.T) {
	r := newDurableRig(t, "five")
	r.killedMidway("k1", `{}`)
	r.write("five", func(s string) string {
		return strings.Replace(s, "      - {use: record, name: s2}\n", "      - {use: record, name: x}\n      - {use: record, name: s2}\n", 1)
	})
	c := r.serve()
	c.listening(t, r.addr)
	st := openStore(t, r.data)
	require.Eventually(t, func() bool {
		rec, err := st.Get(context.Background(), "k1")
		return err == nil && rec.State == store.Error
	}, 30*time.Second, 10*time.Millisecond, c.logText())
	r.stop(c)
	rec, err := st.Get(context.Background(), "k1")
	require.NoError(t, err)
	assert.Contains(t, rec.Err, `flow "five" changed since the run journaled step "s2" (five/s2)`)
	assert.Equal(t, map[string]int{"s1": 1, "s2": 1, "s3_killed": 1}, r.count(), "nothing ran again")
}

// TestDurableSagaCompensationSurvivesSIGKILL: a saga fails at its fourth
// step and compensates; the undo of its second step kills the process on
// its first run. After the restart the compensation goes on where it
// stopped: the undo that completed (u3) is not run again, the one killed
// (u2) runs again, u1 runs once, nothing runs forward, and the message
// ends in error.
func TestDurableSagaCompensationSurvivesSIGKILL(t *testing.T) {
	r := newDurableRig(t, "saga")
	r.killedMidway("k1", `{}`)
	assert.Equal(t, []string{"c1", "c2", "c3", "charge_failed", "u3", "u2_killed"}, r.lines())

	c := r.serve()
	r.until("u1", c)
	st := openStore(t, r.data)
	require.Eventually(t, func() bool {
		rec, err := st.Get(context.Background(), "k1")
		return err == nil && rec.State == store.Error
	}, 30*time.Second, 10*time.Millisecond, c.logText())
	r.stop(c)
	assert.Equal(t, map[string]int{"c1": 1, "c2": 1, "c3": 1, "charge_failed": 1, "u3": 1, "u2_killed": 1, "u2": 1, "u1": 1}, r.count())
	rec, err := st.Get(context.Background(), "k1")
	require.NoError(t, err)
	assert.Contains(t, rec.Err, "charge failed")
	assert.Contains(t, string(rec.Message.Trace), `"name":"compensate(c3)","path":"saga/saga/c3/compensate"`)

	// Replayed with --resume, the settled saga runs nothing again.
	out, err := exec.Command(r.bin, "messages", r.file, "--data", r.data, "--channel", "c", "replay", "k1", "--resume").CombinedOutput()
	require.Error(t, err, "%s", out)
	assert.Contains(t, string(out), "charge failed")
	assert.Equal(t, map[string]int{"c1": 1, "c2": 1, "c3": 1, "charge_failed": 1, "u3": 1, "u2_killed": 1, "u2": 1, "u1": 1}, r.count())
}

// signalAdmin sends the signal approved to message k1 through the admin
// address of the running serve and returns the command's output.
func (r *durableRig) signalAdmin(c *child) string {
	r.t.Helper()
	out, err := exec.Command(r.bin, "messages", r.file, "--data", r.data, "--channel", "c", "signal", "k1", "approved", "--admin", r.admin).CombinedOutput()
	require.NoError(r.t, err, "%s\nserve log:\n%s", out, c.logText())
	return string(out)
}

// TestDurableWaitInEachSurvivesSIGKILL: a wait in each element of an Each
// parks the message at the element's wait; it survives SIGKILLs, and each
// signal after a restart resumes it into its element (the steps before
// the wait are not run again) until the next element waits.
func TestDurableWaitInEachSurvivesSIGKILL(t *testing.T) {
	r := newDurableRig(t, "lines")
	c := r.serve()
	c.listening(t, r.addr)
	a := postKey("http://"+r.addr+"/five", "k1", `{"items": [1, 2]}`)
	require.NoError(t, a.err)
	require.Equal(t, 202, a.code, "%v", a.body)
	for _, want := range []string{"waiting", "done"} {
		require.NoError(t, c.cmd.Process.Kill())
		require.Equal(t, -1, c.exit(t))
		c = r.serve()
		c.listening(t, r.addr)
		assert.Contains(t, r.signalAdmin(c), "signalled k1: "+want)
	}
	r.stop(c)
	assert.Equal(t, map[string]int{"ask_1": 1, "ship_1": 1, "ask_2": 1, "ship_2": 1, "l5": 1}, r.count())
}

// TestDurableWaitInAllSurvivesSIGKILL: a wait in one branch of an All
// parks the message once the other branch is done; after a SIGKILL and a
// restart the signal resumes it into that branch at the wait.
func TestDurableWaitInAllSurvivesSIGKILL(t *testing.T) {
	r := newDurableRig(t, "branches")
	c := r.serve()
	c.listening(t, r.addr)
	a := postKey("http://"+r.addr+"/five", "k1", `{}`)
	require.NoError(t, a.err)
	require.Equal(t, 202, a.code, "%v", a.body)
	require.NoError(t, c.cmd.Process.Kill())
	require.Equal(t, -1, c.exit(t))
	c = r.serve()
	c.listening(t, r.addr)
	assert.Contains(t, r.signalAdmin(c), "signalled k1: done")
	r.stop(c)
	assert.Equal(t, map[string]int{"left": 1, "pre": 1, "post": 1, "b5": 1}, r.count())
}

// TestDurableSleepInUntilSurvivesSIGKILL: a durable sleep in an Until
// loop parks the message in each round; killed while it waits, the
// restarted process wakes it on time, the loop goes on, and no round runs
// twice.
func TestDurableSleepInUntilSurvivesSIGKILL(t *testing.T) {
	r := newDurableRig(t, "poll")
	c := r.serve()
	c.listening(t, r.addr)
	a := postKey("http://"+r.addr+"/five", "k1", `{"n": 0}`)
	require.NoError(t, a.err)
	require.Equal(t, 202, a.code, "%v", a.body)
	require.NoError(t, c.cmd.Process.Kill())
	require.Equal(t, -1, c.exit(t))
	assert.Equal(t, []string{"tick"}, r.lines())
	c = r.serve()
	r.until("t5", c)
	r.stop(c)
	assert.Equal(t, map[string]int{"tick": 2, "t5": 1}, r.count())
	st := openStore(t, r.data)
	rec, err := st.Get(context.Background(), "k1")
	require.NoError(t, err)
	assert.Equal(t, store.Done, rec.State)
	assert.Equal(t, 2.0, rec.Message.Context["n"])
}

package storetest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
)

// killEnv names the environment variable that makes a test binary run by
// RunKill a writer child; it holds the storage place.
const killEnv = "STORETEST_KILL_PLACE"

// killRoundEnv numbers the child's round, so that its message IDs are new.
const killRoundEnv = "STORETEST_KILL_ROUND"

// ackPrefix starts each line a writer child prints for a write that
// returned without error.
const ackPrefix = "storetest-ack "

// KillOptions tune [RunKill]. The zero value is the default.
type KillOptions struct {
	// Kills is how many times a writer process is killed (0: 20).
	Kills int
	// Writers is how many goroutines of the child write at once (0: 32).
	Writers int
}

// RunKill checks that what a store told a caller is written survives a
// SIGKILL of the process: a write that returned without error is in the
// store when it is opened again, whatever the kill interrupted (a batch
// being committed, a file being renamed).
//
// It runs the test binary again as a child process running the calling
// test alone (t must be a top-level test, or a subtest whose name is
// unique), which opens the store and writes from many goroutines at once:
// Begin then Transition to Done of new messages, printing a line after
// each write that returned. It kills the child with SIGKILL after a
// number of writes that varies from one kill to the next, opens the store
// in this process and checks that every write the child printed is
// there, and does that opt.Kills times on the same storage.
//
// place is called once, in this process only, to make the storage (a
// file path, a database URL); open opens the store at place, in this
// process and in the child, which gets place through its environment.
// RunKill closes what it opens.
func RunKill(t *testing.T, opt KillOptions, place func(t *testing.T) string, open func(t *testing.T, place string) store.Store) {
	if p := os.Getenv(killEnv); p != "" {
		killChild(t, opt, open(t, p))
		return
	}
	if opt.Kills <= 0 {
		opt.Kills = 20
	}
	p := place(t)
	pattern := make([]string, 0, 2)
	for _, part := range strings.Split(t.Name(), "/") {
		pattern = append(pattern, "^"+regexp.QuoteMeta(part)+"$")
	}
	run := strings.Join(pattern, "/")
	total := 0
	for round := range opt.Kills {
		// A kill after 1, 54, 107, ... writes: early ones land while the
		// first batches commit, later ones in the thick of it.
		after := 1 + (round*53)%240
		acked := killOnce(t, run, p, round, after)
		total += len(acked)
		s := open(t, p)
		checkAcked(t, s, round, acked)
		require.NoError(t, s.Close())
		if t.Failed() {
			return
		}
	}
	t.Logf("%d kills, %d acknowledged writes checked", opt.Kills, total)
}

// ack is one write a child reported done.
type ack struct {
	id    string
	state store.State
}

// killOnce runs a writer child, kills it after it reported after writes
// and returns every write it reported.
func killOnce(t *testing.T, run, place string, round, after int) []ack {
	cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.count=1")
	cmd.Env = append(os.Environ(), killEnv+"="+place, fmt.Sprintf("%s=%d", killRoundEnv, round))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	var acked []ack
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), ackPrefix)
		if !ok {
			continue
		}
		state, id, _ := strings.Cut(line, " ")
		acked = append(acked, ack{id: id, state: store.State(state)})
		if !killed && len(acked) >= after {
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("round %d: the writer child ended by itself after %d writes (%v): %s", round, len(acked), err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: the writer child was not killed: %v: %s", round, err, stderr.String())
	}
	return acked
}

// checkAcked checks that every acknowledged write of a round is in s.
func checkAcked(t *testing.T, s store.Store, round int, acked []ack) {
	ctx := context.Background()
	for _, a := range acked {
		rec, err := s.Get(ctx, a.id)
		if !assert.NoError(t, err, "round %d: %s was acknowledged %s", round, a.id, a.state) {
			continue
		}
		switch a.state {
		case store.Processing:
			assert.Contains(t, []store.State{store.Processing, store.Done}, rec.State, "round %d: %s", round, a.id)
		case store.Done:
			assert.Equal(t, store.Done, rec.State, "round %d: %s", round, a.id)
			assert.Equal(t, map[string]any{"id": a.id}, rec.Message.Context, "round %d: %s", round, a.id)
		}
	}
	// The store is whole: it counts what it holds and takes new writes.
	_, err := s.Count(ctx, store.Query{})
	require.NoError(t, err, "round %d", round)
	m := &message.Message{ID: fmt.Sprintf("after-%d", round), Time: base, ContentType: "text/plain", Payload: []byte("x")}
	require.NoError(t, s.Begin(ctx, m), "round %d", round)
}

// killChild writes from many goroutines until the process is killed,
// printing each write that returned without error.
func killChild(t *testing.T, opt KillOptions, s store.Store) {
	if opt.Writers <= 0 {
		opt.Writers = 32
	}
	round := os.Getenv(killRoundEnv)
	var mu sync.Mutex
	report := func(state store.State, id string) {
		mu.Lock()
		defer mu.Unlock()
		if _, err := os.Stdout.WriteString(ackPrefix + string(state) + " " + id + "\n"); err != nil {
			os.Exit(3) // the parent is gone
		}
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "writer child:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	for w := range opt.Writers {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("kill-%s-%d-%d", round, w, i)
				m := &message.Message{ID: id, Time: time.Now(), ContentType: "application/json", Payload: []byte(`{"n":1}`)}
				if err := s.Begin(ctx, m); err != nil {
					fail(err)
				}
				report(store.Processing, id)
				if err := s.Transition(ctx, id, store.Done, store.Update{Context: map[string]any{"id": id}}); err != nil {
					fail(err)
				}
				report(store.Done, id)
			}
		}()
	}
	select {} // until killed
}

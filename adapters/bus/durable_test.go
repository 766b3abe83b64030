package bus_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/bus"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// owed stores a message as a process that crashed before running it left
// it: pending, or processing runs times.
func owed(t *testing.T, st store.Store, id, dest, action, payload string, runs int) {
	t.Helper()
	m := message.New(message.ContentTypeJSON, []byte(payload), map[string]string{bus.MetaDestination: dest, bus.MetaAction: action, bus.MetaFrom: "sensor"})
	m.ID = id
	require.NoError(t, st.Put(t.Context(), m))
	for range runs {
		require.NoError(t, st.Transition(t.Context(), id, store.Processing, store.Update{}))
	}
}

func TestDurableMailboxRecordsBeforeDeliveryAndOutcomesAfter(t *testing.T) {
	st := store.NewMemory()
	defer st.Close()
	var seenState store.State
	act := flow.Step("check", func(ctx context.Context, c *fc.Context) error {
		meta, _ := c.Get("meta")
		rec, err := st.Get(ctx, meta.(map[string]any)["id"].(string))
		if err != nil {
			return err
		}
		seenState = rec.State
		if v, _ := c.Get("reject"); v == true {
			return errors.Stop("bad reading")
		}
		c.Set("ok", true)
		return nil
	})
	b := newBus(t, bus.Options{Store: st}, bus.Service{Name: "svc", Actions: bus.Actions{bus.Process: act}})
	_, err := b.Request(t.Context(), "svc", bus.Process, map[string]any{"n": 1})
	require.NoError(t, err)
	assert.Equal(t, store.Processing, seenState, "recorded before the run, processing while it runs")
	_, err = b.Request(t.Context(), "svc", bus.Process, map[string]any{"reject": true})
	require.Error(t, err)
	stop(t, b)

	recs, err := st.Search(t.Context(), store.Query{Meta: map[string]string{bus.MetaDestination: "svc"}})
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Equal(t, store.Done, recs[0].State)
	assert.Equal(t, true, recs[0].Message.Context["ok"])
	assert.Equal(t, []store.State{store.Pending, store.Processing, store.Done}, states(recs[0]))
	assert.Equal(t, bus.Process, recs[0].Message.Meta[bus.MetaAction])
	assert.Equal(t, store.Rejected, recs[1].State)
	assert.Equal(t, "bad reading", recs[1].Reason)
	assert.Equal(t, errors.KindStop, recs[1].Outcome)
}

func states(r *store.Record) []store.State {
	var out []store.State
	for _, h := range r.History {
		out = append(out, h.State)
	}
	return out
}

func TestDurableMailboxRecoversOwedMessagesFirst(t *testing.T) {
	st := store.NewMemory()
	defer st.Close()
	owed(t, st, "m1", "svc", bus.Process, `{"n": 1}`, 1) // was running when the process died
	owed(t, st, "m2", "svc", bus.Process, `{"n": 2}`, 0)
	owed(t, st, "m3", "svc", "Other", `{"n": 3}`, 0)
	owed(t, st, "x1", "elsewhere", bus.Process, `{"n": 9}`, 0)
	owed(t, st, "poison", "svc", bus.Process, `{"n": 0}`, bus.MaxCrashes)
	rec := &recorder{}
	b := newBus(t, bus.Options{Store: st}, bus.Service{Name: "svc", Actions: bus.Actions{bus.Process: rec.action("p"), "Other": rec.action("o")}})
	require.NoError(t, b.Submit(t.Context(), "svc", bus.Process, map[string]any{"n": 4.0}))
	stop(t, b)
	var ns []any
	for _, m := range rec.all() {
		ns = append(ns, m["n"])
		if m["n"] != 4.0 {
			assert.Equal(t, "sensor", m["meta"].(map[string]any)["from"])
		}
	}
	assert.Equal(t, []any{1.0, 2.0, 3.0, 4.0}, ns, "owed messages first, oldest first, then new ones")
	for _, id := range []string{"m1", "m2", "m3"} {
		r, err := st.Get(t.Context(), id)
		require.NoError(t, err)
		assert.Equal(t, store.Done, r.State, id)
	}
	r, err := st.Get(t.Context(), "poison")
	require.NoError(t, err)
	assert.Equal(t, store.Error, r.State, "a message whose runs keep crashing the process is set aside")
	assert.Equal(t, errors.KindFatal, r.Outcome)
	assert.Contains(t, r.Err, "gave up after 3 crashed runs")
	r, err = st.Get(t.Context(), "x1")
	require.NoError(t, err)
	assert.Equal(t, store.Pending, r.State, "another service's message is left to it")
}

func TestDurableMailboxKeepsWhatAStopLeft(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := store.NewMemory()
		defer st.Close()
		block := flow.Step("block", func(ctx context.Context, c *fc.Context) error {
			<-ctx.Done()
			return ctx.Err()
		})
		b := newBus(t, bus.Options{Store: st}, bus.Service{Name: "svc", Actions: bus.Actions{bus.Process: block}})
		for i := range 3 {
			require.NoError(t, b.Submit(t.Context(), "svc", bus.Process, map[string]any{"n": i}))
		}
		synctest.Wait()
		ctx, cancel := context.WithCancel(t.Context())
		cancel() // no time to drain: the running message is canceled
		require.ErrorIs(t, b.Stop(ctx), context.Canceled)
		n, err := st.Count(t.Context(), store.Query{States: []store.State{store.Pending}})
		require.NoError(t, err)
		assert.Equal(t, 3, n, "the canceled run and the queued messages stay owed")

		rec := &recorder{}
		b2 := newBus(t, bus.Options{Store: st}, bus.Service{Name: "svc", Actions: bus.Actions{bus.Process: rec.action("p")}})
		stop(t, b2)
		var ns []any
		for _, m := range rec.all() {
			ns = append(ns, m["n"])
		}
		assert.Equal(t, []any{0.0, 1.0, 2.0}, ns)
		n, err = st.Count(t.Context(), store.Query{States: []store.State{store.Done}})
		require.NoError(t, err)
		assert.Equal(t, 3, n)
	})
}

// TestDurableMailboxSurvivesSIGKILL: a process submits messages to a
// service with an SQLite mailbox and is killed while the third runs; the
// next process runs the third again and the rest, in order.
func TestDurableMailboxSurvivesSIGKILL(t *testing.T) {
	if os.Getenv("BUS_CRASH_CHILD") != "" {
		crashChild()
		return
	}
	dir := t.TempDir()
	db, out := filepath.Join(dir, "bus.db"), filepath.Join(dir, "out.txt")
	child := func(mode string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestDurableMailboxSurvivesSIGKILL$")
		cmd.Env = append(os.Environ(), "BUS_CRASH_CHILD="+mode, "BUS_DB="+db, "BUS_OUT="+out)
		cmd.Stderr = os.Stderr
		return cmd
	}
	first := child("submit")
	stdout, err := first.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, first.Start())
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "stuck" {
	}
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	data, _ := os.ReadFile(out)
	assert.Equal(t, "1\n2\n3\n", string(data), "killed while the third message ran")

	second := child("recover")
	second.Stdout = os.Stderr
	require.NoError(t, second.Run())
	data, err = os.ReadFile(out)
	require.NoError(t, err)
	assert.Equal(t, "1\n2\n3\n3\n4\n5\n", string(data), "the third runs again, then the rest, nothing lost")

	st, err := sqlite.Open(db)
	require.NoError(t, err)
	defer st.Close()
	n, err := st.Count(t.Context(), store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, 5, n)
}

func crashChild() {
	mode := os.Getenv("BUS_CRASH_CHILD")
	st, err := sqlite.Open(os.Getenv("BUS_DB"))
	if err != nil {
		panic(err)
	}
	f, err := os.OpenFile(os.Getenv("BUS_OUT"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		panic(err)
	}
	submitted := make(chan struct{})
	write := flow.Step("write", func(ctx context.Context, c *fc.Context) error {
		n, _ := c.Get("n")
		fmt.Fprintln(f, n)
		if mode == "submit" && n == 3.0 {
			<-submitted // all five are recorded
			fmt.Println("stuck")
			select {} // killed here
		}
		return nil
	})
	b := bus.New(bus.Options{Store: st, Logger: quiet})
	if err := b.Add(bus.Service{Name: "writer", Actions: bus.Actions{bus.Process: write}}); err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := b.Start(ctx); err != nil {
		panic(err)
	}
	if mode == "submit" {
		for i := 1; i <= 5; i++ {
			if err := b.Submit(ctx, "writer", bus.Process, map[string]any{"n": float64(i)}); err != nil {
				panic(err)
			}
		}
		close(submitted)
		select {}
	}
	if err := b.Stop(ctx); err != nil { // runs the recovered messages, then stops
		panic(err)
	}
	if err := st.Close(); err != nil {
		panic(strings.TrimSpace(err.Error()))
	}
}

package kv_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/channel"
	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/kv"
	"github.com/svcflow/svcflow/adapters/kv/kvtest"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/provide"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// backends runs fn on a memory store and an SQLite one.
func backends(t *testing.T, fn func(t *testing.T, s *kv.Store)) {
	t.Run("memory", func(t *testing.T) {
		s := kv.NewMemory()
		defer s.Close()
		fn(t, s)
	})
	t.Run("sqlite", func(t *testing.T) {
		s, err := kv.OpenSQLite(filepath.Join(t.TempDir(), "kv.db"))
		require.NoError(t, err)
		defer s.Close()
		fn(t, s)
	})
}

// TestBackends: the shipped backends pass the conformance suite.
func TestBackends(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		kvtest.Run(t, func(t *testing.T) kv.Backend { return kv.NewMemory().Backend() })
	})
	t.Run("sqlite", func(t *testing.T) {
		kvtest.Run(t, func(t *testing.T) kv.Backend {
			s, err := kv.OpenSQLite(filepath.Join(t.TempDir(), "kv.db"))
			require.NoError(t, err)
			return s.Backend()
		})
	})
}

func TestSaveRestore(t *testing.T) {
	backends(t, func(t *testing.T, s *kv.Store) {
		ctx := t.Context()
		a := s.Scope("orders", "poller")
		require.NoError(t, a.Save(ctx, "last", map[string]any{"id": uint64(12345678901234567891), "at": "2026-01-01"}))
		v, found, err := a.Restore(ctx, "last")
		require.NoError(t, err)
		require.True(t, found)
		m := v.(map[string]any)
		assert.Equal(t, "2026-01-01", m["at"])
		assert.Equal(t, "12345678901234567891", toString(m["id"]), "a big integer keeps its digits")

		var typed struct{ At string }
		found, err = a.RestoreInto(ctx, "last", &typed)
		require.NoError(t, err)
		assert.True(t, found)
		assert.Equal(t, "2026-01-01", typed.At)

		for _, other := range []*kv.Node{s.Scope("orders", "other"), s.Scope("invoices", "poller")} {
			_, found, err := other.Restore(ctx, "last")
			require.NoError(t, err)
			assert.False(t, found, "%s does not see orders/poller", other.Scope())
		}
		_, err = s.Scope("orders", "other").MustRestore(ctx, "last")
		assert.ErrorIs(t, err, kv.ErrNotFound)
		assert.Contains(t, err.Error(), `orders/other`)

		require.NoError(t, a.Save(ctx, "last", 7))
		v, _, err = a.Restore(ctx, "last")
		require.NoError(t, err)
		assert.EqualValues(t, 7, v, "replaced")
		require.NoError(t, a.Delete(ctx, "last"))
		_, found, err = a.Restore(ctx, "last")
		require.NoError(t, err)
		assert.False(t, found)

		require.NoError(t, s.Close())
		assert.ErrorIs(t, a.Save(ctx, "x", 1), kv.ErrClosed)
	})
}

func toString(v any) string {
	switch x := v.(type) {
	case interface{ String() string }:
		return x.String()
	case string:
		return x
	}
	return ""
}

// TestSQLiteSurvivesRestart: what a store saved is there when the file
// is opened again.
func TestSQLiteSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := kv.OpenSQLite(path)
	require.NoError(t, err)
	require.NoError(t, s.Scope("c", "n").Save(t.Context(), "counter", 41))
	require.NoError(t, s.Close())

	s, err = kv.OpenSQLite(path)
	require.NoError(t, err)
	defer s.Close()
	v, found, err := s.Scope("c", "n").Restore(t.Context(), "counter")
	require.NoError(t, err)
	assert.True(t, found)
	assert.EqualValues(t, 41, v)
}

// TestProvidedToFunc: a Func receives the store by a provide tag and
// saves under its node of the channel running the message.
func TestProvidedToFunc(t *testing.T) {
	c := provide.New()
	provide.MustRegister[*kv.Store](c, func() (*kv.Store, error) { return kv.NewMemory(), nil })
	defer c.Close(context.Background())
	count := flow.Func("count", func(ctx context.Context, in struct {
		State *kv.Store `provide:""`
	}) (struct{ Count float64 }, error) {
		n := in.State.Node(ctx, "count")
		var seen float64
		if _, err := n.RestoreInto(ctx, "seen", &seen); err != nil {
			return struct{ Count float64 }{}, err
		}
		seen++
		return struct{ Count float64 }{seen}, n.Save(ctx, "seen", seen)
	})
	f, err := flow.New("count", count).Provide(c).Build()
	require.NoError(t, err)
	run := func(ch *channel.Channel) any {
		res := ch.Handle(t.Context(), message.New("application/json", []byte(`{}`), nil))
		require.NoError(t, res.Err)
		return res.Message.Context["count"]
	}
	a := started(t, "a", f)
	b := started(t, "b", f)
	assert.EqualValues(t, 1, run(a))
	assert.EqualValues(t, 2, run(a))
	assert.EqualValues(t, 1, run(b), "another channel has keys of its own")
	st, err := provide.Get[*kv.Store](t.Context(), c, "")
	require.NoError(t, err)
	v, _, err := st.Scope("a", "count").Restore(t.Context(), "seen")
	require.NoError(t, err)
	assert.EqualValues(t, 2, v)
}

// started is a running channel named name over f.
func started(t *testing.T, name string, f *flow.Flow) *channel.Channel {
	t.Helper()
	ch, err := channel.New(channel.Config{Name: name, Flow: f, Store: store.NewMemory()})
	require.NoError(t, err)
	require.NoError(t, ch.Start(t.Context()))
	t.Cleanup(func() { _ = ch.Stop(context.Background()) })
	return ch
}

const countYAML = `version: 1
providers:
  state: {kv: {backend: sqlite, path: state.db}}
flows:
  count:
    input: [who]
    steps:
      - restore: {key: seen, into: seen, default: 0, node: counter}
      - set: {seen: "seen + 1"}
      - save: {key: seen, value: seen, node: counter}
      - restore: {key: "last-{{.who}}", into: last, default: null}
      - save: {key: "last-{{.who}}", value: "who"}
`

func loadFile(t *testing.T, dir, text string) (*config.Config, error) {
	t.Helper()
	path := filepath.Join(dir, "flows.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return config.Load([]string{path}, config.WithDataDir(dir))
}

// TestStepsSurviveRestart: the save and restore steps of a YAML flow,
// over an SQLite provider: a counter per channel that goes on after the
// configuration is loaded again (a restart).
func TestStepsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	run := func(chName string, times int) any {
		cfg, err := loadFile(t, dir, countYAML)
		require.NoError(t, err)
		defer cfg.Providers().Close(context.Background())
		f, ok := cfg.Flow("count")
		require.True(t, ok)
		ch := started(t, chName, f)
		defer ch.Stop(context.Background())
		var last any
		for range times {
			res := ch.Handle(t.Context(), message.New("application/json", []byte(`{"who": "ann"}`), nil))
			require.NoError(t, res.Err)
			last = res.Message.Context["seen"]
			if times == 1 {
				return res.Message.Context
			}
		}
		return last
	}
	assert.EqualValues(t, 3, run("a", 3))
	ctx := run("a", 1).(map[string]any)
	assert.EqualValues(t, 4, ctx["seen"], "after a restart the count goes on")
	assert.Equal(t, "ann", ctx["last"])
	ctx = run("b", 1).(map[string]any)
	assert.EqualValues(t, 1, ctx["seen"], "channel b counts on its own")
	assert.Nil(t, ctx["last"], "default: null")
	_, err := os.Stat(filepath.Join(dir, "state.db"))
	assert.NoError(t, err, "the file is in the data folder")
}

// TestStepErrors: a required restore of a key never saved fails;
// spec errors are positioned; a flow without a kv provider does not
// build.
func TestStepErrors(t *testing.T) {
	dir := t.TempDir()
	cfg, err := loadFile(t, dir, `version: 1
providers:
  state: {kv: {}}
flows:
  f:
    steps:
      - restore: {key: missing, into: x, required: true}
  g:
    steps:
      - restore: {key: other, into: y}
`)
	require.NoError(t, err)
	defer cfg.Providers().Close(context.Background())
	f, _ := cfg.Flow("f")
	_, err = f.Run(t.Context(), map[string]any{})
	assert.ErrorIs(t, err, kv.ErrNotFound)
	assert.Contains(t, err.Error(), `kv /: restore "missing"`)
	assert.Equal(t, errors.KindFailed, errors.KindOf(err))
	g, _ := cfg.Flow("g")
	out, err := g.Run(t.Context(), map[string]any{})
	require.NoError(t, err)
	y, ok := out.Get("y")
	assert.True(t, ok, "without default, null")
	assert.Nil(t, y)

	_, err = loadFile(t, dir, `version: 1
providers:
  state: {kv: {backend: redis}}
flows:
  f:
    steps:
      - restore: {key: k}
      - save: {key: k}
`)
	require.Error(t, err)
	t.Log(err)
	for _, want := range []string{
		`flows.yaml:3:25: provider "state": kv: backend: expected memory, sqlite or nats, got "redis"`,
		`flows.yaml:7:18: restore: missing into`,
		`flows.yaml:8:15: save: missing value`,
	} {
		assert.Contains(t, err.Error(), want)
	}

	_, err = loadFile(t, dir, `version: 1
flows:
  f:
    steps:
      - save: {key: k, value: "1"}
`)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `step "save(k)": needs the kv provider`)
}

package bus_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/bus"
	"github.com/svcflow/svcflow/adapters/component"
	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
)

func load(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, err := config.LoadSources([]config.Source{{Name: "bus.yaml", Data: []byte(src)}},
		config.WithRegistry(config.NewRegistry(config.WithLogger(quiet))))
	require.NoError(t, err)
	return cfg
}

const busYAML = `version: 1
flows:
  double:
    input: [n]
    steps:
      - set: {twice: "n * 2"}
  ask:
    input: [n]
    steps:
      - request: {to: calc, action: Double, into: answer}
      - set: {result: "answer.twice"}
  forward:
    steps:
      - submit: {to: sink}
  keep:
    steps:
      - set: {kept: true}
services:
  calc:
    actions: {Double: double}
  front:
    internal: true
    actions: {Ask: ask, Forward: forward}
  sink:
    actions: {Process: keep}
    mailbox: 4
    when_full: fail
    store: "memory:"
`

func TestFromConfigRunsTheServices(t *testing.T) {
	cfg := load(t, busYAML)
	built, err := bus.FromConfig(cfg, bus.ConfigOptions{Options: bus.Options{Logger: quiet}, Open: true})
	require.NoError(t, err)
	defer built.Close()
	b := built.Bus
	require.NoError(t, b.Start(t.Context()))
	out, err := b.Request(t.Context(), "front", "Ask", map[string]any{"n": 4})
	require.NoError(t, err)
	assert.EqualValues(t, 8, out["result"], "a request step in one service's flow, answered by another's")
	_, err = b.Request(t.Context(), "front", "Forward", map[string]any{"x": 1})
	require.NoError(t, err)
	require.NoError(t, b.Stop(context.Background()))
	require.Len(t, built.Stores, 1)
	n, err := built.Stores[0].Count(t.Context(), storeQuery("sink"))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "the durable mailbox recorded the forwarded message")
	recs, err := built.Stores[0].Search(t.Context(), storeQuery("sink"))
	require.NoError(t, err)
	assert.Contains(t, string(recs[0].Message.Trace), `"kept"`, "the run's trace is kept with the message")
	assert.Equal(t, true, recs[0].Message.Context["kept"])
	st := b.Status()
	assert.Equal(t, "front", st[1].Name)
	assert.True(t, st[1].Internal)
	assert.Equal(t, 4, st[2].Capacity)
}

func TestFromConfigReportsEveryProblemWithItsPosition(t *testing.T) {
	src := `version: 1
flows:
  f:
    steps:
      - set: {x: "1"}
services:
  a:
    actions: {Process: nope}
    mailbox: 0
    when_full: drop
  b:
    actions: {Process: f}
    from: {cron: "not a schedule"}
    source_action: Other
  c:
    actionz: {Process: f}
`
	cfg := load(t, src)
	_, err := bus.FromConfig(cfg, bus.ConfigOptions{})
	var errs config.Errors
	require.True(t, errors.As(err, &errs), "%v", err)
	got := err.Error()
	for _, want := range []string{
		`bus.yaml:8:24: service "a": action Process: unknown flow "nope": expected f`,
		`bus.yaml:9:14: service "a": mailbox: expected at least 1, got 0`,
		`bus.yaml:10:16: service "a": when_full: expected block or fail, got "drop"`,
		`bus.yaml:13:11: service "b": from: cron:`,
		`bus.yaml:14:20: service "b": source_action "Other": unknown action: the service has Process`,
		`bus.yaml:16:5: service "c": unknown key "actionz"`,
		`did you mean "actions"?`,
		`bus.yaml:16:5: service "c": missing actions`,
	} {
		assert.Contains(t, got, want)
	}
	assert.Equal(t, 7, strings.Count(got, "bus.yaml:"), got)
}

func TestSubmitStepOutsideABusFails(t *testing.T) {
	cfg := load(t, busYAML)
	f, ok := cfg.Flow("forward")
	require.True(t, ok)
	_, err := f.Run(t.Context(), nil)
	require.ErrorIs(t, err, bus.ErrNotInBus)
	c, ok := component.Default().Lookup(component.KindStep, "request")
	require.True(t, ok)
	_, err = c.Build(component.Env{Name: "r"}, bus.RequestSpec{To: "*"})
	require.Error(t, err, "a request has one destination")
}

func storeQuery(dest string) store.Query {
	return store.Query{States: []store.State{store.Done}, Meta: map[string]string{bus.MetaDestination: dest}}
}

func TestStateStepSetsTheStateAfterItsRun(t *testing.T) {
	cfg := load(t, `version: 1
flows:
  desired:
    input: [enabled]
    steps:
      - state: {enabled: enabled, debug: debug}
  noop:
    steps:
      - set: {x: "1"}
services:
  com:
    internal: true
    actions: {DesiredState: desired}
  worker:
    actions: {Process: noop}
`)
	built, err := bus.FromConfig(cfg, bus.ConfigOptions{Options: bus.Options{Logger: quiet}, Open: true})
	require.NoError(t, err)
	b := built.Bus
	require.NoError(t, b.Start(t.Context()))
	_, err = b.Request(t.Context(), "com", "DesiredState", map[string]any{"enabled": "yes"})
	assert.Equal(t, errors.KindStop, errors.KindOf(err))
	assert.ErrorContains(t, err, "enabled: expected a boolean, got string")
	_, err = b.Request(t.Context(), "com", "DesiredState", map[string]any{"enabled": false, "debug": true})
	require.NoError(t, err)
	require.NoError(t, b.Stop(context.Background())) // waits for the state change
	assert.Equal(t, bus.State{Enabled: false, Debug: true}, b.State())
	assert.True(t, b.Status()[1].Disabled)
}

package steps_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/steps"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func TestWaitSpecErrors(t *testing.T) {
	for step, want := range map[string]string{
		`wait: {timeout: 1h}`:                       `s.yaml:5:15: wait: missing signal (the name of the signal to wait for)`,
		`wait: {signal: s, on_timeout: later}`:      `s.yaml:5:39: wait: on_timeout: expected stop or error, got "later"`,
		`wait: {signal: s, timeout: -1s}`:           `s.yaml:5:36: wait: timeout: expected a positive duration, got -1s`,
		`wait: approved`:                            ``,
		`wait: {signal: ok, timeout: 2h, into: ap}`: ``,
	} {
		assert.Equal(t, want, loadStep(t, step), step)
	}
}

// flowOf loads a flow "f" of the given steps (YAML list items).
func flowOf(t *testing.T, steps string) *flow.Flow {
	t.Helper()
	src := "flows:\n  f:\n    steps:\n" + steps
	cfg, err := config.LoadSources([]config.Source{{Name: "s.yaml", Data: []byte(src)}})
	require.NoError(t, err)
	b, ok := cfg.Builder("f")
	require.True(t, ok)
	f, err := b.Build()
	require.NoError(t, err)
	return f
}

// journal is a flow.Journal that remembers nothing: every unit runs.
type journal struct{}

func (journal) Completed(context.Context, string) (*flow.Unit, error) { return nil, nil }
func (journal) Complete(context.Context, *flow.Unit) error            { return nil }

func TestWaitParksADurableRun(t *testing.T) {
	f := flowOf(t, "      - wait: {signal: approved, timeout: 48h, into: approval, on_timeout: error}\n      - set: {who: approval.by}\n")
	_, err := f.Run(context.Background(), nil)
	require.ErrorIs(t, err, steps.ErrNotDurable, "outside a durable channel there is nobody to wait for")

	_, err = f.Run(context.Background(), nil, flow.WithJournal(journal{}))
	pe, ok := errors.AsType[*flow.ParkError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, flow.Wait{Signal: "approved", For: 48 * 3600e9, Into: "approval", Timeout: errors.KindFailed,
		Reason: `wait for signal "approved": timed out after 48h0m0s`}, pe.Wait)
}

func TestSleepParksOverTheThreshold(t *testing.T) {
	f := flowOf(t, "      - sleep: 2s\n")
	_, err := f.Run(context.Background(), nil, flow.WithJournal(journal{}))
	pe, ok := errors.AsType[*flow.ParkError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, flow.Wait{For: 2e9}, pe.Wait)

	short := flowOf(t, "      - sleep: 1ms\n")
	_, err = short.Run(context.Background(), nil, flow.WithJournal(journal{}))
	assert.NoError(t, err, "a short sleep sleeps in the run")
	assert.Equal(t, "1s", steps.ParkAfter.String())
}

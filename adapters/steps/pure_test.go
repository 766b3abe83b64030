package steps_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/flow"
)

// recordJournal keeps the units a durable run completes.
type recordJournal struct {
	mu    sync.Mutex
	units []*flow.Unit
}

func (j *recordJournal) Completed(context.Context, string) (*flow.Unit, error) { return nil, nil }
func (j *recordJournal) Complete(_ context.Context, u *flow.Unit) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.units = append(j.units, u)
	return nil
}

// TestBuiltinsWithoutEffects: set, stop, template, log and a short sleep
// have no effects outside the run's context (flow.Pure), which `durable:
// effects` relies on.
func TestBuiltinsWithoutEffects(t *testing.T) {
	f := flowOf(t, `      - set: {a: "1"}
      - stop: {if: "a > 5", reason: big}
      - template: {t: "a is {{.a}}"}
      - log: {message: "{{.t}}", level: debug}
      - sleep: 1ms
`)
	j := &recordJournal{}
	_, err := f.Run(context.Background(), nil, flow.WithJournal(j))
	require.NoError(t, err)
	require.Len(t, j.units, 5)
	for _, u := range j.units {
		assert.True(t, u.NoEffects, "%s", u.Name)
	}
}

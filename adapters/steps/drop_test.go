package steps_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// TestDropStep: drop: ends the run with a Drop when its condition holds
// (outcome dropped, with the reason), lets the run go on otherwise, and
// inside an each leaves out only the element that dropped; YAML test
// tables expect it as error: dropped.
func TestDropStep(t *testing.T) {
	src := `flows:
  filter:
    input: [type]
    steps:
      - drop: {if: "type != 'order'", reason: "{{.type}}: not an order"}
      - set: {accepted: "true"}
  always:
    steps:
      - drop: not for us
  each:
    input: [nums]
    steps:
      - each:
          over: nums
          collect: {from: doubled, into: results}
          steps:
            - drop: {if: "item % 2 == 0"}
            - set: {doubled: "item * 2"}
tests:
  - flow: filter
    cases:
      - {name: ping, input: {type: ping}, error: dropped, error_contains: "ping: not an order"}
      - {name: order, input: {type: order}, want: {accepted: true}}
`
	cfg, err := config.LoadSources([]config.Source{{Name: "d.yaml", Data: []byte(src)}})
	require.NoError(t, err)

	f, _ := cfg.Flow("filter")
	tr := &flow.Trace{}
	_, err = f.Run(t.Context(), map[string]any{"type": "ping"}, flow.WithTrace(tr))
	require.ErrorIs(t, err, errors.ErrDrop)
	assert.Equal(t, errors.KindDropped, tr.Outcome)
	assert.Equal(t, "ping: not an order", tr.Reason)
	assert.Equal(t, "drop", tr.Steps[0].Name)
	out, err := f.Run(t.Context(), map[string]any{"type": "order"})
	require.NoError(t, err)
	assert.Equal(t, true, out.View()["accepted"])

	f, _ = cfg.Flow("always")
	_, err = f.Run(t.Context(), map[string]any{})
	de, ok := errors.AsType[*errors.DropError](err)
	require.True(t, ok)
	assert.Equal(t, "not for us", de.Reason)

	f, _ = cfg.Flow("each")
	out, err = f.Run(t.Context(), map[string]any{"nums": []any{1, 2, 3, 4, 5}})
	require.NoError(t, err, "a dropped element does not end the each")
	assert.Equal(t, []any{2, 6, 10}, out.View()["results"])

	n := 0
	for _, s := range cfg.Tests() {
		for _, tc := range s.Cases {
			r := tc.Run(t.Context())
			assert.True(t, r.Passed(), "%s: %v", tc.Name, r.Failures)
			n++
		}
	}
	assert.Equal(t, 2, n)
}

package serve_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/serve"
)

const planBase = `version: 1
vars: {limit: 10}
flows:
  orders:
    steps:
      - set: {total: "1"}
  other:
    steps: [{set: {x: "1"}}]
channels:
  intake:   # the orders
    from: {http: {listen: "127.0.0.1:8080", path: /orders}}
    flow: orders
    max_in_flight: 10
production:
  Router: {kind: process, flow: orders, settings: {limit: 1}}
`

func normalized(t *testing.T, text string, sets ...string) config.Normalized {
	t.Helper()
	n, err := config.Normalize([]config.Source{{Name: "a.yaml", Data: []byte(text)}}, sets...)
	require.NoError(t, err)
	return n
}

// TestDiffClassifies: each kind of change, classified safe or
// destructive, with what and name.
func TestDiffClassifies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		from    string // replaced in planBase
		to      string
		changes []serve.Change
	}{
		{"comments and styles are no change", "intake:   # the orders\n", "intake:\n", nil},
		{"add a channel", "production:", "  audit: {from: {http: /audit}, flow: other}\nproduction:",
			[]serve.Change{{Kind: serve.Add, What: "channel", Name: "audit", Class: serve.Safe}}},
		{"change a setting", "max_in_flight: 10", "max_in_flight: 20",
			[]serve.Change{{Kind: serve.Modify, What: "channel", Name: "intake", Class: serve.Safe, Detail: "max_in_flight: 10 -> 20"}}},
		{"change a channel's flow", "flow: orders\n    max", "flow: other\n    max",
			[]serve.Change{{Kind: serve.Modify, What: "channel", Name: "intake", Class: serve.Destructive, Detail: "flow: orders -> other"}}},
		{"move a route", "path: /orders}", "path: /orders2}",
			[]serve.Change{{Kind: serve.Modify, What: "channel", Name: "intake", Class: serve.Destructive,
				Detail: "from: source removed or changed: {http: {listen: '127.0.0.1:8080', path: /orders}}; source added: {http: {listen: '127.0.0.1:8080', path: /orders2}}"}}},
		{"add a source", "from: {http: {listen: \"127.0.0.1:8080\", path: /orders}}", "from: [{http: {listen: \"127.0.0.1:8080\", path: /orders}}, {cron: \"@every 1m\"}]",
			[]serve.Change{{Kind: serve.Modify, What: "channel", Name: "intake", Class: serve.Safe, Detail: "from: source added: {cron: '@every 1m'}"}}},
		{"change a flow's step", `total: "1"`, `total: "2"`,
			[]serve.Change{{Kind: serve.Modify, What: "flow", Name: "orders", Class: serve.Safe, Detail: "steps: step 1: {set: {total: '1'}} -> {set: {total: '2'}}"}}},
		{"remove a flow", "  other:\n    steps: [{set: {x: \"1\"}}]\n", "",
			[]serve.Change{{Kind: serve.Remove, What: "flow", Name: "other", Class: serve.Destructive, Detail: "whatever uses it stops working"}}},
		{"change a var", "limit: 10}", "limit: 11}",
			[]serve.Change{{Kind: serve.Modify, What: "var", Name: "limit", Class: serve.Safe, Detail: "value: 10 -> 11"}}},
		{"change a component's settings", "settings: {limit: 1}", "settings: {limit: 2}",
			[]serve.Change{{Kind: serve.Modify, What: "production component", Name: "Router", Class: serve.Safe, Detail: "settings: {limit: 1} -> {limit: 2}"}}},
		{"change a component's kind", "kind: process", "kind: operation",
			[]serve.Change{{Kind: serve.Modify, What: "production component", Name: "Router", Class: serve.Destructive, Detail: "kind: process -> operation"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := planBase
			if tc.from != "" {
				require.Contains(t, planBase, tc.from)
				next = replaceOnce(planBase, tc.from, tc.to)
			}
			assert.Equal(t, tc.changes, serve.Diff(normalized(t, planBase), normalized(t, next)))
		})
	}
}

func replaceOnce(s, old, neu string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + neu + s[i+len(old):]
		}
	}
	return s
}

// TestNormalizeSetsAndFingerprint: --set overrides are part of the
// configuration; the fingerprint follows the content, not its layout.
func TestNormalizeSetsAndFingerprint(t *testing.T) {
	a := normalized(t, planBase)
	b := normalized(t, planBase, "channels.intake.max_in_flight=20")
	assert.NotEqual(t, a.Fingerprint(), b.Fingerprint())
	assert.Equal(t, []serve.Change{{Kind: serve.Modify, What: "channel", Name: "intake", Class: serve.Safe, Detail: "max_in_flight: 10 -> 20"}}, serve.Diff(a, b))
	flow := normalized(t, replaceOnce(planBase, "vars: {limit: 10}", "vars:\n  limit: 10 # the cap"))
	assert.Equal(t, a.Fingerprint(), flow.Fingerprint())
	assert.Regexp(t, `^sha256:[0-9a-f]{64}$`, a.Fingerprint())
	assert.Equal(t, []string{"other"}, normalized(t, replaceOnce(planBase, `- set: {total: "1"}`, `- call: other`)).Calls("orders"))
}

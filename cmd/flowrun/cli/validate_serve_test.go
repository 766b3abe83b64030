package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/cmd/flowrun/cli"
)

const channelHead = `version: 1
flows:
  f:
    input: [x]
    steps: [{set: {y: "x"}}]
channels:
  c:
`

// TestValidateEqualsServe: for each broken channel, store or source,
// validate and serve report the same problem at the same position, and
// serve starts nothing (no store file, no folder, exit 1).
func TestValidateEqualsServe(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"unknown flow", "    from: {http: /a}\n    flow: g\n", `:9:11: channel "c": unknown flow "g": expected f`},
		{"unknown hook flow", "    from: {http: /a}\n    flow: f\n    on_ok: g\n", `:10:12: channel "c": on_ok: unknown flow "g": expected f`},
		{"missing from", "    flow: f\n", `:8:5: channel "c": missing from`},
		{"unknown source", "    from: {htp: /a}\n    flow: f\n", `:8:12: channel "c": from: unknown source "htp": expected one of cron, files, ftp, http, mllp, nats, poll, words (did you mean "http"?)`},
		{"unknown channel key", "    from: {http: /a}\n    flow: f\n    stroe: memory\n", `:10:5: channel "c": unknown key "stroe": expected one of from, flow, to, store, order_by, retry_after, restart, trace, max_deliveries, max_in_flight, max_crashes, durable, on_change, redact, on_ok, on_failure, on_reject, on_drop, finally (did you mean "store"?)`},
		{"unknown store", "    from: {http: /a}\n    flow: f\n    store: redis:x\n", `:10:12: channel "c": store: unknown store "redis": expected one of file, memory, none, postgres, sqlite`},
		{"store without path", "    from: {http: /a}\n    flow: f\n    store: \"sqlite:\"\n", `:10:12: channel "c": store: sqlite: missing path after "sqlite:"`},
		{"store unknown key", "    from: {http: /a}\n    flow: f\n    store: {sqlite: {file: x.db}}\n", `:10:22: channel "c": store: sqlite: unknown key "file": expected one of path, sync, max_batch, max_wait`},
		{"bad listen address", "    from: {http: {listen: \"localhost\", path: /a}}\n    flow: f\n", `:8:11: channel "c": from: http: listen "localhost": expected host:port`},
		{"bad listen port", "    from: {http: {listen: \"127.0.0.1:99999\", path: /a}}\n    flow: f\n", `:8:11: channel "c": from: http: listen "127.0.0.1:99999": port "99999" is not a number from 0 to 65535`},
		{"path without slash", "    from: {http: a}\n    flow: f\n", `:8:11: channel "c": from: http: httpsource: route POST a: invalid route: path "a" must begin with /`},
		{"duplicate route", "    from: [{http: /a}, {http: /a}]\n    flow: f\n", `:8:24: channel "c": from: http: httpsource: route POST /a: duplicate route`},
		{"bad cron", "    from: {cron: \"every minute\"}\n    flow: f\n", `:8:11: channel "c": from: cron: cron: spec "every minute": invalid cron spec`},
		{"bad glob", "    from: {files: {dir: in, glob: \"[\"}}\n    flow: f\n", `:8:11: channel "c": from: files: filewatch: folder`},
		{"bad poll url", "    from: {poll: \"ftp://x\"}\n    flow: f\n", `:8:11: channel "c": from: poll: poll: url "ftp://x": invalid poll source: expected an http:// or https:// URL`},
		{"bad duration", "    from: {http: /a}\n    flow: f\n    retry_after: soon\n", `:10:18: channel "c": retry_after: expected a duration such as 250ms or 2s, got "soon"`},
		{"bad restart key", "    from: {http: /a}\n    flow: f\n    restart: {max_attempt: 3}\n", `:10:15: channel "c": restart: unknown key "max_attempt": expected one of initial, multiplier, max, max_interval, max_attempts, max_elapsed, jitter, retry_all (did you mean "max_attempts"?)`},
		{"bad order_by", "    from: {http: /a}\n    flow: f\n    order_by: \"a +\"\n", `:10:15: channel "c": order_by: `},
		{"negative deliveries", "    from: {http: /a}\n    flow: f\n    max_deliveries: -2\n", `:10:21: channel "c": max_deliveries: expected an integer from 0 to`},
		{"trace not a bool", "    from: {http: /a}\n    flow: f\n    trace: maybe\n", `:10:12: channel "c": trace: expected true or false, got "maybe"`},
		{"bad redact path", "    from: {http: /a}\n    flow: f\n    redact: [password, card..number]\n", `:10:13: channel "c": redact: "card..number": expected a key or a dotted path such as card.number`},
		{"env variable not set", "    from: {http: /a}\n    flow: f\n    store: \"sqlite:${SVCFLOW_TEST_UNSET_VAR}/c.db\"\n", `:10:20: ${SVCFLOW_TEST_UNSET_VAR}: environment variable SVCFLOW_TEST_UNSET_VAR is not set (give a default: ${SVCFLOW_TEST_UNSET_VAR:value})`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "c.yaml")
			require.NoError(t, os.WriteFile(path, []byte(channelHead+tc.body), 0o644))
			data := filepath.Join(dir, "data")

			code, _, validateErr := runCLI(t.Context(), "validate", path, "--data", data)
			assert.Equal(t, cli.ExitFailure, code)
			assert.Contains(t, validateErr, path+tc.want)

			code, serveOut, serveErr := runCLI(t.Context(), "serve", path, "--data", data, "--admin", "off")
			assert.Equal(t, cli.ExitFailure, code)
			assert.Empty(t, serveOut, "serve listens on nothing")
			assert.Equal(t, validateErr, serveErr, "validate and serve report the same")

			entries, _ := os.ReadDir(dir)
			assert.Len(t, entries, 1, "nothing created beside the file: %v", entries)
		})
	}
	assert.GreaterOrEqual(t, len(cases), 15)
}

// TestValidateCreatesNothing: a good configuration validates without a
// store, a folder or a listener being made.
func TestValidateCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	body := "    from: [{http: {listen: \"127.0.0.1:0\", path: /a}}, {files: inbox}, {cron: \"@every 1h\"}]\n    flow: f\n"
	require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(channelHead+body, "inbox", filepath.Join(dir, "inbox"))), 0o644))
	code, out, errOut := runCLI(t.Context(), "validate", path, "--data", filepath.Join(dir, "data"))
	require.Equal(t, cli.ExitOK, code, errOut)
	assert.Equal(t, "ok: 1 flow, 1 channel, 0 test cases in "+path+"\n", out)
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "no data folder, no inbox")
}

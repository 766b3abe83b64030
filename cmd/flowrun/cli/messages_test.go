package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
	"github.com/svcflow/svcflow/errors"
)

const messagesYAML = `version: 1
flows:
  orders:
    input: [items]
    steps:
      - stop: {if: "len(items) == 0", reason: "no items"}
      - when: {if: "len(items) > 2", steps: [{use: explode}]}
      - set: {n: "len(items)"}
channels:
  c:
    from: {http: {listen: "127.0.0.1:0", path: /orders}}
    flow: orders
    store: {sqlite: STORE}
`

// messagesStore writes a configuration whose channel c keeps its messages
// in an SQLite file, stores the given messages there (pending) and returns
// the configuration's path and the --data folder.
func messagesStore(t *testing.T, put func(ctx context.Context, s store.Store)) (file, data string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.db")
	file = writeFile(t, "c.yaml", strings.Replace(messagesYAML, "STORE", path, 1))
	s, err := sqlite.Open(path)
	require.NoError(t, err)
	put(t.Context(), s)
	require.NoError(t, s.Close())
	return file, filepath.Join(dir, "data")
}

// listed returns the rows of a "messages" listing by message ID, each
// row's cells split on runs of two or more spaces.
func listed(t *testing.T, out string) map[string][]string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	require.GreaterOrEqual(t, len(lines), 2, out)
	split := regexp.MustCompile(`  +`)
	assert.Equal(t, []string{"ID", "TIME", "STATE", "OUTCOME", "ATTEMPTS", "REASON", "ERROR"}, split.Split(lines[0], -1))
	rows := map[string][]string{}
	for _, l := range lines[1 : len(lines)-1] {
		assert.Equal(t, strings.TrimRight(l, " "), l, "no trailing spaces")
		cells := split.Split(l, -1)
		rows[cells[0]] = cells
	}
	return rows
}

// TestMessagesOutcomeAndReason: flowrun messages lists and shows each
// message's outcome and the reason of a rejection, as the channel recorded
// them (here by replay), "-" for a message with none recorded, and
// --state still filters.
func TestMessagesOutcomeAndReason(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	file, data := messagesStore(t, func(ctx context.Context, s store.Store) {
		for i, m := range []struct{ id, payload string }{
			{"a-ok", `{"items": [1]}`},
			{"b-stop", `{"items": []}`},
			{"c-fail", `{"items": [1, 2, 3]}`},
			{"d-old", `{"items": [1]}`},
			{"e-pending", `{"items": [1]}`},
		} {
			msg := &message.Message{ID: m.id, Time: t0.Add(time.Duration(i) * time.Minute), ContentType: message.ContentTypeJSON, Payload: []byte(m.payload)}
			require.NoError(t, s.Put(ctx, msg))
		}
		// Finished before stores kept outcomes: none recorded.
		require.NoError(t, s.Transition(ctx, "d-old", store.Processing, store.Update{}))
		require.NoError(t, s.Transition(ctx, "d-old", store.Error, store.Update{Err: "boom"}))
	})
	messages := func(args ...string) result {
		t.Helper()
		return flowrun(t, "", append([]string{"messages", file, "--channel", "c", "--data", data}, args...)...)
	}
	for id, code := range map[string]int{"a-ok": ExitOK, "b-stop": ExitStopped, "c-fail": ExitFailure} {
		r := messages("replay", id)
		require.Equal(t, code, r.code, "%s: %s", id, r.errOut)
	}

	r := messages()
	require.Equal(t, ExitOK, r.code, r.errOut)
	assert.True(t, strings.HasSuffix(r.out, "5 of 5 messages\n"), r.out)
	rows := listed(t, r.out)
	assert.Equal(t, []string{"a-ok", "2026-01-02T03:04:00Z", "done", "ok", "1"}, rows["a-ok"])
	assert.Equal(t, []string{"b-stop", "2026-01-02T03:05:00Z", "rejected", "stop", "1", "no items", `flow "orders": step "stop(no items)": stop: no items`}, rows["b-stop"])
	assert.Equal(t, []string{"c-fail", "2026-01-02T03:06:00Z", "error", "failed", "1"}, rows["c-fail"][:5])
	assert.Contains(t, rows["c-fail"][5], "boom", "no reason: the error is the next cell")
	assert.Equal(t, []string{"d-old", "2026-01-02T03:07:00Z", "error", "-", "1", "boom"}, rows["d-old"])
	assert.Equal(t, []string{"e-pending", "2026-01-02T03:08:00Z", "pending", "-", "0"}, rows["e-pending"])
	assert.Equal(t, "e-pending", strings.Fields(strings.Split(r.out, "\n")[1])[0], "newest first")

	r = messages("--state", "rejected")
	require.Equal(t, ExitOK, r.code, r.errOut)
	assert.Equal(t, []string{"b-stop"}, keys(listed(t, r.out)))
	assert.True(t, strings.HasSuffix(r.out, "1 of 1 messages\n"), r.out)
	r = messages("--state", "error")
	require.Equal(t, ExitOK, r.code, r.errOut)
	assert.ElementsMatch(t, []string{"c-fail", "d-old"}, keys(listed(t, r.out)))
	r = messages("--state", "failed")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, `--state: unknown state "failed"`)

	show := func(id string) map[string]any {
		t.Helper()
		r := messages("show", id)
		require.Equal(t, ExitOK, r.code, r.errOut)
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.out), &rec), r.out)
		return rec
	}
	history := func(rec map[string]any) (out []map[string]any) {
		for _, h := range rec["history"].([]any) {
			out = append(out, h.(map[string]any))
		}
		return out
	}
	rec := show("b-stop")
	assert.Equal(t, "rejected", rec["state"])
	assert.Equal(t, "stop", rec["outcome"])
	assert.Equal(t, "no items", rec["reason"])
	h := history(rec)
	require.Len(t, h, 3)
	assert.Equal(t, "stop", h[2]["outcome"])
	assert.Equal(t, "no items", h[2]["reason"])
	assert.NotContains(t, h[0], "outcome", "pending: no outcome")
	assert.NotContains(t, h[1], "outcome", "processing: no outcome")
	var stored store.Record
	require.NoError(t, json.Unmarshal([]byte(messages("show", "b-stop").out), &stored), "show prints what a store.Record decodes")
	assert.Equal(t, errors.KindStop, stored.Outcome)
	assert.Equal(t, "no items", stored.Reason)

	rec = show("a-ok")
	assert.Equal(t, "ok", rec["outcome"], "a done record's outcome is written out")
	assert.NotContains(t, rec, "reason")
	h = history(rec)
	assert.Equal(t, "ok", h[len(h)-1]["outcome"])
	assert.Equal(t, "failed", show("c-fail")["outcome"])
	assert.NotContains(t, show("d-old"), "outcome", "none recorded")
	assert.NotContains(t, show("e-pending"), "outcome")
}

func keys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestCell(t *testing.T) {
	assert.Equal(t, "short", cell("short", 10))
	assert.Equal(t, "two lines and a tab", cell("two\nlines and\ta tab", 40))
	assert.Equal(t, "ünïc...", cell("ünïcodé text", 7), "cut on runes")
	assert.Equal(t, "exactly10!", cell("exactly10!", 10))
}

package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
)

const signalYAML = `version: 1
flows:
  approve:
    steps:
      - set: {asked: "true"}
      - wait: {signal: approved, into: approval}
      - set: {by: "approval.by", n: "approval.n"}
channels:
  a:
    from: {http: {listen: "127.0.0.1:0", path: /orders}}
    flow: approve
    store: {sqlite: STORE}
    durable: steps
`

// TestMessagesSignalAndJournal: a message parked at a wait step is listed
// waiting, shown with its journal and wait, and resumed by "messages ...
// signal ID NAME --set k=v" (the values under the step's into key).
func TestMessagesSignalAndJournal(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.db")
	file := writeFile(t, "a.yaml", strings.Replace(signalYAML, "STORE", path, 1))
	s, err := sqlite.Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Put(t.Context(), &message.Message{ID: "m1", ContentType: message.ContentTypeJSON, Payload: []byte(`{"order": 1}`)}))
	require.NoError(t, s.Close())
	messages := func(args ...string) result {
		t.Helper()
		return flowrun(t, "", append([]string{"messages", file, "--channel", "a", "--data", dir}, args...)...)
	}
	r := messages("replay", "m1")
	require.Equal(t, ExitOK, r.code, r.errOut)
	assert.Contains(t, r.errOut, "replayed m1: waiting")

	r = messages("--state", "waiting")
	require.Equal(t, ExitOK, r.code, r.errOut)
	assert.Equal(t, []string{"m1"}, keys(listed(t, r.out)))

	r = messages("show", "m1")
	require.Equal(t, ExitOK, r.code, r.errOut)
	var rec struct {
		State   string               `json:"state"`
		Journal []store.JournalEntry `json:"journal"`
		Wait    *store.Wait          `json:"wait"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.out), &rec), r.out)
	assert.Equal(t, "waiting", rec.State)
	require.Len(t, rec.Journal, 1)
	assert.Equal(t, "approve/set(asked)", rec.Journal[0].Path)
	assert.Equal(t, map[string]any{"asked": true}, rec.Journal[0].Writes)
	require.NotNil(t, rec.Wait)
	assert.Equal(t, "approved", rec.Wait.Signal)

	r = messages("signal", "m1", "nope")
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, `waits for signal "approved"`)
	r = messages("signal", "m1")
	assert.Equal(t, ExitUsage, r.code)

	r = messages("signal", "m1", "approved", "--set", "by=ann", "--set", "n=2")
	require.Equal(t, ExitOK, r.code, r.errOut)
	assert.Contains(t, r.errOut, "signalled m1: done")
	var out map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.out), &out), r.out)
	assert.Equal(t, "ann", out["by"])
	assert.Equal(t, 2.0, out["n"], "a value that parses as JSON is JSON")

	r = messages("show", "m1")
	require.Equal(t, ExitOK, r.code, r.errOut)
	rec.Wait, rec.Journal = nil, nil
	require.NoError(t, json.Unmarshal([]byte(r.out), &rec), r.out)
	assert.Equal(t, "done", rec.State)
	assert.Nil(t, rec.Wait)
	require.Len(t, rec.Journal, 2)
	assert.Equal(t, map[string]any{"approval": map[string]any{"by": "ann", "n": 2.0}}, rec.Journal[1].Writes)
}

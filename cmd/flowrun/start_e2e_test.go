package main_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/store"
)

// TestFirstRequestsAfterStart: requests sent as soon as flowrun serve says
// it listens are served, not answered 503 "not ready" (issue 9: serve
// answered before its routes had their channels).
func TestFirstRequestsAfterStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowrun")
	}
	bin := flowrunBin(t)
	for round := range 3 {
		dir := t.TempDir()
		addr := freeAddr(t)
		file := filepath.Join(dir, "c.yaml")
		require.NoError(t, os.WriteFile(file, []byte(strings.ReplaceAll(`version: 1
flows:
  f:
    input: [x]
    steps: [{set: {y: "x * 2"}}]
channels:
  c:
    from: {http: {listen: "ADDR", path: /in}}
    flow: f
`, "ADDR", addr)), 0o644))
		c := startServe(t, bin, file, "--data", filepath.Join(dir, "data"), "--admin", "off")
		c.listening(t, addr)
		codes := make(chan int, 8)
		for i := range 8 {
			go func() { codes <- postKey("http://"+addr+"/in", fmt.Sprintf("r%d-%d", round, i), `{"x": 1}`).code }()
		}
		for range 8 {
			assert.Equal(t, 200, <-codes, "a request sent right after start")
		}
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
		assert.Equal(t, 0, c.exit(t))
	}
}

// TestFileDropsAreIdentifiedByContent: through flowrun serve, a second
// a.json with the same size and modification time as the first (cp -p,
// rsync, tar) but other content is run, not moved to done/ unseen; the
// same file dropped again is answered from the store (issue 9).
func TestFileDropsAreIdentifiedByContent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowrun")
	}
	bin := flowrunBin(t)
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")
	file := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`version: 1
flows:
  f:
    input: [n]
    steps: [{set: {double: "n * 2"}}]
channels:
  c:
    from: {files: {dir: "`+inbox+`", glob: "*.json", settle: 50ms, rescan: 100ms}}
    flow: f
`), 0o644))
	data := filepath.Join(dir, "data")
	c := startServe(t, bin, file, "--data", data, "--admin", "off")
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	drop := func(content string) {
		tmp := filepath.Join(t.TempDir(), "a.json")
		require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
		require.NoError(t, os.Chtimes(tmp, at, at))
		require.Eventually(t, func() bool { _, err := os.Stat(inbox); return err == nil }, 30*time.Second, 10*time.Millisecond)
		require.NoError(t, os.Rename(tmp, filepath.Join(inbox, "a.json")))
		require.Eventually(t, func() bool {
			_, err := os.Stat(filepath.Join(inbox, "a.json"))
			return os.IsNotExist(err)
		}, 30*time.Second, 10*time.Millisecond, "a.json was never taken; log:\n%s", c.logText())
	}
	drop(`{"n": 1}`)
	drop(`{"n": 2}`) // same name, size and time, other content
	drop(`{"n": 1}`) // the first file again
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, c.exit(t))

	st := openStore(t, data)
	recs, err := st.Search(context.Background(), store.Query{})
	require.NoError(t, err)
	require.Len(t, recs, 2, "two different files, the first one twice")
	var doubles []any
	for _, r := range recs {
		assert.Equal(t, store.Done, r.State)
		assert.Equal(t, 1, r.Attempts, "the same file dropped again does not run again")
		doubles = append(doubles, r.Message.Context["double"])
	}
	assert.ElementsMatch(t, []any{2.0, 4.0}, doubles)
	done, _ := os.ReadDir(filepath.Join(inbox, "done"))
	assert.Len(t, done, 3, "every drop is moved to done/")
}

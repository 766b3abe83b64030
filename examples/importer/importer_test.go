package importer_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// run serves the importer on inbox until stop is called.
func run(t *testing.T, inbox, data string) (stop func()) {
	t.Helper()
	cfg, err := config.Load([]string{"importer.yaml"}, config.WithSet(
		"channels.readings.from.files.dir="+inbox,
		"channels.readings.from.files.settle=10ms",
		"channels.readings.from.files.rescan=50ms",
	))
	require.NoError(t, err)
	srv, err := serve.New(cfg, serve.Options{DataDir: data, Admin: "off", Drain: 5 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	return func() {
		cancel()
		require.NoError(t, <-done)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestImporterMovesFilesAndSurvivesRestart(t *testing.T) {
	inbox, data := filepath.Join(t.TempDir(), "inbox"), t.TempDir()
	require.NoError(t, os.MkdirAll(inbox, 0o755))
	// A file present before the start is imported too.
	require.NoError(t, os.WriteFile(filepath.Join(inbox, "early.json"),
		[]byte(`{"station": "s0", "readings": [{"unit": "C", "value": 1}]}`), 0o644))
	stop := run(t, inbox, data)

	require.NoError(t, os.WriteFile(filepath.Join(inbox, "good.json"),
		[]byte(`{"station": "s1", "readings": [{"unit": "C", "value": 20}, {"unit": "F", "value": 50}]}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(inbox, "bad.json"),
		[]byte(`{"station": "s1", "readings": [{"unit": "K", "value": 300}]}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(inbox, "notes.txt"), []byte("not a batch"), 0o644))

	require.Eventually(t, func() bool {
		return exists(filepath.Join(inbox, "done", "good.json")) &&
			exists(filepath.Join(inbox, "done", "early.json")) &&
			exists(filepath.Join(inbox, "failed", "bad.json"))
	}, 20*time.Second, 20*time.Millisecond)
	why, err := os.ReadFile(filepath.Join(inbox, "failed", "bad.json.error.txt"))
	require.NoError(t, err)
	assert.Contains(t, string(why), "unknown unit")
	assert.True(t, exists(filepath.Join(inbox, "notes.txt")), "files outside the glob are left alone")
	stop()

	// A restart processes nothing again.
	stop = run(t, inbox, data)
	stop()
	st, err := sqlite.Open(filepath.Join(data, "readings.db"))
	require.NoError(t, err)
	defer st.Close()
	recs, err := st.Search(context.Background(), store.Query{})
	require.NoError(t, err)
	require.Len(t, recs, 3)
	states := map[string]store.State{}
	for _, r := range recs {
		states[r.Message.Meta["file.name"]] = r.State
		assert.Equal(t, 1, r.Attempts, r.Message.Meta["file.name"])
	}
	assert.Equal(t, map[string]store.State{"early.json": store.Done, "good.json": store.Done, "bad.json": store.Rejected}, states)
	for _, r := range recs {
		if r.Message.Meta["file.name"] == "good.json" {
			assert.Equal(t, 15.0, r.Message.Context["mean"])
		}
	}
}

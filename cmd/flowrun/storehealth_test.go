package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/internal/testfs"
)

const readOnlyStore = `version: 1
flows:
  f:
    steps:
      - set: {ok: "true"}
channels:
  intake:
    from: {http: {listen: "127.0.0.1:0", path: /in, method: POST}}
    flow: f
    store: STORE
`

// TestServeRefusesAnUnwritableStore: flowrun serve on a store in a
// read-only folder (an SQLite database made before, a file store's
// folder) exits 1 with an error naming the channel, the store and the
// cause, before it listens.
func TestServeRefusesAnUnwritableStore(t *testing.T) {
	urls := func(dir string) map[string]string {
		return map[string]string{"sqlite": "sqlite:" + filepath.Join(dir, "intake.db"), "file": "file:" + filepath.Join(dir, "files")}
	}
	dir := testfs.ReadOnlyDir(t, func(dir string) {
		for _, url := range urls(dir) {
			st, err := serve.OpenStore(nil, url)
			require.NoError(t, err)
			require.NoError(t, st.Close())
		}
	})
	for kind, url := range urls(dir) {
		t.Run(kind, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "serve.yaml")
			require.NoError(t, os.WriteFile(cfg, []byte(strings.ReplaceAll(readOnlyStore, "STORE", url)), 0o644))
			r := flowrun(t, "", "serve", "--admin", "off", "--data", t.TempDir(), cfg)
			assert.Equal(t, 1, r.code, r.errOut)
			assert.Contains(t, r.errOut, `channel "intake": `)
			assert.Contains(t, r.errOut, "store "+kind+": ")
			assert.True(t, strings.Contains(r.errOut, "read-only file system") || strings.Contains(r.errOut, "permission denied"),
				"the cause is named: %s", r.errOut)
			assert.NotContains(t, r.errOut, "serving")
			t.Log(strings.TrimSpace(r.errOut))
		})
	}
}

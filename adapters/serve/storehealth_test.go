package serve_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/internal/testfs"
)

const roChannel = `version: 1
flows:
  orders:
    steps:
      - set: {ok: "true"}
channels:
  intake:
    from: {http: {listen: "127.0.0.1:0", path: /orders}}
    flow: orders
    store: STORE
`

// TestUnwritableStoreRefusesToStart: a store in a read-only folder (an
// SQLite database made before, a file store's folder) is refused by New
// with an error naming the channel, the store and the cause.
func TestUnwritableStoreRefusesToStart(t *testing.T) {
	dir := testfs.ReadOnlyDir(t, func(dir string) {
		for _, url := range []string{"sqlite:" + filepath.Join(dir, "intake.db"), "file:" + filepath.Join(dir, "files")} {
			st, err := serve.OpenStore(nil, url)
			require.NoError(t, err)
			require.NoError(t, st.Close())
		}
	})
	for _, url := range []string{"sqlite:" + filepath.Join(dir, "intake.db"), "file:" + filepath.Join(dir, "files")} {
		t.Run(strings.SplitN(url, ":", 2)[0], func(t *testing.T) {
			cfg := load(t, strings.ReplaceAll(roChannel, "STORE", url))
			srv, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "off"})
			require.Error(t, err)
			assert.Nil(t, srv)
			msg := err.Error()
			t.Log(msg)
			assert.Contains(t, msg, `channel "intake": `)
			assert.Contains(t, msg, "store "+strings.SplitN(url, ":", 2)[0]+": ")
			assert.Equal(t, 1, strings.Count(msg, "store "+strings.SplitN(url, ":", 2)[0]+": "), "the store is named once")
			assert.True(t, strings.Contains(msg, "read-only file system") || strings.Contains(msg, "permission denied") ||
				strings.Contains(msg, "readonly"), "the cause is named: %s", msg)
		})
	}
}

// TestWritableStoreStarts: the probe of a writable store leaves nothing.
func TestWritableStoreStarts(t *testing.T) {
	data := t.TempDir()
	cfg := load(t, strings.ReplaceAll(roChannel, "STORE", "sqlite:"+filepath.Join(data, "intake.db")))
	srv, err := serve.New(cfg, serve.Options{DataDir: data, Admin: "off"})
	require.NoError(t, err)
	defer srv.Close()
	ch, ok := srv.Channel("intake")
	require.True(t, ok)
	n, err := ch.Store().Count(context.Background(), store.Query{})
	require.NoError(t, err)
	assert.Zero(t, n)
}

package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/component"
)

func openURL(t *testing.T, url string) (*Store, error) {
	t.Helper()
	reg, err := component.NewRegistry(Component)
	require.NoError(t, err)
	ref, err := reg.ParseURL(component.KindStore, url)
	require.NoError(t, err)
	open, err := ref.Store(component.Env{})
	if err != nil {
		return nil, err
	}
	st, err := open()
	if err != nil {
		return nil, err
	}
	return st.(*Store), nil
}

func TestComponentOptions(t *testing.T) {
	dir := t.TempDir()
	s, err := openURL(t, "sqlite:"+filepath.Join(dir, "sub", "x.db")+"?sync=full&batch=16&wait=1ms")
	require.NoError(t, err)
	assert.Equal(t, Options{Sync: SyncFull, MaxBatch: 16, MaxWait: 1e6}, s.opts)
	assert.Equal(t, "2", pragma(t, s.w, "synchronous"))
	require.NoError(t, s.Begin(context.Background(), newMessage("a", nil)))
	require.NoError(t, s.Close())
	assert.FileExists(t, filepath.Join(dir, "sub", "x.db"), "the path is the part before the options")

	s, err = openURL(t, "sqlite:"+filepath.Join(dir, "y.db"))
	require.NoError(t, err)
	assert.Equal(t, Options{Sync: SyncNormal, MaxBatch: DefaultMaxBatch}, s.opts, "the default")
	assert.Equal(t, "1", pragma(t, s.w, "synchronous"))
	require.NoError(t, s.Close())

	_, err = openURL(t, "sqlite:"+filepath.Join(dir, "z.db")+"?sync=yes")
	assert.ErrorIs(t, err, component.ErrInvalid)
	assert.ErrorContains(t, err, `sync "yes": want normal or full`)
}

func TestSpecFieldsWin(t *testing.T) {
	path, o, err := Spec{Path: "x.db?sync=full&batch=4", MaxBatch: 9, Sync: "normal"}.options()
	require.NoError(t, err)
	assert.Equal(t, "x.db", path)
	assert.Equal(t, Options{Sync: SyncFull, MaxBatch: 9}, o, "sync: normal is the default, which the path overrides")
	_, o, err = Spec{Path: "x.db", Sync: "full"}.options()
	require.NoError(t, err)
	assert.Equal(t, SyncFull, o.Sync)
}

package file

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/internal/testfs"
)

func TestProbeReadOnlyFolder(t *testing.T) {
	dir := testfs.ReadOnlyDir(t, func(dir string) {
		s, err := Open(dir)
		require.NoError(t, err)
		require.NoError(t, s.Put(context.Background(), message.New("text/plain", []byte("x"), nil)))
		require.NoError(t, s.Close())
	})
	s, err := Open(dir)
	require.NoError(t, err, "a read-only folder can be read")
	defer s.Close()
	n, err := s.Count(context.Background(), store.Query{})
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	_, err = store.Probe(context.Background(), s)
	require.Error(t, err)
	var oe *store.OpError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "probe", oe.Op)
	assert.Contains(t, err.Error(), "store file: probe: ")
	assert.True(t, errors.Is(err, fs.ErrPermission) || strings.Contains(err.Error(), "read-only file system"), err.Error())
}

func TestProbeLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Probe(context.Background()))
	ents, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, ents)
}

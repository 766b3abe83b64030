package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/internal/testfs"
)

// makeDB creates a database at path holding one message, and closes it.
func makeDB(t *testing.T, path string) {
	t.Helper()
	s, err := Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Put(context.Background(), message.New("text/plain", []byte("x"), nil)))
	require.NoError(t, s.Close())
}

// unwritable checks that a database that cannot be written is refused by
// Open or by Probe, with an error naming the store and the cause.
func unwritable(t *testing.T, path string) {
	t.Helper()
	s, err := Open(path)
	if err == nil {
		defer s.Close()
		_, err = store.Probe(context.Background(), s)
		require.Error(t, err, "a read-only database is not writable")
		var oe *store.OpError
		require.ErrorAs(t, err, &oe)
		assert.Equal(t, "probe", oe.Op)
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "store sqlite: ")
	msg := err.Error()
	assert.True(t, strings.Contains(msg, "readonly") || strings.Contains(msg, "read-only") || strings.Contains(msg, "permission denied"),
		"the cause is named: %s", msg)
	t.Log(err)
}

func TestProbeReadOnlyFolder(t *testing.T) {
	dir := testfs.ReadOnlyDir(t, func(dir string) { makeDB(t, filepath.Join(dir, "a.db")) })
	unwritable(t, filepath.Join(dir, "a.db"))

	_, err := Open(filepath.Join(dir, "new.db"))
	require.Error(t, err, "no database can be made in a read-only folder")
	assert.Contains(t, err.Error(), "store sqlite: open")
	assert.Contains(t, err.Error(), "the database's folder cannot be written")
}

func TestProbeReadOnlyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	makeDB(t, path)
	if !testfs.ReadOnlyFile(t, path) {
		t.Skip("root writes through file modes: TestProbeReadOnlyFolder covers a read-only database")
	}
	unwritable(t, path)
}

func TestProbeMemory(t *testing.T) {
	s, err := Open(":memory:")
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Probe(context.Background()))
}

package store_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory() })
}

func TestSQLiteConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.OpenSQLite(filepath.Join(t.TempDir(), "store.db"))
		require.NoError(t, err)
		return s
	})
}

func TestSQLiteMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.OpenSQLite(":memory:")
		require.NoError(t, err)
		return s
	})
}

func TestSQLiteDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	storetest.RunDurable(t, func(t *testing.T) store.Store {
		s, err := store.OpenSQLite(path)
		require.NoError(t, err)
		return s
	})
}

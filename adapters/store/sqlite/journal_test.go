package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/storetest"
)

func TestJournalConformance(t *testing.T) {
	storetest.RunJournal(t, func(t *testing.T) store.Store {
		s, err := Open(filepath.Join(t.TempDir(), "store.db"))
		require.NoError(t, err)
		return s
	})
}

func TestJournalInMemoryDatabase(t *testing.T) {
	storetest.RunJournal(t, func(t *testing.T) store.Store {
		s, err := Open(":memory:")
		require.NoError(t, err)
		return s
	})
}

func TestJournalDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	storetest.RunJournalDurable(t, func(t *testing.T) store.Store {
		s, err := Open(path)
		require.NoError(t, err)
		return s
	})
}

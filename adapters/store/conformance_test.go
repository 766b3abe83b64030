package store_test

import (
	"testing"

	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory() })
}

func TestBoundedMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return store.NewMemory(store.WithMaxFinished(store.DefaultMaxFinished))
	})
}

func TestMemoryJournalConformance(t *testing.T) {
	storetest.RunJournal(t, func(t *testing.T) store.Store { return store.NewMemory() })
}

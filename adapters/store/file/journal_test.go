package file

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/storetest"
)

func TestJournalConformance(t *testing.T) {
	storetest.RunJournal(t, func(t *testing.T) store.Store {
		s, err := Open(t.TempDir())
		require.NoError(t, err)
		return s
	})
}

func TestJournalDurable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "messages")
	storetest.RunJournalDurable(t, func(t *testing.T) store.Store {
		s, err := Open(dir)
		require.NoError(t, err)
		return s
	})
}

// TestJournalFilesAreNotRecords: a journal file sits beside its record
// and the index never takes it for one; a reopened store finds the
// waits again.
func TestJournalFilesAreNotRecords(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, s.Begin(ctx, newMessage("m1")))
	require.NoError(t, s.Park(ctx, "m1", store.Wait{Path: "f/w", For: time.Hour}, store.Update{}, store.JournalEntry{Path: "f/a"}))
	require.NoError(t, s.Close())
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	require.NoError(t, err)
	var base []string
	for _, n := range names {
		base = append(base, filepath.Base(n))
	}
	assert.ElementsMatch(t, []string{"m1.json", "m1.journal"}, base)

	s, err = Open(dir)
	require.NoError(t, err)
	defer s.Close()
	n, err := s.Count(ctx, store.Query{})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	due, err := s.DueWaits(ctx, time.Now().Add(2*time.Hour), 0)
	require.NoError(t, err)
	require.Len(t, due, 1)
	assert.Equal(t, "m1", due[0].ID)
	b, err := os.ReadFile(filepath.Join(dir, "m1.journal"))
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(b), `"path":"f/a"`), string(b))
}

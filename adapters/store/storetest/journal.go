package storetest

import (
	"context"
	"encoding/json"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/store"
	flowerrors "github.com/svcflow/svcflow/errors"
)

// journalOf returns s as a store.Journal, failing the test when it is not.
func journalOf(t *testing.T, s store.Store) store.Journal {
	t.Helper()
	j, ok := s.(store.Journal)
	require.True(t, ok, "%T does not implement store.Journal", s)
	return j
}

// RunJournal checks, each in a subtest, the behaviour of a store that
// implements [store.Journal] (the journal of durable runs): entries in
// order with their writes, parking in state Waiting with its wait,
// waking once, timers by due time, clearing, errors. open must return a
// new, empty store each time; RunJournal closes it.
func RunJournal(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	newStore := func(t *testing.T) (store.Store, store.Journal) {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { assert.NoError(t, s.Close()) })
		return s, journalOf(t, s)
	}
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.FixedZone("x", 3600))

	t.Run("entries in order with their writes", func(t *testing.T) {
		s, j := newStore(t)
		require.NoError(t, s.Begin(ctx, msg("m", 0, nil)))
		got, err := j.Journal(ctx, "m")
		require.NoError(t, err)
		assert.Empty(t, got)
		before := time.Now().UTC().Truncate(time.Millisecond)
		require.NoError(t, j.AppendJournal(ctx, "m", store.JournalEntry{Path: "f/a", Name: "a", Fingerprint: "fp1", Start: start,
			Duration: 3 * time.Millisecond, Attempts: 2, Writes: map[string]any{"n": 1, "big": json.Number("12345678901234567891"), "o": map[string]any{"k": []any{"v"}}}}))
		require.NoError(t, j.AppendJournal(ctx, "m",
			store.JournalEntry{Path: "f/b", Deleted: []string{"n"}},
			store.JournalEntry{Path: "f/each(x)[0]", Outcome: flowerrors.KindStop, Err: "timed out", Undo: []store.JournalUndo{
				{Key: "undo:f/each(x)/r", Name: "r", Path: "f/each(x)/r", Writes: map[string]any{"item": 2, "big": json.Number("12345678901234567891")}, Deleted: []string{"z"}},
				{Key: "undo:f/s", Own: true}}}))
		got, err = j.Journal(ctx, "m")
		require.NoError(t, err)
		require.Len(t, got, 3)
		assert.Equal(t, []store.JournalUndo{
			{Key: "undo:f/each(x)/r", Name: "r", Path: "f/each(x)/r", Writes: map[string]any{"item": 2.0, "big": json.Number("12345678901234567891")}, Deleted: []string{"z"}},
			{Key: "undo:f/s", Own: true}}, got[2].Undo, "undos come back with their contexts as a stored context does")
		assert.Equal(t, "f/a", got[0].Path)
		assert.Equal(t, "a", got[0].Name)
		assert.Equal(t, "fp1", got[0].Fingerprint)
		assert.True(t, start.Equal(got[0].Start))
		assert.Equal(t, time.UTC, got[0].Start.Location())
		assert.Equal(t, 3*time.Millisecond, got[0].Duration)
		assert.Equal(t, 2, got[0].Attempts)
		assert.Equal(t, map[string]any{"n": 1.0, "big": json.Number("12345678901234567891"), "o": map[string]any{"k": []any{"v"}}}, got[0].Writes,
			"writes come back as a stored context does")
		assert.False(t, got[0].At.Before(before))
		assert.Equal(t, []string{"n"}, got[1].Deleted)
		assert.Nil(t, got[1].Writes)
		assert.Equal(t, flowerrors.KindStop, got[2].Outcome)
		assert.Equal(t, "timed out", got[2].Err)
		rec, err := s.Get(ctx, "m")
		require.NoError(t, err)
		assert.Equal(t, store.Processing, rec.State, "appending does not change the state")
	})

	t.Run("errors", func(t *testing.T) {
		s, j := newStore(t)
		_, err := j.Journal(ctx, "nope")
		assert.ErrorIs(t, err, store.ErrNotFound)
		assert.ErrorIs(t, j.AppendJournal(ctx, "nope", store.JournalEntry{Path: "f/a"}), store.ErrNotFound)
		assert.ErrorIs(t, j.ClearJournal(ctx, "nope"), store.ErrNotFound)
		assert.ErrorIs(t, j.Park(ctx, "nope", store.Wait{Path: "f/w"}, store.Update{}), store.ErrNotFound)
		require.NoError(t, s.Begin(ctx, msg("m", 0, nil)))
		err = j.AppendJournal(ctx, "m", store.JournalEntry{Path: "f/a"}, store.JournalEntry{})
		assert.ErrorIs(t, err, store.ErrInvalid, "an empty path")
		var oe *store.OpError
		if assert.ErrorAs(t, err, &oe) {
			assert.Equal(t, "m", oe.ID)
			assert.NotEmpty(t, oe.Store)
		}
		assert.ErrorIs(t, j.AppendJournal(ctx, "m", store.JournalEntry{Path: "f/a", Writes: map[string]any{"x": math.Inf(1)}}), store.ErrInvalid)
		got, err := j.Journal(ctx, "m")
		require.NoError(t, err)
		assert.Empty(t, got, "nothing of a refused append is kept")
		_, err = j.Wait(ctx, "m")
		assert.ErrorIs(t, err, store.ErrNotWaiting)
		assert.ErrorIs(t, j.Wake(ctx, "m", "f/w", store.JournalEntry{Path: "f/w"}), store.ErrNotWaiting)
		assert.ErrorIs(t, j.Park(ctx, "m", store.Wait{}, store.Update{}), store.ErrInvalid, "a wait with no path")
		assert.ErrorIs(t, j.Park(ctx, "m", store.Wait{Path: "f/w", For: -time.Second}, store.Update{}), store.ErrInvalid)
		rec, err := s.Get(ctx, "m")
		require.NoError(t, err)
		assert.Equal(t, store.Processing, rec.State, "a refused park changes nothing")
	})

	t.Run("park, wake once", func(t *testing.T) {
		s, j := newStore(t)
		require.NoError(t, s.Begin(ctx, msg("m", 0, nil)))
		before := time.Now().UTC().Truncate(time.Millisecond)
		require.NoError(t, j.Park(ctx, "m", store.Wait{Path: "f/approve", Step: "approve", Signal: "approved", Into: "approval",
			For: time.Hour, Timeout: flowerrors.KindStop, Reason: "no approval"},
			store.Update{Context: map[string]any{"a": 1.0}, Trace: json.RawMessage(`{"steps":[]}`)},
			store.JournalEntry{Path: "f/a", Writes: map[string]any{"a": 1.0}}))
		rec, err := s.Get(ctx, "m")
		require.NoError(t, err)
		assert.Equal(t, store.Waiting, rec.State)
		assert.Equal(t, []store.State{store.Pending, store.Processing, store.Waiting}, states(rec.History))
		assert.Equal(t, map[string]any{"a": 1.0}, rec.Message.Context)
		assert.JSONEq(t, `{"steps":[]}`, string(rec.Message.Trace))
		w, err := j.Wait(ctx, "m")
		require.NoError(t, err)
		assert.Equal(t, "m", w.ID)
		assert.Equal(t, "f/approve", w.Path)
		assert.Equal(t, "approve", w.Step)
		assert.Equal(t, "approved", w.Signal)
		assert.Equal(t, "approval", w.Into)
		assert.Equal(t, flowerrors.KindStop, w.Timeout)
		assert.Equal(t, "no approval", w.Reason)
		assert.False(t, w.Since.Before(before))
		assert.Equal(t, w.Since.Add(time.Hour), w.Due)
		got, err := j.Journal(ctx, "m")
		require.NoError(t, err)
		require.Len(t, got, 1)

		n, err := s.Count(ctx, store.Query{States: []store.State{store.Waiting}})
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		owed, err := store.Recover(ctx, s)
		require.NoError(t, err)
		assert.Empty(t, owed, "a waiting message is not owed")

		// Parked again at the same step (a crash before the wake): the
		// wait keeps its time.
		require.NoError(t, s.Transition(ctx, "m", store.Processing, store.Update{}))
		require.NoError(t, j.Park(ctx, "m", store.Wait{Path: "f/approve", Signal: "approved", For: time.Hour}, store.Update{}))
		w2, err := j.Wait(ctx, "m")
		require.NoError(t, err)
		assert.True(t, w.Since.Equal(w2.Since))
		assert.True(t, w.Due.Equal(w2.Due))

		assert.ErrorIs(t, j.Wake(ctx, "m", "f/other", store.JournalEntry{Path: "f/other"}), store.ErrNotWaiting)
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				err := j.Wake(ctx, "m", "f/approve", store.JournalEntry{Path: "f/approve", Writes: map[string]any{"approval": map[string]any{"ok": true}}})
				if err == nil {
					wins.Add(1)
				} else {
					assert.ErrorIs(t, err, store.ErrNotWaiting)
				}
			})
		}
		wg.Wait()
		assert.Equal(t, int32(1), wins.Load(), "a wait is woken once")
		rec, err = s.Get(ctx, "m")
		require.NoError(t, err)
		assert.Equal(t, store.Processing, rec.State, "woken: its run resumes")
		assert.Equal(t, 3, rec.Attempts)
		_, err = j.Wait(ctx, "m")
		assert.ErrorIs(t, err, store.ErrNotWaiting)
		got, err = j.Journal(ctx, "m")
		require.NoError(t, err)
		require.Len(t, got, 2)
		assert.Equal(t, map[string]any{"approval": map[string]any{"ok": true}}, got[1].Writes)
		owed, err = store.Recover(ctx, s)
		require.NoError(t, err)
		assert.Equal(t, []string{"m"}, ids(owed), "a woken message is owed")

		// A new park at another step starts a new wait.
		require.NoError(t, j.Park(ctx, "m", store.Wait{Path: "f/nap", For: time.Minute}, store.Update{}))
		w3, err := j.Wait(ctx, "m")
		require.NoError(t, err)
		assert.False(t, w3.Since.Before(w.Since))
		assert.Empty(t, w3.Signal)
	})

	t.Run("timers by due time", func(t *testing.T) {
		s, j := newStore(t)
		_, ok, err := j.NextDue(ctx)
		require.NoError(t, err)
		assert.False(t, ok)
		for i, d := range []time.Duration{3 * time.Hour, time.Hour, 0, 2 * time.Hour} {
			id := string(rune('a' + i))
			require.NoError(t, s.Begin(ctx, msg(id, 0, nil)))
			require.NoError(t, j.Park(ctx, id, store.Wait{Path: "f/w", Signal: "s", For: d}, store.Update{}))
		}
		next, ok, err := j.NextDue(ctx)
		require.NoError(t, err)
		require.True(t, ok)
		wb, err := j.Wait(ctx, "b")
		require.NoError(t, err)
		assert.True(t, next.Equal(wb.Due), "the soonest")

		due, err := j.DueWaits(ctx, time.Now(), 0)
		require.NoError(t, err)
		assert.Empty(t, due)
		due, err = j.DueWaits(ctx, time.Now().Add(150*time.Minute), 0)
		require.NoError(t, err)
		require.Len(t, due, 2)
		assert.Equal(t, "b", due[0].ID)
		assert.Equal(t, "d", due[1].ID)
		due, err = j.DueWaits(ctx, time.Now().Add(24*time.Hour), 2)
		require.NoError(t, err)
		assert.Len(t, due, 2, "limit")
		due, err = j.DueWaits(ctx, time.Now().Add(24*time.Hour), 0)
		require.NoError(t, err)
		assert.Len(t, due, 3, "a wait without a timeout is never due")

		require.NoError(t, j.Wake(ctx, "b", "f/w", store.JournalEntry{Path: "f/w"}))
		next, ok, err = j.NextDue(ctx)
		require.NoError(t, err)
		require.True(t, ok)
		wd, err := j.Wait(ctx, "d")
		require.NoError(t, err)
		assert.True(t, next.Equal(wd.Due))
	})

	t.Run("clear", func(t *testing.T) {
		s, j := newStore(t)
		require.NoError(t, s.Begin(ctx, msg("m", 0, nil)))
		require.NoError(t, j.Park(ctx, "m", store.Wait{Path: "f/w", For: time.Second}, store.Update{}, store.JournalEntry{Path: "f/a"}))
		require.NoError(t, j.ClearJournal(ctx, "m"))
		got, err := j.Journal(ctx, "m")
		require.NoError(t, err)
		assert.Empty(t, got)
		_, err = j.Wait(ctx, "m")
		assert.ErrorIs(t, err, store.ErrNotWaiting)
		_, ok, err := j.NextDue(ctx)
		require.NoError(t, err)
		assert.False(t, ok)
	})

	t.Run("closed", func(t *testing.T) {
		s := open(t)
		j := journalOf(t, s)
		require.NoError(t, s.Begin(ctx, msg("m", 0, nil)))
		require.NoError(t, s.Close())
		_, err := j.Journal(ctx, "m")
		assert.ErrorIs(t, err, store.ErrClosed)
		assert.ErrorIs(t, j.AppendJournal(ctx, "m", store.JournalEntry{Path: "f/a"}), store.ErrClosed)
		_, _, err = j.NextDue(ctx)
		assert.ErrorIs(t, err, store.ErrClosed)
	})
}

// RunJournalDurable checks that a store keeps the journal and the waits
// across Close. Each call of open must open the same storage, empty at
// the first call; it closes what it opens.
func RunJournalDurable(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	s := open(t)
	j := journalOf(t, s)
	require.NoError(t, s.Begin(ctx, msg("m", 0, nil)))
	require.NoError(t, j.AppendJournal(ctx, "m", store.JournalEntry{Path: "f/a", Writes: map[string]any{"a": "x"}}))
	require.NoError(t, j.Park(ctx, "m", store.Wait{Path: "f/w", Signal: "go", For: time.Hour}, store.Update{}))
	want, err := j.Journal(ctx, "m")
	require.NoError(t, err)
	wantWait, err := j.Wait(ctx, "m")
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s = open(t)
	defer func() { assert.NoError(t, s.Close()) }()
	j = journalOf(t, s)
	got, err := j.Journal(ctx, "m")
	require.NoError(t, err)
	assert.Equal(t, want, got)
	w, err := j.Wait(ctx, "m")
	require.NoError(t, err)
	assert.Equal(t, wantWait, w)
	next, ok, err := j.NextDue(ctx)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.True(t, next.Equal(wantWait.Due))
	require.NoError(t, j.Wake(ctx, "m", "f/w", store.JournalEntry{Path: "f/w"}))
	rec, err := s.Get(ctx, "m")
	require.NoError(t, err)
	assert.Equal(t, store.Processing, rec.State)
}

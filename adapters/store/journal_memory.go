package store

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/svcflow/svcflow/internal/storeutil"
)

var _ Journal = (*Memory)(nil)

// record returns the record with the given ID for a journal operation,
// checking ctx and that the store is open; s.mu is held.
func (s *Memory) journalRecord(ctx context.Context, op, id string) (*memRecord, error) {
	if err := storeutil.CtxErr(ctx); err != nil {
		return nil, s.fail(op, id, "", err)
	}
	if s.closed {
		return nil, s.fail(op, id, "", ErrClosed)
	}
	r, ok := s.recs[id]
	if !ok {
		return nil, s.fail(op, id, "", ErrNotFound)
	}
	return r, nil
}

// encodeEntries encodes journal entries for storage.
func encodeEntries(entries []JournalEntry, at time.Time) ([][]byte, error) {
	out := make([][]byte, len(entries))
	for i, e := range entries {
		b, err := EncodeJournalEntry(e, at)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// Journal implements [Journal].
func (s *Memory) Journal(ctx context.Context, id string) ([]JournalEntry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.journalRecord(ctx, "journal", id)
	if err != nil {
		return nil, err
	}
	out := make([]JournalEntry, 0, len(r.journal))
	for _, b := range r.journal {
		e, err := DecodeJournalEntry(b)
		if err != nil {
			return nil, s.fail("journal", id, "", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// AppendJournal implements [Journal].
func (s *Memory) AppendJournal(ctx context.Context, id string, entries ...JournalEntry) error {
	enc, err := encodeEntries(entries, storeutil.Now())
	if err != nil {
		return s.fail("journal", id, "", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.journalRecord(ctx, "journal", id)
	if err != nil {
		return err
	}
	r.journal = append(r.journal, enc...)
	return nil
}

// ClearJournal implements [Journal].
func (s *Memory) ClearJournal(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.journalRecord(ctx, "journal", id)
	if err != nil {
		return err
	}
	r.journal, r.wait = nil, nil
	return nil
}

// Park implements [Journal].
func (s *Memory) Park(ctx context.Context, id string, w Wait, u Update, entries ...JournalEntry) error {
	at := storeutil.Now()
	enc, err := encodeEntries(entries, at)
	if err != nil {
		return s.fail("park", id, Waiting, err)
	}
	nu, err := NormalizeUpdate(Waiting, u)
	if err != nil {
		return s.fail("park", id, Waiting, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.journalRecord(ctx, "park", id)
	if err != nil {
		return err
	}
	since := at
	if r.wait != nil && r.wait.Path == w.Path {
		since = r.wait.Since
	}
	if w, err = CheckWait(id, w, since); err != nil {
		return s.fail("park", id, Waiting, err)
	}
	r.journal = append(r.journal, enc...)
	r.wait = &w
	s.transition(r, Waiting, nu, at)
	return nil
}

// Wake implements [Journal].
func (s *Memory) Wake(ctx context.Context, id, path string, e JournalEntry) error {
	at := storeutil.Now()
	b, err := EncodeJournalEntry(e, at)
	if err != nil {
		return s.fail("wake", id, Processing, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.journalRecord(ctx, "wake", id)
	if err != nil {
		return err
	}
	if r.wait == nil || r.wait.Path != path {
		return s.fail("wake", id, "", ErrNotWaiting)
	}
	r.journal = append(r.journal, b)
	r.wait = nil
	s.transition(r, Processing, NormalizedUpdate{}, at)
	return nil
}

// Wait implements [Journal].
func (s *Memory) Wait(ctx context.Context, id string) (*Wait, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.journalRecord(ctx, "wait", id)
	if err != nil {
		return nil, err
	}
	if r.wait == nil {
		return nil, s.fail("wait", id, "", ErrNotWaiting)
	}
	w := *r.wait
	return &w, nil
}

// DueWaits implements [Journal]. It costs a pass over the records.
func (s *Memory) DueWaits(ctx context.Context, t time.Time, limit int) ([]*Wait, error) {
	if err := storeutil.CtxErr(ctx); err != nil {
		return nil, s.fail("wait", "", "", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, s.fail("wait", "", "", ErrClosed)
	}
	var out []*Wait
	for _, r := range s.recs {
		if w := r.wait; w != nil && !w.Due.IsZero() && !w.Due.After(t) {
			c := *w
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *Wait) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// NextDue implements [Journal]. It costs a pass over the records.
func (s *Memory) NextDue(ctx context.Context) (time.Time, bool, error) {
	if err := storeutil.CtxErr(ctx); err != nil {
		return time.Time{}, false, s.fail("wait", "", "", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return time.Time{}, false, s.fail("wait", "", "", ErrClosed)
	}
	var next time.Time
	for _, r := range s.recs {
		if w := r.wait; w != nil && !w.Due.IsZero() && (next.IsZero() || w.Due.Before(next)) {
			next = w.Due
		}
	}
	return next, !next.IsZero(), nil
}

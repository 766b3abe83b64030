package file

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/internal/storeutil"
)

var _ store.Journal = (*Store)(nil)

// The journal of a message (store.Journal) is a file of its own beside
// its record, named as the record with journalExt instead of ".json"
// (so that the index never takes it for a record), written as records
// are: a temporary file synced and renamed, then the folder synced. The
// waits are indexed in memory, rebuilt from the journal files when the
// store is first asked about them.
//
// A park or a wake writes two files, the journal and the record, in an
// order that leaves nothing stranded if the process dies between them:
// Park writes the wait first (a crash leaves the message processing: it
// is recovered, parks again at the same step and keeps its wait's time);
// Wake moves the record to processing first (a crash leaves it owed with
// its wait: it is recovered and parks again, its timer still due).
const journalExt = ".journal"

// journalFile is the content of a journal file.
type journalFile struct {
	Entries []json.RawMessage `json:"entries"` // store.EncodeJournalEntry
	Wait    *store.Wait       `json:"wait,omitempty"`
}

// journals is the journal part of a Store.
type journals struct {
	once  sync.Once
	err   error
	mu    sync.Mutex             // guards waits
	waits map[string]*store.Wait // by message ID
	locks [64]sync.Mutex         // serialize journal writers of a message
}

func journalName(recordName string) string {
	return strings.TrimSuffix(recordName, fileExt) + journalExt
}

// journalsOf returns the store's journals, loading the waits index on
// first use.
func (s *Store) journalsOf() (*journals, error) {
	j := &s.jr
	j.once.Do(func() {
		j.waits = map[string]*store.Wait{}
		s.mu.RLock()
		names := make(map[string]string, len(s.index))
		for id, e := range s.index {
			names[id] = e.name
		}
		s.mu.RUnlock()
		for id, name := range names {
			jf, err := s.readJournal(name)
			if err != nil {
				j.err = err
				return
			}
			if jf.Wait != nil {
				j.waits[id] = jf.Wait
			}
		}
	})
	return j, j.err
}

// guarded runs f as an operation of the open store.
func (s *Store) guarded(f func() error) error {
	if !s.life.Enter() {
		return store.ErrClosed
	}
	defer s.life.Exit()
	return f()
}

func (s *Store) readJournal(recordName string) (*journalFile, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, journalName(recordName)))
	if errors.Is(err, fs.ErrNotExist) {
		return &journalFile{}, nil
	}
	if err != nil {
		return nil, err
	}
	var jf journalFile
	if err := json.Unmarshal(data, &jf); err != nil {
		return nil, fmt.Errorf("%s: %w", journalName(recordName), err)
	}
	return &jf, nil
}

// writeJournal stores jf atomically, as write stores a record, and as
// durably (see Sync).
func (s *Store) writeJournal(recordName string, jf *journalFile) error {
	return s.writeJSON(journalName(recordName), jf)
}

// withJournal runs f on the journal of message id under the message's
// journal lock; f returns whether to write it back. Each file operation
// holds the store open on its own (see guarded), so that f may call
// Transition, which does too.
func (s *Store) withJournal(ctx context.Context, op, id string, to store.State, f func(j *journals, name string, jf *journalFile) (bool, error)) error {
	if err := storeutil.CtxErr(ctx); err != nil {
		return s.fail(op, id, to, err)
	}
	var (
		j    *journals
		name string
		jf   *journalFile
	)
	err := s.guarded(func() error {
		var err error
		if j, err = s.journalsOf(); err != nil {
			return err
		}
		e, ok := s.lookup(id)
		if !ok {
			return store.ErrNotFound
		}
		name = e.name
		return nil
	})
	if err != nil {
		return s.fail(op, id, to, err)
	}
	l := &j.locks[maphash.String(s.seed, id)%uint64(len(j.locks))]
	l.Lock()
	defer l.Unlock()
	if err := s.guarded(func() error { jf, err = s.readJournal(name); return err }); err != nil {
		return s.fail(op, id, to, err)
	}
	write, err := f(j, name, jf)
	if err == nil && write {
		err = s.guarded(func() error { return s.writeJournal(name, jf) })
	}
	if err != nil {
		var oe *store.OpError
		if errors.As(err, &oe) {
			return err
		}
		return s.fail(op, id, to, err)
	}
	return nil
}

func encodeEntries(entries []store.JournalEntry, at time.Time) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(entries))
	for i, e := range entries {
		b, err := store.EncodeJournalEntry(e, at)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// Journal implements [store.Journal].
func (s *Store) Journal(ctx context.Context, id string) ([]store.JournalEntry, error) {
	out := []store.JournalEntry{}
	err := s.withJournal(ctx, "journal", id, "", func(_ *journals, _ string, jf *journalFile) (bool, error) {
		for _, b := range jf.Entries {
			e, err := store.DecodeJournalEntry(b)
			if err != nil {
				return false, err
			}
			out = append(out, e)
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendJournal implements [store.Journal]: one journal file write.
func (s *Store) AppendJournal(ctx context.Context, id string, entries ...store.JournalEntry) error {
	enc, err := encodeEntries(entries, storeutil.Now())
	if err != nil {
		return s.fail("journal", id, "", err)
	}
	return s.withJournal(ctx, "journal", id, "", func(_ *journals, _ string, jf *journalFile) (bool, error) {
		jf.Entries = append(jf.Entries, enc...)
		return len(enc) > 0, nil
	})
}

// ClearJournal implements [store.Journal].
func (s *Store) ClearJournal(ctx context.Context, id string) error {
	return s.withJournal(ctx, "journal", id, "", func(j *journals, _ string, jf *journalFile) (bool, error) {
		jf.Entries, jf.Wait = nil, nil
		j.mu.Lock()
		delete(j.waits, id)
		j.mu.Unlock()
		return true, nil
	})
}

// Park implements [store.Journal]: the journal file (entries and wait),
// then the record (see journalExt for the order).
func (s *Store) Park(ctx context.Context, id string, w store.Wait, u store.Update, entries ...store.JournalEntry) error {
	now := storeutil.Now()
	enc, err := encodeEntries(entries, now)
	if err != nil {
		return s.fail("park", id, store.Waiting, err)
	}
	if _, err := store.NormalizeUpdate(store.Waiting, u); err != nil {
		return s.fail("park", id, store.Waiting, err)
	}
	if _, err := store.CheckWait(id, w, now); err != nil {
		return s.fail("park", id, store.Waiting, err)
	}
	return s.withJournal(ctx, "park", id, store.Waiting, func(j *journals, name string, jf *journalFile) (bool, error) {
		since := now
		if jf.Wait != nil && jf.Wait.Path == w.Path {
			since = jf.Wait.Since
		}
		cw, err := store.CheckWait(id, w, since)
		if err != nil {
			return false, err
		}
		jf.Entries = append(jf.Entries, enc...)
		jf.Wait = &cw
		if err := s.guarded(func() error { return s.writeJournal(name, jf) }); err != nil {
			return false, err
		}
		j.mu.Lock()
		j.waits[id] = &cw
		j.mu.Unlock()
		if err := s.Transition(ctx, id, store.Waiting, u); err != nil {
			var oe *store.OpError
			if errors.As(err, &oe) {
				oe.Op = "park"
			}
			return false, err
		}
		return false, nil
	})
}

// Wake implements [store.Journal]: the record, then the journal file (see
// journalExt for the order).
func (s *Store) Wake(ctx context.Context, id, path string, e store.JournalEntry) error {
	enc, err := encodeEntries([]store.JournalEntry{e}, storeutil.Now())
	if err != nil {
		return s.fail("wake", id, store.Processing, err)
	}
	return s.withJournal(ctx, "wake", id, store.Processing, func(j *journals, _ string, jf *journalFile) (bool, error) {
		if jf.Wait == nil || jf.Wait.Path != path {
			return false, store.ErrNotWaiting
		}
		if err := s.Transition(ctx, id, store.Processing, store.Update{}); err != nil {
			var oe *store.OpError
			if errors.As(err, &oe) {
				oe.Op = "wake"
			}
			return false, err
		}
		jf.Entries = append(jf.Entries, enc...)
		jf.Wait = nil
		j.mu.Lock()
		delete(j.waits, id)
		j.mu.Unlock()
		return true, nil
	})
}

// Wait implements [store.Journal].
func (s *Store) Wait(ctx context.Context, id string) (*store.Wait, error) {
	var w *store.Wait
	err := s.withJournal(ctx, "wait", id, "", func(_ *journals, _ string, jf *journalFile) (bool, error) {
		if jf.Wait == nil {
			return false, store.ErrNotWaiting
		}
		c := *jf.Wait
		w = &c
		return false, nil
	})
	return w, err
}

// waitsIndex runs f over the waits index.
func (s *Store) waitsIndex(ctx context.Context, f func(waits map[string]*store.Wait)) error {
	if err := storeutil.CtxErr(ctx); err != nil {
		return s.fail("wait", "", "", err)
	}
	if !s.life.Enter() {
		return s.fail("wait", "", "", store.ErrClosed)
	}
	defer s.life.Exit()
	j, err := s.journalsOf()
	if err != nil {
		return s.fail("wait", "", "", err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	f(j.waits)
	return nil
}

// DueWaits implements [store.Journal], over the waits index in memory.
func (s *Store) DueWaits(ctx context.Context, t time.Time, limit int) ([]*store.Wait, error) {
	var out []*store.Wait
	err := s.waitsIndex(ctx, func(waits map[string]*store.Wait) {
		for _, w := range waits {
			if !w.Due.IsZero() && !w.Due.After(t) {
				c := *w
				out = append(out, &c)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *store.Wait) int {
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

// NextDue implements [store.Journal], over the waits index in memory.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var next time.Time
	err := s.waitsIndex(ctx, func(waits map[string]*store.Wait) {
		for _, w := range waits {
			if !w.Due.IsZero() && (next.IsZero() || w.Due.Before(next)) {
				next = w.Due
			}
		}
	})
	return next, !next.IsZero(), err
}

package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/svcflow/svcflow/errors"
)

// Waiting: a durable run parked the message at a step that waits for a
// time or a signal (see [Journal]). No goroutine holds it: it is a record
// until its wait is woken, which moves it to Processing.
const Waiting State = "waiting"

// Journal is implemented by a store that keeps the journal of durable
// runs (a channel with `durable: steps`): for each message, the units of
// its run that completed, each with its context delta, in the order they
// completed, and the wait of a message parked in state [Waiting]. It is
// optional, so that the Store contract stays small: a channel asks for
// durable runs only of a store that implements it. Memory, File, SQLite
// and PostgreSQL do; storetest.RunJournal checks a store that does. "In
// one write" below means atomically where the store can: SQLite, Memory
// and PostgreSQL do; File writes two files, in an order that a crash
// between them leaves the message owed and recovered (see file.Store.Park
// and Wake).
//
// The journal of a message is kept until [Journal.ClearJournal] (a run
// from the top); it outlives the message's run, so that `flowrun
// messages` shows it.
type Journal interface {
	// Journal returns the entries journaled for message id, oldest first
	// (none: an empty slice). It fails with ErrNotFound if id is not
	// stored.
	Journal(ctx context.Context, id string) ([]JournalEntry, error)
	// AppendJournal adds entries to the journal of message id, in one
	// write: they are durable when it returns. It fails with ErrNotFound
	// if id is not stored and ErrInvalid if an entry cannot be stored
	// (an empty path, writes that cannot be encoded as JSON).
	AppendJournal(ctx context.Context, id string, entries ...JournalEntry) error
	// ClearJournal drops the journal and the wait of message id (a run
	// from the top). It fails with ErrNotFound if id is not stored.
	ClearJournal(ctx context.Context, id string) error
	// Park records the wait w of message id, appends entries to its
	// journal (the units completed since the last write) and transitions
	// it to Waiting with u, all in one write. A wait at the same Path
	// recorded before (a run parked, crashed and parked again) keeps its
	// Since, so its Due does not move; otherwise Since is now. Due is
	// Since plus w.For (zero when For is zero: no timer).
	Park(ctx context.Context, id string, w Wait, u Update, entries ...JournalEntry) error
	// Wake ends the wait of message id at step path: it appends e to the
	// journal, drops the wait and transitions the message to Processing
	// (its run resumes at once; should the process end first, the
	// message is owed and recovered, as any message left processing), in
	// one write. It fails with ErrNotWaiting if the message has no wait at
	// path (it was woken already: a signal and a timeout, or two signals,
	// wake it once).
	Wake(ctx context.Context, id, path string, e JournalEntry) error
	// Wait returns the wait of message id, or ErrNotWaiting.
	Wait(ctx context.Context, id string) (*Wait, error)
	// DueWaits returns the waits whose Due is not zero and not after t,
	// soonest first, at most limit (0: all).
	DueWaits(ctx context.Context, t time.Time, limit int) ([]*Wait, error)
	// NextDue returns the earliest Due of the waits that have one; false
	// when none has.
	NextDue(ctx context.Context) (time.Time, bool, error)
}

// ErrNotWaiting is returned (wrapped in an *OpError) by [Journal.Wake]
// and [Journal.Wait] for a message that does not wait (at that step).
var ErrNotWaiting = errors.New("message is not waiting")

// JournalEntry is one completed unit of a durable run: a step, an
// element of an Each, a branch of an All, a loop (see package flow's
// Unit, of which it is the stored form).
type JournalEntry struct {
	// Path identifies the unit in its flow ("orders/charge",
	// "orders/each(items)[2]"). Required.
	Path string `json:"path"`
	// Name is the unit's step name, for people.
	Name string `json:"name,omitempty"`
	// Fingerprint is the structural fingerprint of the flow up to the
	// unit, when it was journaled.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Start is when the unit started (UTC when stored); Duration how long
	// it took.
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	// Attempts is how many times a step's service was called.
	Attempts int `json:"attempts,omitempty"`
	// Writes is the unit's context delta: the keys it wrote, with their
	// values, kept as a message's context is (see [DecodeContext]).
	Writes map[string]any `json:"writes,omitempty"`
	// Deleted lists the keys the unit deleted.
	Deleted []string `json:"deleted,omitempty"`
	// Outcome is KindOK for a unit that completed, or the error a woken
	// wait ended with (KindStop, KindFailed: a timeout), with Err as its
	// reason or text.
	Outcome errors.Kind `json:"outcome,omitempty"`
	Err     string      `json:"error,omitempty"`
	// Undo lists the undos of a saga that the unit journaled: those its
	// steps left to an enclosing saga (an element, a branch, a loop), or,
	// for the plan of a saga's compensation, every undo it runs (see
	// package flow's Unit).
	Undo []JournalUndo `json:"undo,omitempty"`
	// At is when the entry was journaled, set by the store.
	At time.Time `json:"at"`
}

// JournalUndo is an undo of a saga in a [JournalEntry] (package flow's
// Undo): the step it belongs to, and its context: the unit's own (Own) or
// a snapshot of it with Writes set (kept as a context is) and Deleted
// deleted.
type JournalUndo struct {
	Key     string         `json:"key"`
	Name    string         `json:"name,omitempty"`
	Path    string         `json:"path,omitempty"`
	Own     bool           `json:"own,omitempty"`
	Writes  map[string]any `json:"writes,omitempty"`
	Deleted []string       `json:"deleted,omitempty"`
}

// Wait is what a message parked in state [Waiting] waits for.
type Wait struct {
	// ID is the message's ID, set by the store.
	ID string `json:"id"`
	// Path is the unit path of the step that waits; Step its name.
	Path string `json:"path"`
	Step string `json:"step,omitempty"`
	// Fingerprint is the fingerprint of the step's unit, which the entry
	// that wakes it carries.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Signal names the signal that wakes it ("" for a timer).
	Signal string `json:"signal,omitempty"`
	// Into is the key that receives a signal's values ("": the values
	// are keys of their own).
	Into string `json:"into,omitempty"`
	// For is the time to wait: a timer's, a signal's timeout (0: none).
	For time.Duration `json:"for_ns,omitempty"`
	// Timeout is what the step ends with when Due passes: KindOK (it
	// completes), KindStop or KindFailed, with Reason.
	Timeout errors.Kind `json:"timeout,omitempty"`
	Reason  string      `json:"reason,omitempty"`
	// Since is when the message first parked at the step (set by the
	// store); Due is Since plus For, zero when For is zero.
	Since time.Time `json:"since"`
	Due   time.Time `json:"due,omitzero"`
}

// storedEntry is a JournalEntry as stores encode it: the writes as a
// context is encoded.
type storedEntry struct {
	JournalEntry
	Writes json.RawMessage `json:"writes,omitempty"`
	Undo   []storedUndo    `json:"undo,omitempty"`
}

type storedUndo struct {
	JournalUndo
	Writes json.RawMessage `json:"writes,omitempty"`
}

// EncodeJournalEntry checks e and encodes it as JSON, its Writes encoded
// as a message's context (see [Normalize]) and its times in UTC; at is
// the entry's At. A Journal implementation stores entries so and decodes
// them with [DecodeJournalEntry], so that every store returns the same.
// It fails with ErrInvalid for an empty Path, an invalid Outcome or
// Writes that cannot be encoded.
func EncodeJournalEntry(e JournalEntry, at time.Time) ([]byte, error) {
	if e.Path == "" {
		return nil, fmt.Errorf("%w: journal entry with an empty path", ErrInvalid)
	}
	if !e.Outcome.Valid() {
		return nil, fmt.Errorf("%w: journal entry %q: unknown outcome %s", ErrInvalid, e.Path, e.Outcome)
	}
	w, err := encodeContext(e.Writes)
	if err != nil {
		return nil, fmt.Errorf("journal entry %q: %w", e.Path, err)
	}
	e.Start, e.At = e.Start.UTC(), at.UTC()
	se := storedEntry{JournalEntry: e, Writes: w}
	for _, u := range e.Undo {
		if u.Key == "" {
			return nil, fmt.Errorf("%w: journal entry %q: an undo with an empty key", ErrInvalid, e.Path)
		}
		uw, err := encodeContext(u.Writes)
		if err != nil {
			return nil, fmt.Errorf("journal entry %q: undo %q: %w", e.Path, u.Key, err)
		}
		se.Undo = append(se.Undo, storedUndo{JournalUndo: u, Writes: uw})
	}
	b, err := json.Marshal(se)
	if err != nil {
		return nil, fmt.Errorf("%w: journal entry %q: %w", ErrInvalid, e.Path, err)
	}
	return b, nil
}

// DecodeJournalEntry decodes an entry [EncodeJournalEntry] encoded.
func DecodeJournalEntry(b []byte) (JournalEntry, error) {
	var s storedEntry
	if err := json.Unmarshal(b, &s); err != nil {
		return JournalEntry{}, fmt.Errorf("journal entry: %w", err)
	}
	e := s.JournalEntry
	if len(s.Writes) > 0 {
		w, err := DecodeContext(s.Writes)
		if err != nil {
			return JournalEntry{}, fmt.Errorf("journal entry %q: writes: %w", e.Path, err)
		}
		e.Writes = w
	}
	e.Undo = nil
	for _, su := range s.Undo {
		u := su.JournalUndo
		u.Writes = nil
		if len(su.Writes) > 0 {
			w, err := DecodeContext(su.Writes)
			if err != nil {
				return JournalEntry{}, fmt.Errorf("journal entry %q: undo %q: %w", e.Path, u.Key, err)
			}
			u.Writes = w
		}
		e.Undo = append(e.Undo, u)
	}
	return e, nil
}

// CheckWait checks that w can be stored for a Park, and returns it with
// ID, Since and Due set: since is when the message first parked at
// w.Path (now, or the Since of the wait it had there).
func CheckWait(id string, w Wait, since time.Time) (Wait, error) {
	if w.Path == "" {
		return Wait{}, fmt.Errorf("%w: wait with an empty path", ErrInvalid)
	}
	if w.For < 0 {
		return Wait{}, fmt.Errorf("%w: wait for a negative duration %s", ErrInvalid, w.For)
	}
	if !w.Timeout.Valid() {
		return Wait{}, fmt.Errorf("%w: wait: unknown timeout outcome %s", ErrInvalid, w.Timeout)
	}
	w.ID, w.Since, w.Due = id, since.UTC(), time.Time{}
	if w.For > 0 {
		w.Due = w.Since.Add(w.For)
	}
	return w, nil
}

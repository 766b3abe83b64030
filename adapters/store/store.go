package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/internal/jsonenc"
	"github.com/svcflow/svcflow/internal/jsonscan"
	"github.com/svcflow/svcflow/internal/storeutil"
)

// State is where a stored message is in its life.
type State string

// The states a stored message can be in.
const (
	// Pending: stored, not yet handed to a flow.
	Pending State = "pending"
	// Processing: a flow is running on the message.
	Processing State = "processing"
	// Done: the flow finished successfully.
	Done State = "done"
	// Rejected: the flow (or a source's validation) refused the message;
	// running it again will not help without a change.
	Rejected State = "rejected"
	// Error: the flow failed; the message may be replayed.
	Error State = "error"
	// Dead: set aside, a dead letter: the message failed on every one of
	// its channel's max_deliveries, or its runs kept crashing the process
	// (poison). It is not run again automatically, neither at a start nor
	// when delivered again, until it is replayed by hand.
	Dead State = "dead"
)

// States lists every valid state, in life-cycle order ([Waiting], of
// durable runs, is defined with [Journal]).
var States = []State{Pending, Processing, Done, Rejected, Error, Dead, Waiting}

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool {
	switch s {
	case Pending, Processing, Done, Rejected, Error, Dead, Waiting:
		return true
	}
	return false
}

// Transition is one state change in a record's history.
type Transition struct {
	// State is the state entered.
	State State `json:"state"`
	// At is when the state was entered, in UTC.
	At time.Time `json:"at"`
	// Err is the error text given with the change, if any.
	Err string `json:"err,omitempty"`
	// Outcome is the run's outcome given with the change (see
	// [Update.Outcome]); zero when none was given, which KnownOutcome
	// tells from errors.KindOK.
	Outcome errors.Kind `json:"outcome,omitempty"`
	// Reason is the Stop reason given with the change (see
	// [Update.Reason]); empty when none was given.
	Reason string `json:"reason,omitempty"`
}

// Record is a stored message with its processing state.
type Record struct {
	// Message is the stored message, including the context and trace of
	// the latest run.
	Message *message.Message `json:"message"`
	// State is the current state.
	State State `json:"state"`
	// Err is the error text given with the latest transition (empty when
	// none); History keeps earlier ones.
	Err string `json:"err,omitempty"`
	// Outcome is the run's outcome given with the latest transition, as
	// data: errors.KindOK for a Done record (errors.KindDropped for one a
	// Drop consumed), errors.KindStop for a Rejected one, errors.KindFailed, KindPanic, KindRetryExhausted, ...
	// for an Error one (see [Update.Outcome]). History keeps earlier ones.
	//
	// The zero Kind is errors.KindOK, and it also stands for "no outcome":
	// the record is Pending or Processing, or it was finished by a
	// transition that gave none (a record stored before stores kept
	// outcomes reads back so). KnownOutcome tells the two apart.
	Outcome errors.Kind `json:"outcome,omitempty"`
	// Reason is the reason a Rejected record was rejected with, given with
	// the latest transition as data: the Reason of the run's
	// *errors.StopError (see [Update.Reason]), or of its *errors.DropError
	// for a Done record with outcome dropped. It is empty otherwise, and
	// for a record stored before stores kept reasons.
	Reason string `json:"reason,omitempty"`
	// Attempts counts how many times the message entered Processing.
	Attempts int `json:"attempts"`
	// Updated is when the record last changed, in UTC.
	Updated time.Time `json:"updated"`
	// History lists every state change, oldest first. The first entry is
	// the Pending state entered by Put.
	History []Transition `json:"history"`
}

// KnownOutcome returns r's Outcome and whether it is known. The zero Kind,
// errors.KindOK, is the outcome of a Done record; in any other state it
// means that no outcome was given (a message pending or processing, or
// one finished before stores kept outcomes), and KnownOutcome reports
// false.
func (r *Record) KnownOutcome() (errors.Kind, bool) {
	return knownOutcome(r.State, r.Outcome)
}

// KnownOutcome returns t's Outcome and whether it is known, as
// [Record.KnownOutcome] does.
func (t Transition) KnownOutcome() (errors.Kind, bool) {
	return knownOutcome(t.State, t.Outcome)
}

func knownOutcome(s State, k errors.Kind) (errors.Kind, bool) {
	return k, k != errors.KindOK || s == Done
}

// Clone returns a deep copy of r.
func (r *Record) Clone() *Record {
	if r == nil {
		return nil
	}
	c := *r
	c.Message = r.Message.Clone()
	if c.Message != nil {
		c.Message.Context = deepCopyMap(r.Message.Context)
	}
	c.History = slices.Clone(r.History)
	return &c
}

// Update carries what a transition records besides the new state.
type Update struct {
	// Err is the error text of the run (empty when none). It becomes the
	// record's Err and is kept in the history.
	Err string
	// Outcome is how the run ended, errors.KindOf its error: ok, stop,
	// retry-exhausted, fatal, failed, panic, canceled, ... Leave it zero
	// when there is no run to report (entering Processing). It becomes the
	// record's Outcome and is kept in the history. It must be a valid
	// errors.Kind.
	Outcome errors.Kind
	// Reason is the Reason of the run's *errors.StopError when the run was
	// stopped (a rejection), or of its *errors.DropError when it dropped,
	// empty otherwise: the reason kept as data, so
	// that nobody parses Err to find it again. It becomes the record's
	// Reason and is kept in the history.
	Reason string
	// Context, when non-nil, replaces the stored message's Context.
	Context map[string]any
	// Trace, when not empty, replaces the stored message's Trace. It must
	// be valid JSON.
	Trace json.RawMessage
}

// Query selects records. The zero Query selects every record, oldest
// first.
type Query struct {
	// States, when not empty, keeps records in any of these states.
	States []State
	// Since keeps messages whose Time is at or after Since (zero: no bound).
	Since time.Time
	// Until keeps messages whose Time is before Until (zero: no bound).
	Until time.Time
	// Meta keeps messages whose Meta has every one of these keys with the
	// same value.
	Meta map[string]string
	// IDContains, when not empty, keeps messages whose ID contains this
	// text (case-sensitive; "7f3a" finds every ID with 7f3a in it).
	IDContains string
	// Limit caps the number of records returned (0: no limit). Count
	// ignores it.
	Limit int
	// Offset skips this many matching records first. Count ignores it.
	Offset int
	// Desc orders newest first. Records are ordered by message Time, then
	// by message ID.
	Desc bool
}

// Store keeps messages and their processing state. Implementations are
// safe for concurrent use. They keep copies of what they are given (the
// caller may reuse a message, a context or a trace buffer once a call
// returns), and the records they return are copies that the caller may
// modify freely.
type Store interface {
	// Put stores m as a new record in state Pending. It fails with
	// ErrExists if a message with the same ID is stored, and with
	// ErrInvalid if m is nil, has an empty or non-UTF-8 ID, a Time outside
	// the years 0 to 9999, a Context that cannot be encoded as JSON or a
	// Trace that is not valid JSON.
	Put(ctx context.Context, m *message.Message) error
	// Begin is Put followed by a Transition to Processing, in one write:
	// what a channel does with a new message. The history shows both
	// states.
	Begin(ctx context.Context, m *message.Message) error
	// Transition moves the record with the given ID to state to, appends
	// the change to its history and applies u: the record's Err, Outcome
	// and Reason become u's. Entering Processing increments Attempts. Any
	// state may follow any other, so a finished message can be replayed.
	// It fails with ErrNotFound if the ID is not stored and with ErrInvalid
	// if to is not a valid state or u cannot be stored (an Outcome that is
	// not an errors.Kind, a bad Context or Trace).
	Transition(ctx context.Context, id string, to State, u Update) error
	// Get returns the record with the given ID, or ErrNotFound.
	Get(ctx context.Context, id string) (*Record, error)
	// Search returns the records matching q, in q's order.
	Search(ctx context.Context, q Query) ([]*Record, error)
	// Count returns how many records match q, ignoring Limit and Offset.
	Count(ctx context.Context, q Query) (int, error)
	// Close releases the store. Later calls fail with ErrClosed; closing
	// again returns nil.
	Close() error
}

// Prober is implemented by a store that can check, without keeping
// anything, that it can be written: Probe writes a small probe record
// where the store's records go (a file in its folder, a row in its
// database), makes it durable and removes it. It fails, with an *OpError
// for operation "probe", when a write would: a read-only folder or
// database, a full disk, a closed store (ErrClosed). A channel probes its
// store when it starts (an unwritable store refuses to start) and, while
// its writes fail, until one succeeds (see [Probe]).
//
// Prober is optional, so that the Store contract stays small: a store
// that does not implement it is taken as writable until a write fails.
type Prober interface {
	Probe(ctx context.Context) error
}

// Probe checks that s can be written, with its Probe method when s is a
// [Prober]. It reports whether s could be probed: false (and a nil
// error) for a store that is not a Prober.
func Probe(ctx context.Context, s Store) (probed bool, err error) {
	p, ok := s.(Prober)
	if !ok {
		return false, nil
	}
	return true, p.Probe(ctx)
}

// Errors returned (wrapped in an *OpError) by stores. Test for them with
// errors.Is.
var (
	// ErrNotFound: no message with the given ID is stored.
	ErrNotFound = errors.New("message not found")
	// ErrExists: a message with the given ID is already stored.
	ErrExists = errors.New("message already stored")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store closed")
	// ErrInvalid: an argument cannot be stored or used (nil message, bad
	// ID, unknown state, bad query, unencodable context or trace).
	ErrInvalid = errors.New("invalid argument")
)

// OpError describes a failed store operation. Its message names the store,
// the operation and the message ID, e.g.
//
//	store sqlite: transition "abc" to done: message not found
type OpError struct {
	// Store is the kind of store: "memory", "file" or "sqlite".
	Store string
	// Op is the operation: "open", "put", "begin", "transition", "get",
	// "search", "count", "probe" or "close"; for a [Journal], "journal",
	// "park", "wake" or "wait".
	Op string
	// ID is the message ID the operation concerned, if any.
	ID string
	// To is the target state of a failed transition.
	To State
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *OpError) Error() string {
	var b strings.Builder
	b.WriteString("store ")
	b.WriteString(e.Store)
	b.WriteString(": ")
	b.WriteString(e.Op)
	switch e.Op {
	case "put", "begin", "get", "transition":
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(e.ID))
	case "journal", "park", "wake", "wait":
		if e.ID != "" {
			b.WriteByte(' ')
			b.WriteString(strconv.Quote(e.ID))
		}
	}
	if e.To != "" {
		b.WriteString(" to ")
		b.WriteString(string(e.To))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error { return e.Err }

// Recover returns the records left in Pending or Processing, oldest first:
// the messages a channel must process again when it starts, because a
// previous run stopped (or crashed) before recording their outcome.
func Recover(ctx context.Context, s Store) ([]*Record, error) {
	recs, err := s.Search(ctx, Query{States: []State{Pending, Processing}})
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	return recs, nil
}

// Normalized is a message checked and normalized for storage by
// [Normalize]: the message every store gives back after a round trip.
type Normalized struct {
	// Message is a deep copy of the message with Time in UTC and Trace
	// compacted. Its Context is nil: see Context.
	Message message.Message
	// Context is the message's Context encoded as JSON, nil when it has
	// none. Decoding it with [DecodeContext] gives the Context that stores
	// return: map[string]any objects, []any arrays, float64 numbers but for
	// those a float64 would not write back unchanged (an integer beyond
	// 2^53, a decimal with more digits than a float64 keeps), which are
	// json.Number, their text.
	Context []byte
}

// Normalize checks that m can be stored and returns the normalized deep
// copy that stores keep: Time in UTC, Context encoded as JSON, Trace
// compacted, Payload and Meta copied. It fails with ErrInvalid as
// [Store.Put] documents. A Store implementation calls it in Put and
// Begin, so that every store keeps and returns the same message.
func Normalize(m *message.Message) (Normalized, error) {
	if m == nil {
		return Normalized{}, fmt.Errorf("%w: nil message", ErrInvalid)
	}
	if err := checkID(m.ID); err != nil {
		return Normalized{}, err
	}
	c := *m
	c.Time = m.Time.UTC()
	if y := c.Time.Year(); y < 0 || y > 9999 {
		return Normalized{}, fmt.Errorf("%w: message time %s outside the years 0 to 9999", ErrInvalid, c.Time)
	}
	c.Payload = bytes.Clone(m.Payload)
	c.Meta = maps.Clone(m.Meta)
	c.Context = nil
	var err error
	n := Normalized{Message: c}
	if n.Context, err = encodeContext(m.Context); err != nil {
		return Normalized{}, err
	}
	if n.Message.Trace, err = normalizeTrace(m.Trace); err != nil {
		return Normalized{}, err
	}
	return n, nil
}

// checkID reports whether id can be stored.
func checkID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty message id", ErrInvalid)
	}
	if !utf8.ValidString(id) {
		return fmt.Errorf("%w: message id is not valid UTF-8", ErrInvalid)
	}
	return nil
}

// NormalizedUpdate is an Update checked and normalized for storage by
// [NormalizeUpdate].
type NormalizedUpdate struct {
	// Err is the Update's Err.
	Err string
	// Outcome is the Update's Outcome.
	Outcome errors.Kind
	// Reason is the Update's Reason.
	Reason string
	// Context is the Update's Context encoded as JSON (see
	// [Normalized]), nil when the Update has none.
	Context []byte
	// Trace is a compacted copy of the Update's Trace, nil when it has
	// none.
	Trace json.RawMessage
}

// NormalizeUpdate checks that a transition to state to with u can be
// stored and normalizes u as [Normalize] normalizes a message. It fails
// with ErrInvalid as [Store.Transition] documents.
func NormalizeUpdate(to State, u Update) (NormalizedUpdate, error) {
	if !to.Valid() {
		return NormalizedUpdate{}, fmt.Errorf("%w: unknown state %q", ErrInvalid, to)
	}
	if !u.Outcome.Valid() {
		return NormalizedUpdate{}, fmt.Errorf("%w: unknown outcome %s", ErrInvalid, u.Outcome)
	}
	n := NormalizedUpdate{Err: u.Err, Outcome: u.Outcome, Reason: u.Reason}
	var err error
	if n.Context, err = encodeContext(u.Context); err != nil {
		return NormalizedUpdate{}, err
	}
	if n.Trace, err = normalizeTrace(u.Trace); err != nil {
		return NormalizedUpdate{}, err
	}
	return n, nil
}

// DecodeContext decodes a context that [Normalize] or [NormalizeUpdate]
// encoded, as every store gives it back: as encoding/json decodes it, but
// for numbers a float64 would not write back unchanged, which are kept as
// json.Number (see [Normalized]). nil data (no context) gives a nil map.
// A Store implementation decodes the contexts it returns with it.
func DecodeContext(data []byte) (map[string]any, error) { return storeutil.DecodeContext(data) }

// encodeContext returns the JSON encoding of ctx (nil for a nil ctx). Every
// store keeps a context as the values decoding it gives back (numbers as
// float64 or json.Number, structs as maps, ...), so that they all return
// the same.
func encodeContext(ctx map[string]any) ([]byte, error) {
	if ctx == nil {
		return nil, nil
	}
	data, err := jsonenc.Append(make([]byte, 0, 64*len(ctx)), ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: encode context: %w", ErrInvalid, err)
	}
	return data, nil
}

// normalizeTrace checks that trace is JSON and compacts it. An empty trace
// counts as none.
func normalizeTrace(trace json.RawMessage) (json.RawMessage, error) {
	if len(trace) == 0 {
		return nil, nil
	}
	valid, compact := jsonscan.Scan(trace)
	if !valid {
		return nil, fmt.Errorf("%w: trace is not valid JSON", ErrInvalid)
	}
	if compact {
		return bytes.Clone(trace), nil // as json.Marshal writes it
	}
	var buf bytes.Buffer
	buf.Grow(len(trace))
	if err := json.Compact(&buf, trace); err != nil {
		return nil, fmt.Errorf("%w: trace is not valid JSON: %w", ErrInvalid, err)
	}
	return buf.Bytes(), nil
}

// Validate reports whether q can be run: it fails with ErrInvalid for an
// unknown state or a negative Limit or Offset, as Search and Count must.
func (q *Query) Validate() error {
	for _, s := range q.States {
		if !s.Valid() {
			return fmt.Errorf("%w: unknown state %q in query", ErrInvalid, s)
		}
	}
	if q.Limit < 0 || q.Offset < 0 {
		return fmt.Errorf("%w: negative limit or offset in query", ErrInvalid)
	}
	return nil
}

// IndexEntry is what a store that runs queries itself, over an index in
// memory rather than in a database, knows about one record: what a Query
// looks at. [Query.Select] and [Query.Count] run q over such entries.
type IndexEntry struct {
	// ID is the message ID.
	ID string
	// Time is the message Time, in UTC.
	Time time.Time
	// State is the record's current state.
	State State
	// Meta is the message Meta. Select and Count only read it.
	Meta map[string]string
}

// match reports whether e is selected by q (ignoring Limit and Offset).
func (q *Query) match(e *IndexEntry) bool {
	if len(q.States) > 0 && !slices.Contains(q.States, e.State) {
		return false
	}
	if q.IDContains != "" && !strings.Contains(e.ID, q.IDContains) {
		return false
	}
	if !q.Since.IsZero() && e.Time.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && !e.Time.Before(q.Until) {
		return false
	}
	for k, v := range q.Meta {
		if got, ok := e.Meta[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Select returns the entries of all that q selects, in q's order, with
// Offset and Limit applied. It costs a pass over all and a sort of the
// entries selected. q must be valid (see [Query.Validate]).
func (q *Query) Select(all iter.Seq[*IndexEntry]) []*IndexEntry {
	var out []*IndexEntry
	for e := range all {
		if q.match(e) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *IndexEntry) int {
		c := a.Time.Compare(b.Time)
		if c == 0 {
			c = strings.Compare(a.ID, b.ID)
		}
		if q.Desc {
			c = -c
		}
		return c
	})
	if q.Offset >= len(out) {
		return nil
	}
	out = out[q.Offset:]
	if q.Limit > 0 && q.Limit < len(out) {
		out = out[:q.Limit]
	}
	return out
}

// Count returns how many entries of all q selects, ignoring Limit and
// Offset. It costs a pass over all.
func (q *Query) Count(all iter.Seq[*IndexEntry]) int {
	n := 0
	for e := range all {
		if q.match(e) {
			n++
		}
	}
	return n
}

// deepCopyMap copies a JSON-shaped map (as produced by encoding/json).
func deepCopyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = deepCopyValue(v)
	}
	return out
}

func deepCopyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return deepCopyMap(v)
	case []any:
		if v == nil {
			return v
		}
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = deepCopyValue(x)
		}
		return out
	}
	return v
}

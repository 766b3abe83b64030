package store

import (
	"context"
	"sync"
	"time"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/internal/storeutil"
)

// Memory is a Store that keeps records in a map. It loses everything when
// the process ends; use it for tests and for sources whose messages can be
// produced again. Bound it with [WithMaxFinished] in a long-running
// process, or it grows with every message.
type Memory struct {
	mu     sync.RWMutex
	closed bool
	recs   map[string]*memRecord

	maxFinished int      // 0: unbounded
	finished    []finish // in the order records finished (may hold stale entries)
	nFinished   int      // records now in a finished state
	seq         uint64
}

type finish struct {
	id  string
	seq uint64
}

// memRecord is one stored message, in one allocation. Its context is kept
// as JSON (rec's Message.Context is nil): a compact form without pointers,
// which the garbage collector need not scan, decoded by the rare reads.
// Reads hand out deep copies, so writes change it in place.
type memRecord struct {
	IndexEntry
	rec     Record
	msg     message.Message // rec.Message
	hist    [3]Transition   // rec.History's first storage: pending, processing, an outcome
	context []byte          // the message's context as JSON; nil when none
	fseq    uint64          // when it last finished; 0: not finished
	journal [][]byte        // durable runs' journal entries, encoded
	wait    *Wait           // the wait of a Waiting record; nil: none
}

// record returns a deep copy of r's record with its context.
func (r *memRecord) record() (*Record, error) {
	c := r.rec.Clone()
	var err error
	if c.Message.Context, err = storeutil.DecodeContext(r.context); err != nil {
		return nil, err
	}
	return c, nil
}

var _ Store = (*Memory)(nil)

// MemoryOption configures [NewMemory].
type MemoryOption func(*Memory)

// WithMaxFinished keeps at most n finished (done or rejected) records,
// forgetting the oldest finished first. Records still owed (pending,
// processing, error, dead) are never dropped. A forgotten message delivered again
// is processed again.
func WithMaxFinished(n int) MemoryOption { return func(m *Memory) { m.maxFinished = n } }

// DefaultMaxFinished is the bound on finished records of a channel's
// store given by the URL "memory:": enough to answer duplicate deliveries
// of recent messages, small enough for a long-running process.
const DefaultMaxFinished = 10000

// NewMemory returns an empty in-memory store.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{recs: make(map[string]*memRecord)}
	for _, o := range opts {
		o(m)
	}
	return m
}

func isFinished(s State) bool { return s == Done || s == Rejected }

// track records a state change for the finished bound; s.mu is held.
func (s *Memory) track(r *memRecord, to State) {
	if s.maxFinished <= 0 {
		return
	}
	if r.fseq != 0 {
		s.nFinished--
		r.fseq = 0
	}
	if !isFinished(to) {
		return
	}
	s.seq++
	r.fseq = s.seq
	s.nFinished++
	s.finished = append(s.finished, finish{r.ID, s.seq})
	for s.nFinished > s.maxFinished && len(s.finished) > 0 {
		f := s.finished[0]
		s.finished = s.finished[1:]
		// A stale entry (the record changed state since) is skipped.
		if old, ok := s.recs[f.id]; ok && old.fseq == f.seq {
			delete(s.recs, f.id)
			s.nFinished--
		}
	}
	if cap(s.finished) > 4*s.maxFinished && len(s.finished) <= s.maxFinished {
		s.finished = append([]finish(nil), s.finished...) // release the consumed prefix
	}
}

func (s *Memory) fail(op, id string, to State, err error) error {
	return &OpError{Store: "memory", Op: op, ID: id, To: to, Err: err}
}

// Put implements Store.
func (s *Memory) Put(ctx context.Context, m *message.Message) error {
	return s.put(ctx, m, "put", false)
}

// Begin implements Store.
func (s *Memory) Begin(ctx context.Context, m *message.Message) error {
	return s.put(ctx, m, "begin", true)
}

func (s *Memory) put(ctx context.Context, m *message.Message, op string, begin bool) error {
	var id string
	if m != nil {
		id = m.ID
	}
	if err := storeutil.CtxErr(ctx); err != nil {
		return s.fail(op, id, "", err)
	}
	n, err := Normalize(m)
	if err != nil {
		return s.fail(op, id, "", err)
	}
	at := storeutil.Now()
	r := &memRecord{msg: n.Message, context: n.Context}
	r.hist[0] = Transition{State: Pending, At: at}
	r.rec = Record{Message: &r.msg, State: Pending, Updated: at, History: r.hist[:1]}
	if begin {
		r.rec.State, r.rec.Attempts = Processing, 1
		r.rec.History = append(r.rec.History, Transition{State: Processing, At: at})
	}
	r.IndexEntry = IndexEntry{ID: id, Time: r.msg.Time, State: r.rec.State, Meta: r.msg.Meta}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.fail(op, id, "", ErrClosed)
	}
	if _, ok := s.recs[id]; ok {
		return s.fail(op, id, "", ErrExists)
	}
	s.recs[id] = r
	return nil
}

// Transition implements Store.
func (s *Memory) Transition(ctx context.Context, id string, to State, u Update) error {
	if err := storeutil.CtxErr(ctx); err != nil {
		return s.fail("transition", id, to, err)
	}
	nu, err := NormalizeUpdate(to, u)
	if err != nil {
		return s.fail("transition", id, to, err)
	}
	at := storeutil.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return s.fail("transition", id, to, ErrClosed)
	}
	r, ok := s.recs[id]
	if !ok {
		return s.fail("transition", id, to, ErrNotFound)
	}
	s.transition(r, to, nu, at)
	return nil
}

// transition applies a transition to r; s.mu is held.
func (s *Memory) transition(r *memRecord, to State, nu NormalizedUpdate, at time.Time) {
	rec := &r.rec
	if nu.Context != nil {
		r.context = nu.Context
	}
	if nu.Trace != nil {
		rec.Message.Trace = nu.Trace
	}
	rec.State = to
	rec.Err, rec.Outcome, rec.Reason = nu.Err, nu.Outcome, nu.Reason
	if to == Processing {
		rec.Attempts++
	}
	rec.Updated = at
	rec.History = append(rec.History, Transition{State: to, At: at, Err: nu.Err, Outcome: nu.Outcome, Reason: nu.Reason})
	r.State = to
	s.track(r, to)
}

// Get implements Store.
func (s *Memory) Get(ctx context.Context, id string) (*Record, error) {
	if err := storeutil.CtxErr(ctx); err != nil {
		return nil, s.fail("get", id, "", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, s.fail("get", id, "", ErrClosed)
	}
	r, ok := s.recs[id]
	if !ok {
		return nil, s.fail("get", id, "", ErrNotFound)
	}
	rec, err := r.record()
	if err != nil {
		return nil, s.fail("get", id, "", err)
	}
	return rec, nil
}

// all yields the index entries of every record; s.mu is held.
func (s *Memory) all(yield func(*IndexEntry) bool) {
	for _, r := range s.recs {
		if !yield(&r.IndexEntry) {
			return
		}
	}
}

// Search implements Store.
func (s *Memory) Search(ctx context.Context, q Query) ([]*Record, error) {
	if err := storeutil.CtxErr(ctx); err != nil {
		return nil, s.fail("search", "", "", err)
	}
	if err := q.Validate(); err != nil {
		return nil, s.fail("search", "", "", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, s.fail("search", "", "", ErrClosed)
	}
	sel := q.Select(s.all)
	out := make([]*Record, len(sel))
	for i, e := range sel {
		rec, err := s.recs[e.ID].record()
		if err != nil {
			return nil, s.fail("search", "", "", err)
		}
		out[i] = rec
	}
	return out, nil
}

// Count implements Store.
func (s *Memory) Count(ctx context.Context, q Query) (int, error) {
	if err := storeutil.CtxErr(ctx); err != nil {
		return 0, s.fail("count", "", "", err)
	}
	if err := q.Validate(); err != nil {
		return 0, s.fail("count", "", "", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, s.fail("count", "", "", ErrClosed)
	}
	return q.Count(s.all), nil
}

// Probe implements [Prober]: memory can always be written while the
// store is open.
func (s *Memory) Probe(ctx context.Context) error {
	if err := storeutil.CtxErr(ctx); err != nil {
		return s.fail("probe", "", "", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return s.fail("probe", "", "", ErrClosed)
	}
	return nil
}

// Close implements Store. The records are dropped.
func (s *Memory) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.recs = nil
	return nil
}

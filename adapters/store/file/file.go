// Package file is a message store (a [store.Store]) that keeps one JSON
// file per message in a directory: records that any tool can read, copy
// or back up, kept durable without a database. The index that Search and
// Count use is held in memory and rebuilt by reading every file when the
// directory is opened. How durable a write is is the [Sync] option: by
// default it survives a crash of the process; SyncFull syncs the
// directory too (one sync shared by concurrent writers), so that it
// survives a power loss.
package file

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/internal/storeutil"
)

// Store is a [store.Store] that keeps one JSON file per message in a
// directory. Every write goes to a temporary file that is synced and then
// renamed over the record's file, so a crash (or a power loss) leaves
// either the old or the new version of a record, never a torn one. A
// write that returned survives a crash of the process; with SyncFull the
// directory is synced too before the write returns, so that it survives
// a power loss (see [Sync]). The index used by Search and Count is kept
// in memory and rebuilt from the files by Open.
//
// A directory must be used by one process at a time.
type Store struct {
	dir  string
	opts Options
	life storeutil.Life

	dirf    *os.File // the directory, kept open to sync renames
	dirSync groupSync

	mu    sync.RWMutex // guards index
	index map[string]*fileEntry

	seed  maphash.Seed
	locks [64]sync.Mutex // serialize writers of the same record
	jr    journals       // the journal of durable runs (journal.go)
}

type fileEntry struct {
	store.IndexEntry
	name string // file name in dir
}

var _ store.Store = (*Store)(nil)

const (
	fileExt    = ".json"
	tempPrefix = ".tmp-"
)

// Open opens (creating it if needed) a file store in dir, with the
// default Options, and rebuilds its index from the files there. Temporary
// files left by a crash are removed.
func Open(dir string) (*Store, error) {
	return OpenOptions(dir, Options{})
}

// OpenOptions is Open with options. A configuration names them after the
// folder: file:data/intake?sync=full (see [ParseDSN]).
func OpenOptions(dir string, opts Options) (*Store, error) {
	fail := func(err error) error {
		return &store.OpError{Store: "file", Op: "open", Err: fmt.Errorf("%s: %w", dir, err)}
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fail(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fail(err)
	}
	dirf, err := os.Open(dir)
	if err != nil {
		return nil, fail(err)
	}
	s := &Store{dir: dir, opts: opts, dirf: dirf, index: make(map[string]*fileEntry), seed: maphash.MakeSeed()}
	if err := s.load(); err != nil {
		dirf.Close()
		return nil, fail(err)
	}
	return s, nil
}

// load rebuilds the index from the directory.
func (s *Store) load() error {
	ents, err := s.dirf.ReadDir(-1)
	if err != nil {
		return err
	}
	for _, de := range ents {
		name := de.Name()
		switch {
		case strings.HasPrefix(name, tempPrefix):
			if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			continue
		case de.IsDir() || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, fileExt):
			continue
		}
		rec, err := s.read(name)
		if err != nil {
			return err
		}
		id := rec.Message.ID
		if old, ok := s.index[id]; ok {
			return fmt.Errorf("files %s and %s both hold message %q", old.name, name, id)
		}
		s.index[id] = &fileEntry{IndexEntry: entryOf(rec), name: name}
	}
	return nil
}

func entryOf(rec *store.Record) store.IndexEntry {
	return store.IndexEntry{ID: rec.Message.ID, Time: rec.Message.Time, State: rec.State, Meta: rec.Message.Meta}
}

// fileName returns the file name for a message ID: the ID itself when it
// is short and made of characters safe on every file system (lower-case
// letters, digits, '-' and '_'), otherwise "~" and the SHA-256 of the ID.
func fileName(id string) string {
	safe := len(id) <= 200
	for i := 0; safe && i < len(id); i++ {
		c := id[i]
		safe = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	if safe {
		return id + fileExt
	}
	sum := sha256.Sum256([]byte(id))
	return "~" + hex.EncodeToString(sum[:]) + fileExt
}

func (s *Store) fail(op, id string, to store.State, err error) error {
	return &store.OpError{Store: "file", Op: op, ID: id, To: to, Err: err}
}

func (s *Store) lock(id string) *sync.Mutex {
	return &s.locks[maphash.String(s.seed, id)%uint64(len(s.locks))]
}

func (s *Store) lookup(id string) (*fileEntry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.index[id]
	return e, ok
}

// read decodes the record in the named file.
func (s *Store) read(name string) (*store.Record, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		return nil, err
	}
	var rec store.Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if rec.Message == nil || rec.Message.ID == "" || !rec.State.Valid() {
		return nil, fmt.Errorf("%s: not a message record", name)
	}
	rec.Updated = rec.Updated.UTC()
	for i := range rec.History {
		rec.History[i].At = rec.History[i].At.UTC()
	}
	return &rec, nil
}

// write stores rec in the named file atomically: see writeJSON.
func (s *Store) write(name string, rec *store.Record) error { return s.writeJSON(name, rec) }

// writeJSON stores v as JSON in the named file atomically: a temporary
// file, synced and renamed over the named one. With SyncFull, it then
// syncs the directory, together with the writers that renamed meanwhile.
func (s *Store) writeJSON(name string, v any) (err error) {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(s.dir, tempPrefix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), filepath.Join(s.dir, name)); err != nil {
		return err
	}
	return s.syncDir()
}

// syncDir makes the renames done so far durable with SyncFull: one sync
// of the directory, shared by the writers that renamed meanwhile. With
// SyncNormal it does nothing: a rename survives a crash of the process.
func (s *Store) syncDir() error {
	if s.opts.Sync != SyncFull {
		return nil
	}
	return s.dirSync.sync(s.dirf.Sync)
}

// Begin implements store.Store: the message is written once, in state
// Processing, with both transitions in its history.
func (s *Store) Begin(ctx context.Context, m *message.Message) error {
	return s.put(ctx, m, "begin")
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, m *message.Message) error {
	return s.put(ctx, m, "put")
}

func (s *Store) put(ctx context.Context, m *message.Message, op string) error {
	var id string
	if m != nil {
		id = m.ID
	}
	if err := storeutil.CtxErr(ctx); err != nil {
		return s.fail(op, id, "", err)
	}
	n, err := store.Normalize(m)
	if err == nil {
		n.Message.Context, err = storeutil.DecodeContext(n.Context)
	}
	if err != nil {
		return s.fail(op, id, "", err)
	}
	if !s.life.Enter() {
		return s.fail(op, id, "", store.ErrClosed)
	}
	defer s.life.Exit()
	l := s.lock(id)
	l.Lock()
	defer l.Unlock()
	if _, ok := s.lookup(id); ok {
		return s.fail(op, id, "", store.ErrExists)
	}
	at := storeutil.Now()
	rec := &store.Record{
		Message: &n.Message,
		State:   store.Pending,
		Updated: at,
		History: []store.Transition{{State: store.Pending, At: at}},
	}
	if op == "begin" {
		rec.State, rec.Attempts = store.Processing, 1
		rec.History = append(rec.History, store.Transition{State: store.Processing, At: at})
	}
	name := fileName(id)
	if err := s.write(name, rec); err != nil {
		return s.fail(op, id, "", err)
	}
	s.mu.Lock()
	s.index[id] = &fileEntry{IndexEntry: entryOf(rec), name: name}
	s.mu.Unlock()
	return nil
}

// Transition implements store.Store.
func (s *Store) Transition(ctx context.Context, id string, to store.State, u store.Update) error {
	if err := storeutil.CtxErr(ctx); err != nil {
		return s.fail("transition", id, to, err)
	}
	nu, err := store.NormalizeUpdate(to, u)
	var newContext map[string]any // nu.Context decoded
	if err == nil {
		newContext, err = storeutil.DecodeContext(nu.Context)
	}
	if err != nil {
		return s.fail("transition", id, to, err)
	}
	if !s.life.Enter() {
		return s.fail("transition", id, to, store.ErrClosed)
	}
	defer s.life.Exit()
	l := s.lock(id)
	l.Lock()
	defer l.Unlock()
	e, ok := s.lookup(id)
	if !ok {
		return s.fail("transition", id, to, store.ErrNotFound)
	}
	rec, err := s.read(e.name)
	if err != nil {
		return s.fail("transition", id, to, err)
	}
	at := storeutil.Now()
	if newContext != nil {
		rec.Message.Context = newContext
	}
	if nu.Trace != nil {
		rec.Message.Trace = nu.Trace
	}
	rec.State = to
	rec.Err, rec.Outcome, rec.Reason = nu.Err, nu.Outcome, nu.Reason
	if to == store.Processing {
		rec.Attempts++
	}
	rec.Updated = at
	rec.History = append(rec.History, store.Transition{State: to, At: at, Err: nu.Err, Outcome: nu.Outcome, Reason: nu.Reason})
	if err := s.write(e.name, rec); err != nil {
		return s.fail("transition", id, to, err)
	}
	s.mu.Lock()
	ne := *e
	ne.State = to
	s.index[id] = &ne
	s.mu.Unlock()
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, id string) (*store.Record, error) {
	if err := storeutil.CtxErr(ctx); err != nil {
		return nil, s.fail("get", id, "", err)
	}
	if !s.life.Enter() {
		return nil, s.fail("get", id, "", store.ErrClosed)
	}
	defer s.life.Exit()
	e, ok := s.lookup(id)
	if !ok {
		return nil, s.fail("get", id, "", store.ErrNotFound)
	}
	rec, err := s.read(e.name)
	if err != nil {
		return nil, s.fail("get", id, "", err)
	}
	return rec, nil
}

// all yields the index entries of every record; s.mu is held.
func (s *Store) all(yield func(*store.IndexEntry) bool) {
	for _, e := range s.index {
		if !yield(&e.IndexEntry) {
			return
		}
	}
}

// Search implements store.Store.
func (s *Store) Search(ctx context.Context, q store.Query) ([]*store.Record, error) {
	if err := storeutil.CtxErr(ctx); err != nil {
		return nil, s.fail("search", "", "", err)
	}
	if err := q.Validate(); err != nil {
		return nil, s.fail("search", "", "", err)
	}
	if !s.life.Enter() {
		return nil, s.fail("search", "", "", store.ErrClosed)
	}
	defer s.life.Exit()
	s.mu.RLock()
	sel := q.Select(s.all)
	names := make([]string, len(sel))
	for i, e := range sel {
		names[i] = s.index[e.ID].name
	}
	s.mu.RUnlock()
	out := make([]*store.Record, len(names))
	for i, name := range names {
		if err := storeutil.CtxErr(ctx); err != nil {
			return nil, s.fail("search", "", "", err)
		}
		rec, err := s.read(name)
		if err != nil {
			return nil, s.fail("search", "", "", err)
		}
		out[i] = rec
	}
	return out, nil
}

// Count implements store.Store.
func (s *Store) Count(ctx context.Context, q store.Query) (int, error) {
	if err := storeutil.CtxErr(ctx); err != nil {
		return 0, s.fail("count", "", "", err)
	}
	if err := q.Validate(); err != nil {
		return 0, s.fail("count", "", "", err)
	}
	if !s.life.Enter() {
		return 0, s.fail("count", "", "", store.ErrClosed)
	}
	defer s.life.Exit()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return q.Count(s.all), nil
}

// Probe implements [store.Prober]: it writes a temporary probe file in
// the folder as a record is written (created, written, synced), then
// removes it. A read-only folder or a full disk fails it. A probe file a
// crash leaves behind is removed by the next Open, as any temporary file.
func (s *Store) Probe(ctx context.Context) error {
	if err := storeutil.CtxErr(ctx); err != nil {
		return s.fail("probe", "", "", err)
	}
	if !s.life.Enter() {
		return s.fail("probe", "", "", store.ErrClosed)
	}
	defer s.life.Exit()
	if err := s.probe(); err != nil {
		return s.fail("probe", "", "", err)
	}
	return nil
}

// probeData is what a probe writes: about as much as a small record.
var probeData = []byte(`{"probe":"` + strings.Repeat("x", 500) + `"}` + "\n")

func (s *Store) probe() (err error) {
	f, err := os.CreateTemp(s.dir, tempPrefix+"probe-*")
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil && !errors.Is(cerr, os.ErrClosed) {
			err = cerr
		}
		if rerr := os.Remove(f.Name()); err == nil {
			err = rerr
		}
	}()
	if _, err = f.Write(probeData); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// Close implements store.Store. It waits for running operations to finish.
func (s *Store) Close() error {
	if !s.life.Close() {
		return nil
	}
	if err := s.dirf.Close(); err != nil {
		return s.fail("close", "", "", err)
	}
	return nil
}

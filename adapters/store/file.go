package store

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
	"github.com/svcflow/svcflow/internal/storeutil"
)

// File is a Store that keeps one JSON file per message in a directory.
// Every write goes to a temporary file that is synced and then renamed over
// the record's file, so a crash leaves either the old or the new version of
// a record, never a torn one. The index used by Search and Count is kept in
// memory and rebuilt from the files by OpenFile.
//
// A directory must be used by one process at a time.
type File struct {
	dir  string
	life storeutil.Life

	dirf *os.File // the directory, kept open to sync renames

	mu    sync.RWMutex // guards index
	index map[string]*fileEntry

	seed  maphash.Seed
	locks [64]sync.Mutex // serialize writers of the same record
}

type fileEntry struct {
	IndexEntry
	name string // file name in dir
}

var _ Store = (*File)(nil)

const (
	fileExt    = ".json"
	tempPrefix = ".tmp-"
)

// OpenFile opens (creating it if needed) a file store in dir and rebuilds
// its index from the files there. Temporary files left by a crash are
// removed.
func OpenFile(dir string) (*File, error) {
	fail := func(err error) error { return &OpError{Store: "file", Op: "open", Err: fmt.Errorf("%s: %w", dir, err)} }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fail(err)
	}
	dirf, err := os.Open(dir)
	if err != nil {
		return nil, fail(err)
	}
	s := &File{dir: dir, dirf: dirf, index: make(map[string]*fileEntry), seed: maphash.MakeSeed()}
	if err := s.load(); err != nil {
		dirf.Close()
		return nil, fail(err)
	}
	return s, nil
}

// load rebuilds the index from the directory.
func (s *File) load() error {
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

func entryOf(rec *Record) IndexEntry {
	return IndexEntry{ID: rec.Message.ID, Time: rec.Message.Time, State: rec.State, Meta: rec.Message.Meta}
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

func (s *File) fail(op, id string, to State, err error) error {
	return &OpError{Store: "file", Op: op, ID: id, To: to, Err: err}
}

func (s *File) lock(id string) *sync.Mutex {
	return &s.locks[maphash.String(s.seed, id)%uint64(len(s.locks))]
}

func (s *File) lookup(id string) (*fileEntry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.index[id]
	return e, ok
}

// read decodes the record in the named file.
func (s *File) read(name string) (*Record, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		return nil, err
	}
	var rec Record
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

// write stores rec in the named file atomically and durably.
func (s *File) write(name string, rec *Record) (err error) {
	data, err := json.Marshal(rec)
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
	return s.dirf.Sync()
}

// Begin implements Store: a Put, then a Transition to Processing (two
// atomic file writes; a crash between them leaves the message pending,
// which Recover returns all the same).
func (s *File) Begin(ctx context.Context, m *message.Message) error {
	if err := s.Put(ctx, m); err != nil {
		var oe *OpError
		if errors.As(err, &oe) {
			oe.Op = "begin"
		}
		return err
	}
	return s.Transition(ctx, m.ID, Processing, Update{})
}

// Put implements Store.
func (s *File) Put(ctx context.Context, m *message.Message) error {
	var id string
	if m != nil {
		id = m.ID
	}
	if err := storeutil.CtxErr(ctx); err != nil {
		return s.fail("put", id, "", err)
	}
	n, err := Normalize(m)
	if err == nil {
		n.Message.Context, err = storeutil.DecodeContext(n.Context)
	}
	if err != nil {
		return s.fail("put", id, "", err)
	}
	if !s.life.Enter() {
		return s.fail("put", id, "", ErrClosed)
	}
	defer s.life.Exit()
	l := s.lock(id)
	l.Lock()
	defer l.Unlock()
	if _, ok := s.lookup(id); ok {
		return s.fail("put", id, "", ErrExists)
	}
	at := storeutil.Now()
	rec := &Record{
		Message: &n.Message,
		State:   Pending,
		Updated: at,
		History: []Transition{{State: Pending, At: at}},
	}
	name := fileName(id)
	if err := s.write(name, rec); err != nil {
		return s.fail("put", id, "", err)
	}
	s.mu.Lock()
	s.index[id] = &fileEntry{IndexEntry: entryOf(rec), name: name}
	s.mu.Unlock()
	return nil
}

// Transition implements Store.
func (s *File) Transition(ctx context.Context, id string, to State, u Update) error {
	if err := storeutil.CtxErr(ctx); err != nil {
		return s.fail("transition", id, to, err)
	}
	nu, err := NormalizeUpdate(to, u)
	var newContext map[string]any // nu.Context decoded
	if err == nil {
		newContext, err = storeutil.DecodeContext(nu.Context)
	}
	if err != nil {
		return s.fail("transition", id, to, err)
	}
	if !s.life.Enter() {
		return s.fail("transition", id, to, ErrClosed)
	}
	defer s.life.Exit()
	l := s.lock(id)
	l.Lock()
	defer l.Unlock()
	e, ok := s.lookup(id)
	if !ok {
		return s.fail("transition", id, to, ErrNotFound)
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
	rec.Err = nu.Err
	if to == Processing {
		rec.Attempts++
	}
	rec.Updated = at
	rec.History = append(rec.History, Transition{State: to, At: at, Err: nu.Err})
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

// Get implements Store.
func (s *File) Get(ctx context.Context, id string) (*Record, error) {
	if err := storeutil.CtxErr(ctx); err != nil {
		return nil, s.fail("get", id, "", err)
	}
	if !s.life.Enter() {
		return nil, s.fail("get", id, "", ErrClosed)
	}
	defer s.life.Exit()
	e, ok := s.lookup(id)
	if !ok {
		return nil, s.fail("get", id, "", ErrNotFound)
	}
	rec, err := s.read(e.name)
	if err != nil {
		return nil, s.fail("get", id, "", err)
	}
	return rec, nil
}

// all yields the index entries of every record; s.mu is held.
func (s *File) all(yield func(*IndexEntry) bool) {
	for _, e := range s.index {
		if !yield(&e.IndexEntry) {
			return
		}
	}
}

// Search implements Store.
func (s *File) Search(ctx context.Context, q Query) ([]*Record, error) {
	if err := checkQuery(ctx, &q); err != nil {
		return nil, s.fail("search", "", "", err)
	}
	if !s.life.Enter() {
		return nil, s.fail("search", "", "", ErrClosed)
	}
	defer s.life.Exit()
	s.mu.RLock()
	sel := q.Select(s.all)
	names := make([]string, len(sel))
	for i, e := range sel {
		names[i] = s.index[e.ID].name
	}
	s.mu.RUnlock()
	out := make([]*Record, len(names))
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

// Count implements Store.
func (s *File) Count(ctx context.Context, q Query) (int, error) {
	if err := checkQuery(ctx, &q); err != nil {
		return 0, s.fail("count", "", "", err)
	}
	if !s.life.Enter() {
		return 0, s.fail("count", "", "", ErrClosed)
	}
	defer s.life.Exit()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return q.Count(s.all), nil
}

// Close implements Store. It waits for running operations to finish.
func (s *File) Close() error {
	if !s.life.Close() {
		return nil
	}
	if err := s.dirf.Close(); err != nil {
		return s.fail("close", "", "", err)
	}
	return nil
}

// Package kv is node persistence: values that a flow's steps save and
// restore across runs and restarts (the last time a channel ran, the last
// ID it read, a counter), scoped per channel and node, in memory, in an
// SQLite file or in a NATS key-value bucket. It is pypeman's save_data /
// restore_data.
//
// A [Store] is what services are given, by the kv provider component
// (YAML `providers:`) or by a provide.Container in Go. A service takes
// its [Node], the space of keys of one node of the channel whose message
// it runs, and saves and restores values there:
//
//	n := store.Node(ctx, "poller")          // the channel comes from ctx
//	last, found, err := n.Restore(ctx, "last_id")
//	err = n.Save(ctx, "last_id", 42)
//
// Two nodes, or two channels, never see each other's keys; the same node
// of the same channel finds its values again after a restart (SQLite,
// NATS).
// Values are stored as JSON: Restore returns them as a context holds
// JSON (objects as map[string]any, numbers as float64 unless that would
// change their digits), RestoreInto decodes into a Go value.
//
// In YAML, the save and restore steps do the same:
//
//	providers:
//	  state: {kv: {backend: sqlite, path: state.db}}
//	flows:
//	  poll:
//	    steps:
//	      - restore: {key: last_id, into: since, default: 0, node: poller}
//	      - ...
//	      - save: {key: last_id, value: "max_id", node: poller}
//
// Backend nats, a NATS JetStream key-value bucket (`backend: nats` in
// YAML), is package adapters/kv/natskv, which registers itself with
// [RegisterBackend]; this package links no NATS client. Importing this
// package links the pure-Go SQLite driver.
package kv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/svcflow/svcflow/adapters/channel"
	fc "github.com/svcflow/svcflow/context"
)

// Backend keeps values by scope and key. Implementations are safe for
// concurrent use. [NewMemory] and [OpenSQLite] return a Store over the
// built-in ones, natskv.Open (package adapters/kv/natskv) one over a
// NATS key-value bucket; [New] takes your own, which runs the
// conformance suite of package kvtest.
type Backend interface {
	// Get returns the value stored under scope and key, and whether there
	// was one.
	Get(ctx context.Context, scope, key string) (value []byte, found bool, err error)
	// Put stores value under scope and key, replacing any.
	Put(ctx context.Context, scope, key string, value []byte) error
	// Delete removes the value under scope and key, if any.
	Delete(ctx context.Context, scope, key string) error
	// Close releases the backend's resources.
	Close() error
}

// ErrClosed is returned (wrapped) by a use of a closed store.
var ErrClosed = errors.New("kv: store closed")

// ErrNotFound is returned (wrapped) by [Node.MustRestore] for a key
// that has no value.
var ErrNotFound = errors.New("kv: no value saved")

// Store is node persistence over a [Backend]. It is safe for concurrent
// use.
type Store struct {
	b Backend
}

// New returns a store over b.
func New(b Backend) *Store { return &Store{b: b} }

// Close closes the backend.
func (s *Store) Close() error { return s.b.Close() }

// Backend returns the store's backend.
func (s *Store) Backend() Backend { return s.b }

// Node returns the space of keys of the node named node in the channel
// whose message ctx runs (channel.MessageFrom; outside a channel's run,
// the channel is ""). A service names itself: its step's name is a good
// node name.
func (s *Store) Node(ctx context.Context, node string) *Node {
	ch, _, _ := channel.MessageFrom(ctx)
	return s.Scope(ch, node)
}

// Scope returns the space of keys of node in channel, for code that runs
// outside a channel's run (a tool, a test).
func (s *Store) Scope(channel, node string) *Node {
	return &Node{s: s, scope: channel + "/" + node}
}

// Node is the space of keys of one node of one channel.
type Node struct {
	s     *Store
	scope string
}

// Scope returns "channel/node".
func (n *Node) Scope() string { return n.scope }

// Save stores value, encoded as JSON, under key.
func (n *Node) Save(ctx context.Context, key string, value any) error {
	b, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("kv %s: save %q: %w", n.scope, key, err)
	}
	if err := n.s.b.Put(ctx, n.scope, key, b); err != nil {
		return fmt.Errorf("kv %s: save %q: %w", n.scope, key, err)
	}
	return nil
}

// Restore returns the value saved under key as a context holds JSON, and
// whether there was one.
func (n *Node) Restore(ctx context.Context, key string) (value any, found bool, err error) {
	b, found, err := n.s.b.Get(ctx, n.scope, key)
	if err != nil || !found {
		if err != nil {
			err = fmt.Errorf("kv %s: restore %q: %w", n.scope, key, err)
		}
		return nil, false, err
	}
	// Decode as the context decodes JSON: big integers keep their digits.
	var buf bytes.Buffer
	buf.WriteString(`{"v":`)
	buf.Write(b)
	buf.WriteByte('}')
	c, err := fc.FromJSON(buf.Bytes())
	if err != nil {
		return nil, false, fmt.Errorf("kv %s: restore %q: %w", n.scope, key, err)
	}
	v, _ := c.Get("v")
	return v, true, nil
}

// MustRestore is Restore that fails, wrapping ErrNotFound, when there is
// no value: pypeman's restore_data without a default.
func (n *Node) MustRestore(ctx context.Context, key string) (any, error) {
	v, found, err := n.Restore(ctx, key)
	if err == nil && !found {
		err = fmt.Errorf("kv %s: restore %q: %w", n.scope, key, ErrNotFound)
	}
	return v, err
}

// RestoreInto decodes the value saved under key into dst (a pointer, as
// for json.Unmarshal) and reports whether there was one.
func (n *Node) RestoreInto(ctx context.Context, key string, dst any) (bool, error) {
	b, found, err := n.s.b.Get(ctx, n.scope, key)
	if err != nil || !found {
		if err != nil {
			err = fmt.Errorf("kv %s: restore %q: %w", n.scope, key, err)
		}
		return false, err
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return true, fmt.Errorf("kv %s: restore %q: %w", n.scope, key, err)
	}
	return true, nil
}

// Delete removes the value under key, if any.
func (n *Node) Delete(ctx context.Context, key string) error {
	if err := n.s.b.Delete(ctx, n.scope, key); err != nil {
		return fmt.Errorf("kv %s: delete %q: %w", n.scope, key, err)
	}
	return nil
}

// memory is the in-memory Backend.
type memory struct {
	mu     sync.RWMutex
	m      map[[2]string][]byte
	closed bool
}

// NewMemory returns a store in memory: its values live as long as the
// process.
func NewMemory() *Store { return New(&memory{m: map[[2]string][]byte{}}) }

func (m *memory) Get(_ context.Context, scope, key string) ([]byte, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return nil, false, ErrClosed
	}
	v, ok := m.m[[2]string{scope, key}]
	return v, ok, nil
}

func (m *memory) Put(_ context.Context, scope, key string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.m[[2]string{scope, key}] = bytes.Clone(value)
	return nil
}

func (m *memory) Delete(_ context.Context, scope, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	delete(m.m, [2]string{scope, key})
	return nil
}

func (m *memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

package context

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/svcflow/svcflow/internal/jsonenc"
)

// Context is the shared data of one flow run: a map from key to value that
// every service of the run reads and writes.
//
// A Context is not safe for concurrent use and is never shared between
// goroutines: a branch that runs concurrently gets its own copy-on-write
// child from [Context.Snapshot], and the engine merges children back with
// [Context.Merge] in a fixed order, so a run is deterministic.
//
// The zero value is an empty context ready to use.
type Context struct {
	m map[string]any
	// shared is true while m is also referenced by another Context (a parent
	// or a child snapshot); the first write then copies it.
	shared bool
	// A snapshot reads through to base, its parent's map at the time of the
	// snapshot (never written), and keeps its writes in ov, in first-write
	// order, until something needs the whole map (View, Map, JSON): then it
	// flattens into m once, turns ov into rec, and works like a root.
	base map[string]any
	ov   []entry
	// rec records the keys a flattened snapshot wrote since the snapshot
	// (nil for a root context).
	rec *writeSet
	// trk records writes for an active [Context.Track].
	trk *writeSet
}

// entry is one write of a snapshot: a value, or a deletion.
type entry struct {
	key     string
	val     any
	deleted bool
}

// maxOverlay is the number of writes a snapshot keeps beside its parent's
// map before it flattens.
const maxOverlay = 16

// writeSet records the keys a context wrote, in first-write order, and
// which of them were deleted.
type writeSet struct {
	order   []string
	index   map[string]struct{}
	deleted map[string]struct{}
}

func (w *writeSet) add(key string, deleted bool) {
	if w.index == nil && len(w.order) < 8 {
		// Few keys (the common case for one step): a scan beats a map.
		if !slices.Contains(w.order, key) {
			w.order = append(w.order, key)
		}
	} else {
		if w.index == nil {
			w.index = make(map[string]struct{}, 2*len(w.order))
			for _, k := range w.order {
				w.index[k] = struct{}{}
			}
		}
		if _, ok := w.index[key]; !ok {
			w.index[key] = struct{}{}
			w.order = append(w.order, key)
		}
	}
	if deleted {
		if w.deleted == nil {
			w.deleted = make(map[string]struct{})
		}
		w.deleted[key] = struct{}{}
	} else if w.deleted != nil {
		delete(w.deleted, key)
	}
}

// New returns an empty context.
func New() *Context { return &Context{} }

// FromMap returns a context holding a copy of m. A nil map gives an empty
// context. The copy is shallow: nested maps and slices are shared with m.
func FromMap(m map[string]any) *Context {
	if m == nil {
		return &Context{}
	}
	return &Context{m: maps.Clone(m)}
}

// FromJSON decodes a JSON object into a new context. Objects decode as
// map[string]any and arrays as []any, as encoding/json does. A number
// decodes as a float64, unless the float64 would not keep its digits (an
// integer beyond 2^53 such as 12345678901234567891, a decimal with more
// digits than a float64 keeps): that number is a json.Number holding its
// text, so encoding the context writes it unchanged. Typed keys convert
// both on read (see [Key.Get]). "null" or empty input gives an empty
// context; any other non-object is an error.
func FromJSON(data []byte) (*Context, error) {
	c := &Context{}
	if err := c.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return c, nil
}

// Get returns the value stored under key and whether it is present.
func (c *Context) Get(key string) (any, bool) {
	if c.base == nil {
		v, ok := c.m[key]
		return v, ok
	}
	for i := range c.ov {
		if c.ov[i].key == key {
			return c.ov[i].val, !c.ov[i].deleted
		}
	}
	v, ok := c.base[key]
	return v, ok
}

// Has reports whether key is present.
func (c *Context) Has(key string) bool {
	_, ok := c.Get(key)
	return ok
}

// Set stores v under key.
func (c *Context) Set(key string, v any) {
	c.write(key, v, false)
}

// Delete removes key. Deleting an absent key is a no-op.
func (c *Context) Delete(key string) {
	if c.Has(key) {
		c.write(key, nil, true)
	}
}

func (c *Context) write(key string, v any, deleted bool) {
	if c.trk != nil {
		c.trk.add(key, deleted)
	}
	if c.base != nil {
		for i := range c.ov {
			if c.ov[i].key == key {
				c.ov[i].val, c.ov[i].deleted = v, deleted
				return
			}
		}
		if len(c.ov) < maxOverlay {
			c.ov = append(c.ov, entry{key: key, val: v, deleted: deleted})
			return
		}
		c.flat()
	}
	c.own()
	if deleted {
		delete(c.m, key)
	} else {
		c.m[key] = v
	}
	if c.rec != nil {
		c.rec.add(key, deleted)
	}
}

// flat turns a snapshot into a root holding the whole map, once.
func (c *Context) flat() map[string]any {
	if c.base == nil {
		return c.m
	}
	m := make(map[string]any, len(c.base)+len(c.ov))
	maps.Copy(m, c.base)
	rec := &writeSet{}
	for _, e := range c.ov {
		if e.deleted {
			delete(m, e.key)
		} else {
			m[e.key] = e.val
		}
		rec.add(e.key, e.deleted)
	}
	c.m, c.base, c.ov, c.rec, c.shared = m, nil, nil, rec, false
	return m
}

// Update sets every entry of m, in sorted key order.
func (c *Context) Update(m map[string]any) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		c.Set(k, m[k])
	}
}

// Len returns the number of keys.
func (c *Context) Len() int { return len(c.flat()) }

// Keys returns the keys in sorted order.
func (c *Context) Keys() []string { return slices.Sorted(maps.Keys(c.flat())) }

// Map returns a shallow copy of the data.
func (c *Context) Map() map[string]any {
	m := c.flat()
	if m == nil {
		return map[string]any{}
	}
	return maps.Clone(m)
}

// View returns the underlying map without copying, for read-only use such
// as the environment of an expression. The caller must not modify it, and
// must not keep it past the next write to c. It may be nil when c is empty.
// On a snapshot, the first View costs one copy of the map.
func (c *Context) View() map[string]any { return c.flat() }

// own makes c the sole owner of its map before a write.
func (c *Context) own() {
	switch {
	case c.m == nil:
		c.m = make(map[string]any)
	case c.shared:
		c.m = maps.Clone(c.m)
	}
	c.shared = false
}

// Snapshot returns a copy-on-write child of c: reads see c's data as it is
// now, and neither sees the other's later writes. The child records the
// keys it writes, for [Context.Merge] and [Context.Written].
//
// Taking a snapshot costs one allocation. The child keeps its first writes
// beside the parent's map (room for four without allocating), so Get and
// Set stay cheap; the first call that needs the whole map ([Context.View],
// [Context.Map], JSON) or many writes copy it once. The parent copies its
// map on its first write after a snapshot.
//
// A snapshot may be handed to another goroutine, provided c itself is not
// used concurrently with it (the engine takes all snapshots before starting
// branches, and merges after they end).
func (c *Context) Snapshot() *Context {
	m := c.flat()
	if m == nil {
		m = make(map[string]any)
		c.m = m
	}
	c.shared = true
	s := &snapshot{}
	s.Context.base = m
	s.Context.ov = s.inline[:0]
	return &s.Context
}

// snapshot allocates a child context with room for its first writes.
type snapshot struct {
	Context
	inline [4]entry
}

// Written returns the keys written (set or deleted) since c was created by
// [Context.Snapshot], in first-write order. It is nil for a context that is
// not a snapshot.
func (c *Context) Written() []string {
	if c.base != nil {
		out := make([]string, len(c.ov))
		for i, e := range c.ov {
			out[i] = e.key
		}
		return out
	}
	if c.rec == nil {
		return nil
	}
	return slices.Clone(c.rec.order)
}

// Track starts recording the keys written to c from now on; end the
// recording with [Tracking.Stop]. Tracking nests: an outer tracking also
// sees the inner one's keys. Its storage is recycled, so tracking a step
// costs no allocation.
func (c *Context) Track() Tracking {
	w := writeSets.Get().(*writeSet)
	t := Tracking{c: c, w: w, outer: c.trk}
	c.trk = w
	return t
}

// Tracking is a recording of the keys written to a context, started by
// [Context.Track].
type Tracking struct {
	c     *Context
	w     *writeSet
	outer *writeSet
}

// Stop ends the recording and appends the keys written since Track to dst,
// in first-write order. Call it once, on the goroutine that uses the
// context.
func (t Tracking) Stop(dst []string) []string {
	t.c.trk = t.outer
	w := t.w
	if t.outer != nil {
		for _, k := range w.order {
			_, del := w.deleted[k]
			t.outer.add(k, del)
		}
	}
	dst = append(dst, w.order...)
	clear(w.order)
	w.order, w.index, w.deleted = w.order[:0], nil, nil
	writeSets.Put(w)
	return dst
}

var writeSets = sync.Pool{New: func() any { return new(writeSet) }}

// Merge applies the writes of each child to c, in argument order: a key
// written by several children ends with the value of the last one. Children
// are typically snapshots of c taken before concurrent branches ran; pass
// them in declaration order so the result does not depend on scheduling.
// A nil child, or one that is not a snapshot, is skipped.
func (c *Context) Merge(children ...*Context) {
	for _, ch := range children {
		switch {
		case ch == nil:
		case ch.base != nil:
			for _, e := range ch.ov {
				if e.deleted {
					c.Delete(e.key)
				} else {
					c.Set(e.key, e.val)
				}
			}
		case ch.rec != nil:
			for _, k := range ch.rec.order {
				if _, del := ch.rec.deleted[k]; del {
					c.Delete(k)
				} else {
					c.Set(k, ch.m[k])
				}
			}
		}
	}
}

// MarshalJSON encodes the data as a JSON object with sorted keys.
func (c *Context) MarshalJSON() ([]byte, error) {
	if c == nil {
		return []byte("{}"), nil
	}
	m := c.flat()
	if m == nil {
		return []byte("{}"), nil
	}
	b, err := AppendJSON(make([]byte, 0, 64*len(m)), m)
	if err != nil {
		return nil, fmt.Errorf("context: encode JSON: %w", err)
	}
	return b, nil
}

// UnmarshalJSON replaces the data with a decoded JSON object.
func (c *Context) UnmarshalJSON(data []byte) error {
	var m map[string]any
	if len(data) > 0 {
		if err := jsonenc.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("context: decode JSON object: %w", err)
		}
	}
	*c = Context{m: m}
	return nil
}

// String returns the JSON form of the data, for debugging.
func (c *Context) String() string {
	b, err := c.MarshalJSON()
	if err != nil {
		return fmt.Sprintf("context(%d keys, unencodable: %v)", c.Len(), err)
	}
	return string(b)
}

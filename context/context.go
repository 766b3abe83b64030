package context

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
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
	// writes records the keys written since the snapshot was taken (nil for
	// a root context that is not tracking).
	writes *writeSet
}

// writeSet records the keys a context wrote, in first-write order, and
// which of them were deleted.
type writeSet struct {
	order   []string
	index   map[string]struct{}
	deleted map[string]struct{}
}

func (w *writeSet) add(key string, deleted bool) {
	if w.index == nil {
		w.index = make(map[string]struct{})
	}
	if _, ok := w.index[key]; !ok {
		w.index[key] = struct{}{}
		w.order = append(w.order, key)
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

// FromJSON decodes a JSON object into a new context. Numbers decode as
// float64, objects as map[string]any and arrays as []any, as encoding/json
// does; typed keys convert them on read (see [Key.Get]). "null" or empty
// input gives an empty context; any other non-object is an error.
func FromJSON(data []byte) (*Context, error) {
	c := &Context{}
	if err := c.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return c, nil
}

// Get returns the value stored under key and whether it is present.
func (c *Context) Get(key string) (any, bool) {
	v, ok := c.m[key]
	return v, ok
}

// Has reports whether key is present.
func (c *Context) Has(key string) bool {
	_, ok := c.m[key]
	return ok
}

// Set stores v under key.
func (c *Context) Set(key string, v any) {
	c.own()
	c.m[key] = v
	if c.writes != nil {
		c.writes.add(key, false)
	}
}

// Delete removes key. Deleting an absent key is a no-op.
func (c *Context) Delete(key string) {
	if _, ok := c.m[key]; !ok {
		return
	}
	c.own()
	delete(c.m, key)
	if c.writes != nil {
		c.writes.add(key, true)
	}
}

// Update sets every entry of m, in sorted key order.
func (c *Context) Update(m map[string]any) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		c.Set(k, m[k])
	}
}

// Len returns the number of keys.
func (c *Context) Len() int { return len(c.m) }

// Keys returns the keys in sorted order.
func (c *Context) Keys() []string { return slices.Sorted(maps.Keys(c.m)) }

// Map returns a shallow copy of the data.
func (c *Context) Map() map[string]any {
	if c.m == nil {
		return map[string]any{}
	}
	return maps.Clone(c.m)
}

// View returns the underlying map without copying, for read-only use such
// as the environment of an expression. The caller must not modify it, and
// must not keep it past the next write to c. It may be nil when c is empty.
func (c *Context) View() map[string]any { return c.m }

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
// now; the first write to either c or the child copies the map, so neither
// sees the other's later writes. The child records the keys it writes, for
// [Context.Merge] and [Context.Written].
//
// Taking a snapshot costs one allocation; the copy is paid only by a side
// that writes. A snapshot may be handed to another goroutine, provided c
// itself is not used concurrently with it (the engine takes all snapshots
// before starting branches, and merges after they end).
func (c *Context) Snapshot() *Context {
	if c.m == nil {
		c.m = make(map[string]any)
	}
	c.shared = true
	return &Context{m: c.m, shared: true, writes: &writeSet{}}
}

// Written returns the keys written (set or deleted) since c was created by
// [Context.Snapshot] or since [Context.Track], in first-write order. It is
// nil for a context that does not track writes.
func (c *Context) Written() []string {
	if c.writes == nil {
		return nil
	}
	return slices.Clone(c.writes.order)
}

// Track starts recording the keys written to c from now on, and returns a
// function that stops recording and returns them in first-write order.
// Tracking nests: an outer tracker also sees the inner tracker's keys.
func (c *Context) Track() (stop func() []string) {
	outer := c.writes
	w := &writeSet{}
	c.writes = w
	return func() []string {
		c.writes = outer
		if outer != nil {
			for _, k := range w.order {
				_, del := w.deleted[k]
				outer.add(k, del)
			}
		}
		return w.order
	}
}

// Merge applies the writes of each child to c, in argument order: a key
// written by several children ends with the value of the last one. Children
// are typically snapshots of c taken before concurrent branches ran; pass
// them in declaration order so the result does not depend on scheduling.
// A nil child is skipped. Merge records the writes on c if c tracks them.
func (c *Context) Merge(children ...*Context) {
	for _, ch := range children {
		if ch == nil || ch.writes == nil {
			continue
		}
		for _, k := range ch.writes.order {
			if _, del := ch.writes.deleted[k]; del {
				c.Delete(k)
				continue
			}
			c.Set(k, ch.m[k])
		}
	}
}

// MarshalJSON encodes the data as a JSON object with sorted keys.
func (c *Context) MarshalJSON() ([]byte, error) {
	if c == nil || c.m == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(c.m)
	if err != nil {
		return nil, fmt.Errorf("context: encode JSON: %w", err)
	}
	return b, nil
}

// UnmarshalJSON replaces the data with a decoded JSON object.
func (c *Context) UnmarshalJSON(data []byte) error {
	var m map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &m); err != nil {
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

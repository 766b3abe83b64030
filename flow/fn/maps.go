package fn

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"

	"github.com/samber/lo"

	fc "github.com/svcflow/svcflow/context"
	ferrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// MapStep is a service that shapes a map: the run's context itself, or
// the map[string]any at a key ([MapStep.From]), the result written over
// the context or at a key of its own ([MapStep.Into]). Make one with
// [Pick], [Omit], [Rename], [Defaults] or [Merge]; set From and Into
// before the flow is built. A MapStep never changes a map it reads: a
// result is a new map.
type MapStep struct {
	name     string
	op       string
	keys     []string    // pick, omit, merge (its sources)
	renames  [][2]string // rename, by old key
	values   map[string]any
	from     string
	into     string
	err      error
	contract *flow.Contract // set by Prepare
}

// Pick keeps only keys: of the context when the step has neither From
// nor Into (every other key is deleted, and later steps cannot need
// one: a build error), else of the source map, into a new map. Keys that
// are absent are skipped, but picked context keys are needs of the step.
//
//	fn.Pick("reply", "order_id", "total")                  // the context keeps two keys
//	fn.Pick("contact", "name", "email").From("customer").Into("contact")
func Pick(name string, keys ...string) *MapStep {
	return newMap(name, "pick", keys)
}

// Omit deletes keys: of the context when the step has neither From nor
// Into (later steps cannot need them: a build error), else of a copy of
// the source map. Absent keys are skipped.
func Omit(name string, keys ...string) *MapStep {
	return newMap(name, "omit", keys)
}

// Rename moves the value of each old key of renames to its new key,
// deleting the old one: all values are read before any is written, so
// {a: b, b: a} swaps. On the context, the old keys are needs of the step
// and its new keys are provided with the old keys' types; on a map, an
// absent old key is skipped.
func Rename(name string, renames map[string]string) *MapStep {
	m := newMap(name, "rename", nil)
	seen := map[string]string{}
	for _, old := range slices.Sorted(maps.Keys(renames)) {
		to := renames[old]
		switch {
		case old == "" || to == "":
			m.fail("rename %q to %q: empty key", old, to)
		case seen[to] != "":
			m.fail("%q and %q both renamed to %q", seen[to], old, to)
		}
		seen[to] = old
		m.renames = append(m.renames, [2]string{old, to})
	}
	if len(renames) == 0 {
		m.fail("rename: no keys")
	}
	return m
}

// Defaults sets each key of values that is absent or null (nil) to its
// value; keys that hold a value keep it. Values that are maps or lists
// of JSON shape (map[string]any, []any) are copied for each run.
func Defaults(name string, values map[string]any) *MapStep {
	m := newMap(name, "defaults", slices.Sorted(maps.Keys(values)))
	m.values = values
	return m
}

// Merge merges the maps at the keys sources, in order, a key of a later
// one winning: over the context (each entry becomes a context key; those
// keys are not known to build checks), or, with [MapStep.Into], into a
// new map. From does not apply: the sources are the maps. A source that
// is absent or null is skipped; one that is not a map is a Stop.
func Merge(name string, sources ...string) *MapStep {
	return newMap(name, "merge", sources)
}

func newMap(name, op string, keys []string) *MapStep {
	m := &MapStep{name: name, op: op, keys: keys}
	if len(keys) == 0 && op != "rename" {
		m.fail("%s: no keys", op)
	}
	for _, k := range keys {
		if k == "" {
			m.fail("%s: an empty key", op)
		}
	}
	return m
}

func (m *MapStep) fail(format string, args ...any) {
	m.err = errors.Join(m.err, fmt.Errorf(format, args...))
}

// From makes the step shape the map[string]any at key instead of the
// context; the result replaces it unless Into says where it goes. A value
// of another type is converted as fc.Convert does (a struct through its
// JSON form); one that cannot be is a Stop; null is an empty map.
func (m *MapStep) From(key string) *MapStep {
	if key == "" {
		m.fail("%s: empty from key", m.op)
	}
	if m.op == "merge" {
		m.fail("merge: From does not apply (the sources are the maps); use Into")
	}
	m.from = key
	return m
}

// Into writes the result, a new map[string]any, at key; the context's
// other keys (and the source map) are left as they are.
func (m *MapStep) Into(key string) *MapStep {
	if key == "" {
		m.fail("%s: empty into key", m.op)
	}
	m.into = key
	return m
}

// Name returns the step's name.
func (m *MapStep) Name() string { return m.name }

// Contract is what the step reads and writes: see each constructor.
// Pick over the context also removes, when the flow is built, every key
// known there but those it keeps.
func (m *MapStep) Contract() flow.Contract {
	if m.contract != nil {
		return *m.contract
	}
	return m.contractFor(nil)
}

// Prepare reports a construction error as a build error and computes the
// contract from the keys known where the step sits.
func (m *MapStep) Prepare(known map[string]reflect.Type) (flow.Service, error) {
	if m.err != nil {
		return nil, m.err
	}
	out := *m
	c := m.contractFor(known)
	out.contract = &c
	return &out, nil
}

var mapType = reflect.TypeFor[map[string]any]()

func (m *MapStep) contractFor(known map[string]reflect.Type) flow.Contract {
	var c flow.Contract
	switch {
	case m.op == "merge":
		for _, k := range m.keys {
			c.Needs = append(c.Needs, fc.Any(k))
		}
	case m.from != "":
		c.Needs = append(c.Needs, fc.Any(m.from))
	}
	switch {
	case m.into != "":
		c.Provides = append(c.Provides, fc.KeyInfo{Name: m.into, Type: mapType})
		if m.from == "" && m.op == "pick" {
			for _, k := range m.keys {
				c.Needs = append(c.Needs, fc.Any(k))
			}
		}
		return c
	case m.from != "":
		c.Provides = append(c.Provides, fc.KeyInfo{Name: m.from, Type: mapType})
		return c
	}
	switch m.op { // on the context itself
	case "pick":
		for _, k := range m.keys {
			c.Needs = append(c.Needs, fc.Any(k))
		}
		for _, k := range slices.Sorted(maps.Keys(known)) {
			if !slices.Contains(m.keys, k) {
				c.Removes = append(c.Removes, k)
			}
		}
	case "omit":
		c.Removes = slices.Clone(m.keys)
	case "rename":
		for _, r := range m.renames {
			c.Needs = append(c.Needs, fc.Any(r[0]))
			c.Provides = append(c.Provides, fc.KeyInfo{Name: r[1], Type: known[r[0]]})
			c.Removes = append(c.Removes, r[0])
		}
	case "defaults":
		for _, k := range m.keys {
			var t reflect.Type
			if kt, ok := known[k]; ok && kt != nil && m.values[k] != nil && reflect.TypeOf(m.values[k]).AssignableTo(kt) {
				t = kt
			}
			c.Provides = append(c.Provides, fc.KeyInfo{Name: k, Type: t})
		}
	}
	return c
}

// Call shapes the map.
func (m *MapStep) Call(_ context.Context, c *fc.Context) error {
	if m.err != nil {
		return m.err
	}
	if m.op == "merge" {
		res := map[string]any{}
		for _, k := range m.keys {
			src, err := readMap(c, k)
			if err != nil {
				return err
			}
			maps.Copy(res, src)
		}
		if m.into != "" {
			c.Set(m.into, res)
			return nil
		}
		for _, k := range slices.Sorted(maps.Keys(res)) {
			c.Set(k, res[k])
		}
		return nil
	}
	if m.from == "" && m.into == "" {
		m.onContext(c)
		return nil
	}
	src := c.View()
	if m.from != "" {
		var err error
		if src, err = readMap(c, m.from); err != nil {
			return err
		}
	}
	var res map[string]any
	switch m.op {
	case "pick":
		res = lo.PickByKeys(src, m.keys)
	case "omit":
		res = lo.OmitByKeys(src, m.keys)
	case "rename":
		res = maps.Clone(src)
		if res == nil {
			res = map[string]any{}
		}
		moved := make([]any, len(m.renames))
		has := make([]bool, len(m.renames))
		for i, r := range m.renames {
			moved[i], has[i] = src[r[0]]
			delete(res, r[0])
		}
		for i, r := range m.renames {
			if has[i] {
				res[r[1]] = moved[i]
			}
		}
	case "defaults":
		res = maps.Clone(src)
		if res == nil {
			res = map[string]any{}
		}
		for _, k := range m.keys {
			if res[k] == nil {
				res[k] = copyJSON(m.values[k])
			}
		}
	}
	into := m.into
	if into == "" {
		into = m.from
	}
	c.Set(into, res)
	return nil
}

// onContext shapes the context in place.
func (m *MapStep) onContext(c *fc.Context) {
	switch m.op {
	case "pick":
		for _, k := range c.Keys() {
			if !slices.Contains(m.keys, k) {
				c.Delete(k)
			}
		}
	case "omit":
		for _, k := range m.keys {
			if c.Has(k) {
				c.Delete(k)
			}
		}
	case "rename":
		moved := make([]any, len(m.renames))
		has := make([]bool, len(m.renames))
		for i, r := range m.renames {
			moved[i], has[i] = c.Get(r[0])
			if has[i] {
				c.Delete(r[0])
			}
		}
		for i, r := range m.renames {
			if has[i] {
				c.Set(r[1], moved[i])
			}
		}
	case "defaults":
		for _, k := range m.keys {
			if v, _ := c.Get(k); v == nil {
				c.Set(k, copyJSON(m.values[k]))
			}
		}
	}
}

// readMap reads the map at key: absent or null is an empty map, one that
// cannot be converted is a Stop.
func readMap(c *fc.Context, key string) (map[string]any, error) {
	raw, ok := c.Get(key)
	if !ok || raw == nil {
		return nil, nil
	}
	if m, ok := raw.(map[string]any); ok {
		return m, nil
	}
	m, err := fc.Convert[map[string]any](raw)
	if err != nil {
		return nil, ferrors.Stopf("key %q: want a map, got %T: %w", key, raw, err)
	}
	return m, nil
}

// copyJSON copies maps and lists of JSON shape, so a default value given
// once is never shared between runs.
func copyJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = copyJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = copyJSON(e)
		}
		return out
	}
	return v
}

package steps

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/samber/lo"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/branch"
	fc "github.com/svcflow/svcflow/context"
	ferrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/flow/fn"
)

// The function toolkit's step components (package flow/fn in YAML).
var (
	// Pick keeps only some keys.
	Pick = component.Step("pick", "keep only keys: of the context (the others are deleted), or of the map at from; into: a new map at a key instead", newPick)
	// Omit deletes keys.
	Omit = component.Step("omit", "delete keys: of the context, or of (a copy of) the map at from; into: the result at a key instead", newOmit)
	// Rename renames keys.
	Rename = component.Step("rename", "move each old key to its new key (keys: {old: new}), in the context or the map at from", newRename)
	// Defaults sets absent keys.
	Defaults = component.Step("defaults", "set the keys of values that are absent or null, in the context or the map at from", newDefaults)
	// Merge merges maps.
	Merge = component.Step("merge", "merge the maps at the keys from, in order (a later one wins), over the context or into a new map", newMerge)
	// Map maps a list.
	Map = component.Step("map", "the list at from, each element replaced by the expression to (over # or the as variable); into defaults to from", newMapStep)
	// Filter filters a list.
	Filter = component.Step("filter", "the elements of the list at from for which the condition where holds; into defaults to from", newFilter)
	// Reject rejects elements of a list.
	Reject = component.Step("reject", "the elements of the list at from for which the condition where does not hold; into defaults to from", newReject)
	// GroupBy groups a list.
	GroupBy = component.Step("group_by", "a map from each value of the expression by (as text) to the elements of the list at from that have it, in order", newGroupBy)
	// KeyBy indexes a list.
	KeyBy = component.Step("key_by", "a map from each value of the expression by (as text) to the last element of the list at from that has it", newKeyBy)
	// Chunk cuts a list.
	Chunk = component.Step("chunk", "the list at from cut into lists of size elements (the last may be shorter); into defaults to from", newChunk)
	// UniqBy drops repeated elements.
	UniqBy = component.Step("uniq_by", "the first element of the list at from for each value of the expression by, in order; into defaults to from", newUniqBy)
	// Flatten joins lists.
	Flatten = component.Step("flatten", "the lists among the elements of the list at from spread one level (other elements kept); into defaults to from", newFlatten)
	// SortBy sorts a list.
	SortBy = component.Step("sort_by", "the list at from sorted by the expression by (numbers, or strings), stable; desc: true for largest first; into defaults to from", newSortBy)
	// SumBy sums over a list.
	SumBy = component.Step("sum_by", "the sum of the expression by (a number) over the elements of the list at from", newSumBy)
)

// Toolkit returns the function toolkit's step components, which [All]
// includes.
func Toolkit() []component.Component {
	return []component.Component{Pick, Omit, Rename, Defaults, Merge, Map, Filter, Reject, GroupBy, KeyBy, Chunk, UniqBy, Flatten, SortBy, SumBy}
}

// ---- over maps ----

// PickSpec is the spec of a pick step (see fn.Pick):
//
//	pick: [order_id, total]                        # the context keeps these keys
//	pick: {keys: [name, email], from: customer, into: contact}
type PickSpec struct {
	Keys []component.Key `yaml:"keys" spec:"required,list" doc:"the keys to keep"`
	From component.Key   `yaml:"from" doc:"shape the map at this key instead of the context"`
	Into component.Key   `yaml:"into" doc:"write the result, a new map, at this key"`
}

// StepName is "pick(a,b)".
func (s PickSpec) StepName() string { return "pick(" + keysName(names(s.Keys)) + ")" }

// OmitSpec is the spec of an omit step (see fn.Omit):
//
//	omit: [password]                               # deleted from the context
//	omit: {keys: [password], from: user}
type OmitSpec struct {
	Keys []component.Key `yaml:"keys" spec:"required,list" doc:"the keys to delete"`
	From component.Key   `yaml:"from" doc:"shape the map at this key instead of the context"`
	Into component.Key   `yaml:"into" doc:"write the result, a new map, at this key"`
}

// StepName is "omit(a,b)".
func (s OmitSpec) StepName() string { return "omit(" + keysName(names(s.Keys)) + ")" }

// RenameSpec is the spec of a rename step (see fn.Rename):
//
//	rename: {keys: {id: order_id}}
//	rename: {keys: {name: full_name}, from: customer}
type RenameSpec struct {
	Keys component.Pairs[component.Key] `yaml:"keys" spec:"required" doc:"old: new"`
	From component.Key                  `yaml:"from" doc:"shape the map at this key instead of the context"`
	Into component.Key                  `yaml:"into" doc:"write the result, a new map, at this key"`
}

// StepName is "rename(a,b)": the old keys.
func (s RenameSpec) StepName() string { return "rename(" + keysName(s.Keys.Keys()) + ")" }

// DefaultsSpec is the spec of a defaults step (see fn.Defaults):
//
//	defaults: {values: {currency: EUR, tags: []}}
//	defaults: {values: {lang: en}, from: prefs}
type DefaultsSpec struct {
	Values map[string]any `yaml:"values" spec:"required" doc:"key: value set when the key is absent or null"`
	From   component.Key  `yaml:"from" doc:"shape the map at this key instead of the context"`
	Into   component.Key  `yaml:"into" doc:"write the result, a new map, at this key"`
}

// StepName is "defaults(a,b)".
func (s DefaultsSpec) StepName() string {
	return "defaults(" + keysName(slices.Sorted(maps.Keys(s.Values))) + ")"
}

// MergeSpec is the spec of a merge step (see fn.Merge):
//
//	merge: [account, prefs]                        # their entries become context keys
//	merge: {from: [account, prefs], into: profile}
type MergeSpec struct {
	From []component.Key `yaml:"from" spec:"required,list" doc:"the keys of the maps, merged in order (a later one wins)"`
	Into component.Key   `yaml:"into" doc:"write the result, a new map, at this key (else over the context)"`
}

// StepName is "merge(a,b)".
func (s MergeSpec) StepName() string { return "merge(" + keysName(names(s.From)) + ")" }

func names(keys []component.Key) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(k)
	}
	return out
}

// mapStep finishes a fn.MapStep with from and into and names it.
func mapStep(env component.Env, m *fn.MapStep, from, into component.Key) (flow.Service, error) {
	if from != "" {
		m.From(string(from))
	}
	if into != "" {
		m.Into(string(into))
	}
	// Construction errors surface when the flow is built (Prepare): check
	// now, so the file reports them at the step.
	if _, err := m.Prepare(nil); err != nil {
		return nil, err
	}
	return m, nil
}

// noKeys is the error of a spec whose list of keys is empty.
func noKeys[T any](keys []T) error {
	if len(keys) == 0 {
		return component.FieldErrorf("keys", "expected at least one key")
	}
	return nil
}

func newPick(env component.Env, s PickSpec) (flow.Service, error) {
	if err := noKeys(s.Keys); err != nil {
		return nil, err
	}
	return mapStep(env, fn.Pick(env.Name, names(s.Keys)...), s.From, s.Into)
}

func newOmit(env component.Env, s OmitSpec) (flow.Service, error) {
	if err := noKeys(s.Keys); err != nil {
		return nil, err
	}
	return mapStep(env, fn.Omit(env.Name, names(s.Keys)...), s.From, s.Into)
}

func newRename(env component.Env, s RenameSpec) (flow.Service, error) {
	m := map[string]string{}
	for _, p := range s.Keys {
		m[p.Key] = string(p.Value)
	}
	return mapStep(env, fn.Rename(env.Name, m), s.From, s.Into)
}

func newDefaults(env component.Env, s DefaultsSpec) (flow.Service, error) {
	return mapStep(env, fn.Defaults(env.Name, s.Values), s.From, s.Into)
}

func newMerge(env component.Env, s MergeSpec) (flow.Service, error) {
	if len(s.From) == 0 {
		return nil, component.FieldErrorf("from", "expected at least one key")
	}
	return mapStep(env, fn.Merge(env.Name, names(s.From)...), "", s.Into)
}

// ---- over lists, with expressions over each element ----

// MapSpec is the spec of a map step: each element of the list at from
// replaced by the expression to, over the element `#` (or the variable
// named by as) and its index `#index`, and any context key.
//
//	map: {from: items, to: "#.price * #.qty", into: amounts}
//	map: {from: items, as: item, to: "{sku: item.sku, total: item.price * item.qty * rate}"}
type MapSpec struct {
	From component.Key `yaml:"from" spec:"required" doc:"the key of the list"`
	To   string        `yaml:"to" spec:"required" doc:"the expression of each new element, over # (the element) or as"`
	As   string        `yaml:"as" doc:"a name for the element in the expression, beside #"`
	Into component.Key `yaml:"into" doc:"the key of the result (default: from)"`
}

// StepName is "map(from)".
func (s MapSpec) StepName() string { return "map(" + string(s.From) + ")" }

// FilterSpec is the spec of a filter step, and of reject: the elements
// of the list at from for which the condition where holds (does not hold,
// for reject), in order.
//
//	filter: {from: items, where: "#.qty > 0"}
//	reject: {from: items, as: item, where: "item.sku in blocked", into: allowed}
type FilterSpec struct {
	From  component.Key `yaml:"from" spec:"required" doc:"the key of the list"`
	Where string        `yaml:"where" spec:"required" doc:"the condition, over # (the element) or as"`
	As    string        `yaml:"as" doc:"a name for the element in the expression, beside #"`
	Into  component.Key `yaml:"into" doc:"the key of the result (default: from)"`
}

// StepName is "filter(from)".
func (s FilterSpec) StepName() string { return "filter(" + string(s.From) + ")" }

// ByIntoSpec is the spec of the group_by, key_by and sum_by steps: an
// expression by over each element of the list at from, a result at into.
//
//	group_by: {from: items, by: "#.sku", into: by_sku}
//	key_by:   {from: customers, by: "#.id", into: customers_by_id}
//	sum_by:   {from: items, by: "#.price * #.qty", into: total}
type ByIntoSpec struct {
	From component.Key `yaml:"from" spec:"required" doc:"the key of the list"`
	By   string        `yaml:"by" spec:"required" doc:"the expression over # (the element) or as"`
	As   string        `yaml:"as" doc:"a name for the element in the expression, beside #"`
	Into component.Key `yaml:"into" spec:"required" doc:"the key of the result"`
}

// StepName is "group_by(from)".
func (s ByIntoSpec) StepName() string { return "group_by(" + string(s.From) + ")" }

// KeyBySpec is the spec of a key_by step (see [ByIntoSpec]).
type KeyBySpec ByIntoSpec

// StepName is "key_by(from)".
func (s KeyBySpec) StepName() string { return "key_by(" + string(s.From) + ")" }

// SumBySpec is the spec of a sum_by step (see [ByIntoSpec]).
type SumBySpec ByIntoSpec

// StepName is "sum_by(from)".
func (s SumBySpec) StepName() string { return "sum_by(" + string(s.From) + ")" }

// RejectSpec is the spec of a reject step (see [FilterSpec]).
type RejectSpec FilterSpec

// StepName is "reject(from)".
func (s RejectSpec) StepName() string { return "reject(" + string(s.From) + ")" }

// UniqBySpec is the spec of a uniq_by step: the first element of the list
// at from for each value of by, in order.
//
//	uniq_by: {from: items, by: "#.sku"}
type UniqBySpec struct {
	From component.Key `yaml:"from" spec:"required" doc:"the key of the list"`
	By   string        `yaml:"by" spec:"required" doc:"the expression over # (the element) or as"`
	As   string        `yaml:"as" doc:"a name for the element in the expression, beside #"`
	Into component.Key `yaml:"into" doc:"the key of the result (default: from)"`
}

// StepName is "uniq_by(from)".
func (s UniqBySpec) StepName() string { return "uniq_by(" + string(s.From) + ")" }

// SortBySpec is the spec of a sort_by step: the list at from sorted by
// the value of by (all numbers, or all strings), stable.
//
//	sort_by: {from: items, by: "#.price", desc: true}
type SortBySpec struct {
	From component.Key `yaml:"from" spec:"required" doc:"the key of the list"`
	By   string        `yaml:"by" spec:"required" doc:"the expression over # (the element) or as: numbers or strings"`
	As   string        `yaml:"as" doc:"a name for the element in the expression, beside #"`
	Desc bool          `yaml:"desc" doc:"largest first"`
	Into component.Key `yaml:"into" doc:"the key of the result (default: from)"`
}

// StepName is "sort_by(from)".
func (s SortBySpec) StepName() string { return "sort_by(" + string(s.From) + ")" }

// ChunkSpec is the spec of a chunk step.
//
//	chunk: {from: items, size: 100, into: batches}
type ChunkSpec struct {
	From component.Key `yaml:"from" spec:"required" doc:"the key of the list"`
	Size int           `yaml:"size" spec:"required" doc:"the elements per chunk (at least 1)"`
	Into component.Key `yaml:"into" doc:"the key of the result (default: from)"`
}

// StepName is "chunk(from)".
func (s ChunkSpec) StepName() string { return "chunk(" + string(s.From) + ")" }

// FlattenSpec is the spec of a flatten step.
//
//	flatten: {from: pages, into: items}
type FlattenSpec struct {
	From component.Key `yaml:"from" spec:"required" doc:"the key of the list"`
	Into component.Key `yaml:"into" doc:"the key of the result (default: from)"`
}

// StepName is "flatten(from)".
func (s FlattenSpec) StepName() string { return "flatten(" + string(s.From) + ")" }

func newMapStep(env component.Env, s MapSpec) (flow.Service, error) {
	return newElem(env, "map", s.From, s.Into, "to", s.To, s.As)
}

func newFilter(env component.Env, s FilterSpec) (flow.Service, error) {
	return newElem(env, "filter", s.From, s.Into, "where", s.Where, s.As)
}

func newReject(env component.Env, s RejectSpec) (flow.Service, error) {
	return newElem(env, "reject", s.From, s.Into, "where", s.Where, s.As)
}

func newGroupBy(env component.Env, s ByIntoSpec) (flow.Service, error) {
	return newElem(env, "group_by", s.From, s.Into, "by", s.By, s.As)
}

func newKeyBy(env component.Env, s KeyBySpec) (flow.Service, error) {
	return newElem(env, "key_by", s.From, s.Into, "by", s.By, s.As)
}

func newSumBy(env component.Env, s SumBySpec) (flow.Service, error) {
	return newElem(env, "sum_by", s.From, s.Into, "by", s.By, s.As)
}

func newUniqBy(env component.Env, s UniqBySpec) (flow.Service, error) {
	return newElem(env, "uniq_by", s.From, s.Into, "by", s.By, s.As)
}

func newSortBy(env component.Env, s SortBySpec) (flow.Service, error) {
	svc, err := newElem(env, "sort_by", s.From, s.Into, "by", s.By, s.As)
	if err == nil {
		svc.(*elemStep).desc = s.Desc
	}
	return svc, err
}

func newChunk(env component.Env, s ChunkSpec) (flow.Service, error) {
	if s.Size < 1 {
		return nil, component.FieldErrorf("size", "expected at least 1, got %d", s.Size)
	}
	svc, err := newElem(env, "chunk", s.From, s.Into, "", "", "")
	if err == nil {
		svc.(*elemStep).size = s.Size
	}
	return svc, err
}

func newFlatten(env component.Env, s FlattenSpec) (flow.Service, error) {
	return newElem(env, "flatten", s.From, s.Into, "", "", "")
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// newElem makes a list step. An element expression src is compiled as
// map(FROM, src), so `#`, `#index` and every expr builtin work as inside
// expr's own map and filter; as binds the element to a name with let.
func newElem(env component.Env, op string, from, into component.Key, field, src, as string) (flow.Service, error) {
	s := &elemStep{name: env.Name, op: op, from: string(from), into: string(into)}
	if s.into == "" {
		s.into = s.from
	}
	needs := []string{s.from}
	if field != "" {
		if as != "" && !identRE.MatchString(as) {
			return nil, component.FieldErrorf("as", "expected a name (letters, digits, _), got %q", as)
		}
		list := s.from
		if !identRE.MatchString(list) {
			list = "$env[" + strconv.Quote(list) + "]"
		}
		prefix := "map(" + list + ", "
		if as != "" {
			prefix += "let " + as + " = #; "
		}
		e, err := branch.Parse(prefix + src + ")")
		if err == nil {
			schema := map[string]reflect.Type{}
			for _, id := range e.Idents() {
				schema[id] = nil
			}
			err = e.Compile(schema)
		}
		if err != nil {
			return nil, &component.FieldError{Field: field, Err: shiftError(err, src, prefix)}
		}
		s.expr, s.src = e, src
		needs = append(needs, e.Idents()...)
	}
	s.contract = flow.Contract{Needs: needsOf(needs), Provides: []fc.KeyInfo{fc.Any(s.into)}}
	return s, nil
}

// shiftError reports an error of the wrapped expression against the
// user's own text.
func shiftError(err error, src, prefix string) error {
	be, ok := errors.AsType[*branch.Error](err)
	if !ok {
		return err
	}
	out := &branch.Error{Expr: src, Msg: be.Msg, Err: be.Err}
	n := len([]rune(prefix))
	if be.Line == 1 && be.Column > n {
		out.Line, out.Column = 1, be.Column-n
	} else if be.Line > 1 {
		out.Line, out.Column = be.Line, be.Column
	}
	lines := strings.Split(src, "\n")
	if out.Line == len(lines) && out.Column > len([]rune(lines[len(lines)-1])) && strings.Contains(out.Msg, `Bracket(")")`) {
		// The closing parenthesis of the wrapper: the text ended early.
		out.Msg = "unexpected token EOF"
	}
	return out
}

// elemStep is a list step of the toolkit in YAML.
type elemStep struct {
	name, op   string
	from, into string
	src        string
	expr       *branch.Expr // map(from, src); nil for chunk and flatten
	size       int
	desc       bool
	contract   flow.Contract
}

func (s *elemStep) Name() string            { return s.name }
func (s *elemStep) Contract() flow.Contract { return s.contract }

// stop is a Stop naming the step's operation.
func (s *elemStep) stop(format string, args ...any) error {
	return ferrors.Stopf("%s %q: %s", s.op, s.from, fmt.Sprintf(format, args...))
}

func (s *elemStep) Call(_ context.Context, c *fc.Context) error {
	raw, _ := c.Get(s.from)
	elems, ok := asList(raw)
	if !ok {
		return s.stop("want a list, got %T", raw)
	}
	var vals []any
	if s.expr != nil {
		env := c.View()
		v, err := s.expr.Eval(env)
		if err != nil {
			return s.expr.DataError(fmt.Sprintf("%s %q", s.op, s.from), env, err)
		}
		vals, _ = v.([]any)
		if len(vals) != len(elems) {
			return s.stop("the expression gave %d values for %d elements", len(vals), len(elems))
		}
	}
	var res any
	switch s.op {
	case "map":
		res = vals
	case "filter", "reject":
		out := make([]any, 0, len(elems))
		for i, e := range elems {
			keep, ok := vals[i].(bool)
			if !ok {
				return s.stop("where %q: want a boolean, got %T for element %d", s.src, vals[i], i)
			}
			if keep == (s.op == "filter") {
				out = append(out, e)
			}
		}
		res = out
	case "group_by":
		out := map[string]any{}
		for i, e := range elems {
			k := keyText(vals[i])
			g, _ := out[k].([]any)
			out[k] = append(g, e)
		}
		res = out
	case "key_by":
		out := make(map[string]any, len(elems))
		for i, e := range elems {
			out[keyText(vals[i])] = e
		}
		res = out
	case "uniq_by":
		seen := make(map[string]bool, len(elems))
		out := make([]any, 0, len(elems))
		for i, e := range elems {
			k := uniqKey(vals[i])
			if !seen[k] {
				seen[k] = true
				out = append(out, e)
			}
		}
		res = out
	case "sort_by":
		sorted, err := s.sortBy(elems, vals)
		if err != nil {
			return err
		}
		res = sorted
	case "sum_by":
		sum, err := s.sumBy(vals)
		if err != nil {
			return err
		}
		res = sum
	case "chunk":
		chunks := lo.Chunk(elems, s.size)
		out := make([]any, len(chunks))
		for i, ch := range chunks {
			out[i] = ch
		}
		res = out
	case "flatten":
		out := make([]any, 0, len(elems))
		for _, e := range elems {
			if l, ok := asList(e); ok && e != nil {
				out = append(out, l...)
			} else {
				out = append(out, e)
			}
		}
		res = out
	}
	c.Set(s.into, res)
	return nil
}

// asList returns v as a []any: a []any itself, the elements of another
// slice or array, nothing for nil. ok is false for anything else.
func asList(v any) ([]any, bool) {
	switch x := v.(type) {
	case nil:
		return nil, true
	case []any:
		return x, true
	}
	rv := reflect.ValueOf(v)
	if k := rv.Kind(); k != reflect.Slice && k != reflect.Array {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

// number returns v as a float64 when it is a number, and whether it is
// an integer type.
func number(v any) (f float64, isInt, ok bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true, true
	case int64:
		return float64(x), true, true
	case float64:
		return x, false, true
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return float64(i), true, true
		}
		f, err := x.Float64()
		return f, false, err == nil
	}
	rv := reflect.ValueOf(v)
	switch {
	case rv.CanInt():
		return float64(rv.Int()), true, true
	case rv.CanUint():
		return float64(rv.Uint()), true, true
	case rv.CanFloat():
		return rv.Float(), false, true
	}
	return 0, false, false
}

// keyText is the text a value takes as a key of group_by and key_by:
// strings as they are, numbers in their shortest form (3, 2.5), booleans
// as true and false, null as "null", anything else as its JSON.
func keyText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	}
	if f, _, ok := number(v); ok {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// uniqKey tells values apart for uniq_by: 1 and 1.0 are one value, 1 and
// "1" two.
func uniqKey(v any) string {
	if s, ok := v.(string); ok {
		return "s" + s
	}
	return "v" + keyText(v)
}

func (s *elemStep) sortBy(elems, vals []any) ([]any, error) {
	idx := make([]int, len(elems))
	for i := range idx {
		idx[i] = i
	}
	var bad error
	nums := make([]float64, len(vals))
	strs := make([]string, len(vals))
	kind := ""
	for i, v := range vals {
		k := ""
		if f, _, ok := number(v); ok {
			nums[i], k = f, "number"
		} else if str, ok := v.(string); ok {
			strs[i], k = str, "string"
		} else {
			return nil, s.stop("by %q: want a number or a string, got %T for element %d", s.src, v, i)
		}
		if kind == "" {
			kind = k
		} else if k != kind && bad == nil {
			bad = s.stop("by %q: cannot order a %s and a %s (element %d)", s.src, kind, k, i)
		}
	}
	if bad != nil {
		return nil, bad
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		var r int
		if kind == "number" {
			r = cmp.Compare(nums[a], nums[b])
		} else {
			r = cmp.Compare(strs[a], strs[b])
		}
		if s.desc {
			r = -r
		}
		return r
	})
	out := make([]any, len(idx))
	for i, j := range idx {
		out[i] = elems[j]
	}
	return out, nil
}

// sumBy sums numbers: an int when all are integers, else a float64.
func (s *elemStep) sumBy(vals []any) (any, error) {
	var fsum float64
	var isum int64
	allInt := true
	for i, v := range vals {
		f, isInt, ok := number(v)
		if !ok {
			return nil, s.stop("by %q: want a number, got %T for element %d", s.src, v, i)
		}
		fsum += f
		if isInt && allInt {
			isum += int64(f)
		} else {
			allInt = false
		}
	}
	if allInt {
		return int(isum), nil
	}
	return fsum, nil
}

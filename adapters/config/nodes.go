package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v4"
)

// srcFile is one loaded YAML file.
type srcFile struct {
	name  string
	src   []byte
	root  *yaml.Node // the top-level mapping (nil when the file is empty)
	lines []string
	// via holds the nodes reached through an alias (copies, see resolve)
	// and where that alias was used.
	via map[*yaml.Node]*aliasUse
}

// sink collects the errors of a load.
type sink struct {
	errs Errors
}

func (s *sink) add(e *Error) { s.errs = append(s.errs, e) }

// at reports a problem at node n of file f; for a node reached through
// an alias, at the alias (see [srcFile.place]).
func (s *sink) at(f *srcFile, n *yaml.Node, format string, args ...any) {
	e := nodeError(f.name, n, format, args...)
	if n != nil {
		var note string
		e.Line, e.Column, note = f.place(n, n.Line, n.Column)
		e.Msg += note
	}
	s.add(e)
}

// atPos reports a problem at an explicit position.
func (s *sink) atPos(f *srcFile, line, col int, cause error, format string, args ...any) {
	s.add(&Error{File: f.name, Line: line, Column: col, Msg: fmt.Sprintf(format, args...), Err: cause})
}

// atIn reports a problem at line and col of the file, inside the text of
// node n: at the alias when n was reached through one.
func (s *sink) atIn(f *srcFile, n *yaml.Node, line, col int, cause error, format string, args ...any) {
	line, col, note := f.place(n, line, col)
	s.atPos(f, line, col, cause, format+"%s", append(args, note)...)
}

// atPosOf reports a problem at p.
func (s *sink) atPosOf(p pos, cause error, format string, args ...any) {
	s.atPos(p.file, p.line, p.col, cause, format+"%s", append(args, p.note)...)
}

// maxAliasDepth bounds alias chains (an alias of an alias ...).
const maxAliasDepth = 64

// deref follows aliases to the node they name. It forgets where the alias
// was used: walks that report problems use [srcFile.deref] instead.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxAliasDepth; i++ {
		n = n.Alias
	}
	return n
}

// aliasUse is where the value of an anchor was reached from: the alias
// written in the file (the outermost one, for an alias inside an anchored
// value) and the anchor holding the value.
type aliasUse struct {
	at     *yaml.Node
	anchor string
}

// resolve follows the aliases from n, which is reached through use (nil:
// written where it is read), and returns the node they name and how it
// was reached.
func resolve(n *yaml.Node, use *aliasUse) (*yaml.Node, *aliasUse) {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxAliasDepth; i++ {
		at := n
		if use != nil {
			at = use.at
		}
		n = n.Alias
		if n != nil {
			use = &aliasUse{at: at, anchor: n.Anchor}
		}
	}
	return n, use
}

// deref follows aliases to the node they name, like the function deref,
// but a node reached through an alias is returned as a copy that
// remembers the alias, and so are the nodes read under it with child: a
// problem found in an anchored value is reported where the alias is used,
// once for each use.
func (f *srcFile) deref(n *yaml.Node) *yaml.Node {
	if n == nil || n.Kind != yaml.AliasNode {
		return n
	}
	return f.remember(resolve(n, nil))
}

// child returns the i-th child of n, dereferenced in n's context.
func (f *srcFile) child(n *yaml.Node, i int) *yaml.Node {
	return f.remember(resolve(n.Content[i], f.via[n]))
}

// remember returns n, or, when it was reached through an alias, a copy of
// n that is recorded with the alias.
func (f *srcFile) remember(n *yaml.Node, use *aliasUse) *yaml.Node {
	if n == nil || use == nil || n.Kind == yaml.AliasNode {
		return n
	}
	c := *n
	if f.via == nil {
		f.via = map[*yaml.Node]*aliasUse{}
	}
	f.via[&c] = use
	return &c
}

// place returns where to report a problem at line and col inside node n:
// that position, or for a node reached through an alias, the alias, with a
// note saying where in the anchored value the problem is.
func (f *srcFile) place(n *yaml.Node, line, col int) (int, int, string) {
	return placeVia(f.via[n], line, col)
}

func placeVia(use *aliasUse, line, col int) (int, int, string) {
	if use == nil {
		return line, col, ""
	}
	return use.at.Line, use.at.Column, fmt.Sprintf(" (in anchor &%s, at %d:%d)", use.anchor, line, col)
}

// describe names the kind of a node for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!int":
			return "the number " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		return strconv.Quote(v)
	case yaml.AliasNode:
		return "an alias nested too deeply"
	}
	return "a document"
}

// field is one entry of a mapping.
type field struct {
	key *yaml.Node // the key's node, for positions
	val *yaml.Node // dereferenced value
}

// fields is the checked content of a mapping node.
type fields struct {
	order   []string
	m       map[string]field
	unknown int // keys reported as unknown
}

func (fs *fields) has(name string) bool {
	_, ok := fs.m[name]
	return ok
}

func (fs *fields) get(name string) (field, bool) {
	f, ok := fs.m[name]
	return f, ok
}

// mapping checks that n is a mapping whose keys are unique strings among
// allowed (nil: any key) and returns its entries. Problems are reported;
// ok is false only when n is not a mapping at all.
func (s *sink) mapping(f *srcFile, n *yaml.Node, what string, allowed []string) (*fields, bool) {
	n = f.deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		s.at(f, n, "%s: expected a mapping, got %s", what, describe(n))
		return nil, false
	}
	fs := &fields{m: map[string]field{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := f.child(n, i), f.child(n, i+1)
		if k == nil || k.Kind != yaml.ScalarNode {
			s.at(f, k, "%s: keys must be strings, got %s", what, describe(k))
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			s.at(f, k, "%s: merge keys (<<) are not supported: write the entries out", what)
			continue
		}
		if prev, dup := fs.m[k.Value]; dup {
			s.at(f, k, "%s: duplicate key %q (first at line %d)", what, k.Value, prev.key.Line)
			continue
		}
		if allowed != nil && !slices.Contains(allowed, k.Value) {
			s.at(f, k, "%s: unknown key %q: expected %s%s", what, k.Value, oneOf(allowed), suggest(k.Value, allowed))
			fs.unknown++
			continue
		}
		fs.m[k.Value] = field{key: k, val: v}
		fs.order = append(fs.order, k.Value)
	}
	return fs, true
}

// oneOf lists choices: "a", "a or b", "one of a, b, c".
func oneOf(choices []string) string {
	switch len(choices) {
	case 0:
		return "nothing"
	case 1:
		return choices[0]
	case 2:
		return choices[0] + " or " + choices[1]
	}
	return "one of " + strings.Join(choices, ", ")
}

// suggest returns ` (did you mean "x"?)` for the closest choice to s, or "".
func suggest(s string, choices []string) string {
	best, bestD := "", 3
	ls := strings.ToLower(s)
	for _, c := range choices {
		lc := strings.ToLower(c)
		d := editDistance(ls, lc)
		// On a tie the choice sharing the longer prefix wins: "htp" is
		// "http", not "ftp".
		if d < len(c) && (d < bestD || d == bestD && best != "" && commonPrefix(ls, lc) > commonPrefix(ls, strings.ToLower(best))) {
			best, bestD = c, d
		}
	}
	// A choice the text begins with (or that begins with the text) beats
	// a match two edits away: "stopped" means stop rather than dropped.
	if (best == "" || bestD >= 2) && len(s) >= 3 {
		for _, c := range choices {
			lc := strings.ToLower(c)
			if len(c) >= 3 && (strings.HasPrefix(ls, lc) || strings.HasPrefix(lc, ls)) {
				return fmt.Sprintf(" (did you mean %q?)", c)
			}
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// commonPrefix is the length of the longest common prefix of a and b.
func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// editDistance is the Levenshtein distance of a and b (bytes), capped work
// for long inputs.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// scalar checks that n is a non-null scalar and returns its text.
func (s *sink) scalar(f *srcFile, n *yaml.Node, what string) (string, bool) {
	n = f.deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		s.at(f, n, "%s: expected a value, got %s", what, describe(n))
		return "", false
	}
	return n.Value, true
}

// str checks that n is a string scalar (numbers and booleans are accepted
// as their text).
func (s *sink) str(f *srcFile, n *yaml.Node, what string) (string, bool) {
	n = f.deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		s.at(f, n, "%s: expected a string, got %s", what, describe(n))
		return "", false
	}
	return n.Value, true
}

// name checks a scalar used as a name: non-empty, no surrounding spaces.
func (s *sink) name(f *srcFile, n *yaml.Node, what string) (string, bool) {
	v, ok := s.str(f, n, what)
	if !ok {
		return "", false
	}
	if v == "" || strings.TrimSpace(v) != v {
		s.at(f, n, "%s: expected a name, got %q", what, v)
		return "", false
	}
	return v, true
}

// integer checks that n is an integer scalar within [lo, hi].
func (s *sink) integer(f *srcFile, n *yaml.Node, what string, lo, hi int) (int, bool) {
	n = f.deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		s.at(f, n, "%s: expected an integer, got %s", what, describe(n))
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if err != nil || v < int64(lo) || v > int64(hi) {
		s.at(f, n, "%s: expected an integer from %d to %d, got %s", what, lo, hi, n.Value)
		return 0, false
	}
	return int(v), true
}

// number checks that n is a number scalar within [lo, hi].
func (s *sink) number(f *srcFile, n *yaml.Node, what string, lo, hi float64) (float64, bool) {
	n = f.deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
		s.at(f, n, "%s: expected a number, got %s", what, describe(n))
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
	if err != nil || math.IsNaN(v) || v < lo || v > hi {
		s.at(f, n, "%s: expected a number from %g to %g, got %s", what, lo, hi, n.Value)
		return 0, false
	}
	return v, true
}

// boolean checks that n is a boolean scalar.
func (s *sink) boolean(f *srcFile, n *yaml.Node, what string) (bool, bool) {
	n = f.deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		s.at(f, n, "%s: expected true or false, got %s", what, describe(n))
		return false, false
	}
	return strings.EqualFold(n.Value, "true"), true
}

// duration checks that n is a positive Go duration such as 250ms or 2s.
func (s *sink) duration(f *srcFile, n *yaml.Node, what string) (time.Duration, bool) {
	n = f.deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		s.at(f, n, "%s: expected a duration such as 250ms or 2s, got %s", what, describe(n))
		return 0, false
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		hint := ""
		if _, nerr := strconv.ParseFloat(n.Value, 64); nerr == nil {
			hint = " (a number needs a unit: ms, s, m, h)"
		}
		s.at(f, n, "%s: expected a duration such as 250ms or 2s, got %q%s", what, n.Value, hint)
		return 0, false
	}
	if d <= 0 {
		s.at(f, n, "%s: expected a positive duration, got %s", what, n.Value)
		return 0, false
	}
	return d, true
}

// seq checks that n is a list and returns its items (dereferenced).
func (s *sink) seq(f *srcFile, n *yaml.Node, what string) ([]*yaml.Node, bool) {
	n = f.deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		s.at(f, n, "%s: expected a list, got %s", what, describe(n))
		return nil, false
	}
	out := make([]*yaml.Node, len(n.Content))
	for i := range n.Content {
		out[i] = f.child(n, i)
	}
	return out, true
}

// maxValueNodes bounds the nodes one value may expand to through aliases,
// so a small file cannot expand into a huge value.
const maxValueNodes = 100_000

// value converts a node to the plain value JSON decoding would give:
// map[string]any, []any, float64, string, bool or nil.
func (s *sink) value(f *srcFile, n *yaml.Node, what string) (any, bool) {
	budget := maxValueNodes
	v, err := toValue(n, f.via[n], &budget, 0)
	if err != nil {
		e := nodeError(f.name, err.n, "%s: %s", what, err.msg)
		if err.n != nil {
			var note string
			e.Line, e.Column, note = placeVia(err.use, err.n.Line, err.n.Column)
			e.Msg += note
		}
		s.add(e)
		return nil, false
	}
	return v, true
}

// valueError is a problem converting a node, reached through use.
type valueError struct {
	n   *yaml.Node
	use *aliasUse
	msg string
}

// toValue converts n, reached through use. It follows aliases without
// copying nodes (see srcFile.deref): values may be large.
func toValue(n *yaml.Node, use *aliasUse, budget *int, depth int) (any, *valueError) {
	n, use = resolve(n, use)
	*budget--
	if *budget < 0 || depth > 200 {
		return nil, &valueError{n, use, "value too large or nested too deeply (aliases expand too far?)"}
	}
	if n == nil {
		return nil, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, kuse := resolve(n.Content[i], use)
			if k == nil || k.Kind != yaml.ScalarNode {
				return nil, &valueError{k, kuse, "keys must be strings, got " + describe(k)}
			}
			if _, dup := m[k.Value]; dup {
				return nil, &valueError{k, kuse, fmt.Sprintf("duplicate key %q", k.Value)}
			}
			v, err := toValue(n.Content[i+1], use, budget, depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := toValue(c, use, budget, depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, nil
		case "!!bool":
			return strings.EqualFold(n.Value, "true"), nil
		case "!!int", "!!float":
			var x float64
			if err := n.Decode(&x); err != nil {
				return nil, &valueError{n, use, fmt.Sprintf("bad number %q", n.Value)}
			}
			if math.IsInf(x, 0) || math.IsNaN(x) {
				return nil, &valueError{n, use, fmt.Sprintf("%s is not a JSON number", n.Value)}
			}
			return x, nil
		}
		return n.Value, nil
	}
	return nil, &valueError{n, use, "alias nested too deeply"}
}

package serve

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/svcflow/svcflow/adapters/config"
	yaml "go.yaml.in/yaml/v4"
)

// PlanVersion is the version of the plan format this package writes and
// reads.
const PlanVersion = 1

// Plan is a change of a running server's configuration, as `flowrun
// plan` writes it (JSON) and the admin API's POST /apply takes it: the
// fingerprint of the configuration it was made against (Base), the new
// configuration (its files and overrides), and the changes between the
// two, each classified safe or destructive. The server applies a plan
// only while it runs the configuration Base names, and recomputes the
// changes itself: Changes is for people to review.
type Plan struct {
	Version     int      `json:"version"`
	Base        string   `json:"base_fingerprint"`
	Fingerprint string   `json:"fingerprint"` // of Config
	Server      string   `json:"server,omitempty"`
	Config      Files    `json:"config"`
	Changes     []Change `json:"changes"`
}

// Files are a configuration's files and its overrides (flowrun's --set,
// config.WithSet). A file's Name places its relative paths (stores,
// ${file:...}): flowrun plan writes absolute names.
type Files struct {
	Files []File   `json:"files"`
	Sets  []string `json:"sets,omitempty"`
}

// File is one configuration file, its name and content.
type File struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// Sources returns the files as config.Sources.
func (f Files) Sources() []config.Source {
	out := make([]config.Source, 0, len(f.Files))
	for _, x := range f.Files {
		out = append(out, config.Source{Name: x.Name, Data: []byte(x.Content)})
	}
	return out
}

// FilesOf returns the files and overrides cfg was loaded from.
func FilesOf(cfg *config.Config) Files {
	var f Files
	for _, s := range cfg.Sources() {
		f.Files = append(f.Files, File{Name: s.Name, Content: string(s.Data)})
	}
	f.Sets = cfg.Sets()
	return f
}

// RunningConfig is what GET /config of the admin API answers: the
// configuration a server runs, its normalized form (see
// config.Normalized) and its fingerprint.
type RunningConfig struct {
	Fingerprint string                       `json:"fingerprint"`
	Sections    map[string]map[string]string `json:"sections"`
	Config      Files                        `json:"config"`
}

// ChangeKind says whether an entry was added, removed or changed.
type ChangeKind string

// Kinds of change.
const (
	Add    ChangeKind = "add"
	Remove ChangeKind = "remove"
	Modify ChangeKind = "change"
)

// Class is the risk of a change: safe ones may be applied to a running
// server as they are; destructive ones only when asked
// (--allow-destructive).
type Class string

// Classes of change.
const (
	Safe        Class = "safe"
	Destructive Class = "destructive"
)

// Change is one difference between two configurations: an entry of a
// section (a channel, a flow, a service, a provider, a production
// component, a var) added, removed or changed.
type Change struct {
	Kind   ChangeKind `json:"kind"`
	What   string     `json:"what"` // channel, flow, service, provider, production component, var, ...
	Name   string     `json:"name"`
	Detail string     `json:"detail,omitempty"`
	Class  Class      `json:"class"`
}

// String is one line for a person: "safe: change channel intake: flow: orders -> orders_v2".
func (c Change) String() string {
	s := fmt.Sprintf("%s: %s %s", c.Class, c.Kind, c.What)
	if c.Name != "" {
		s += " " + c.Name
	}
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// whatOf names the entries of a section.
var whatOf = map[string]string{
	"channels":   "channel",
	"flows":      "flow",
	"services":   "service",
	"providers":  "provider",
	"vars":       "var",
	"production": "production component",
}

// implementationKeys are the keys of an entry whose change changes what
// implements it (destructive): a channel's flow, its sources and store;
// a component's kind and the flow or service behind it.
var implementationKeys = map[string][]string{
	"channels":   {"flow", "from", "store"},
	"services":   {"actions"},
	"providers":  {},
	"production": {"kind", "flow", "from", "store"},
}

// Diff returns the changes from base to next, by section (in name
// order) and entry name. Adding an entry is safe; removing one is
// destructive (but tests); changing one is safe (settings, targets, a
// flow's steps, a var) unless it changes what implements the entry: a
// channel's or a production component's flow, sources (a route removed or
// moved: any source present before and not after) or store, a production
// component's kind, a provider's component, a bus service's actions.
func Diff(base, next config.Normalized) []Change {
	var out []Change
	sections := slices.Sorted(maps.Keys(base.Sections))
	for sec := range next.Sections {
		if _, ok := base.Sections[sec]; !ok {
			sections = append(sections, sec)
		}
	}
	slices.Sort(sections)
	for _, sec := range sections {
		what := cmp.Or(whatOf[sec], sec)
		a, b := base.Sections[sec], next.Sections[sec]
		names := slices.Sorted(maps.Keys(a))
		for n := range b {
			if _, ok := a[n]; !ok {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		for _, name := range names {
			old, inOld := a[name]
			neu, inNew := b[name]
			switch {
			case !inOld:
				out = append(out, Change{Kind: Add, What: what, Name: name, Class: Safe})
			case !inNew:
				cl := Destructive
				if sec == "tests" {
					cl = Safe
				}
				out = append(out, Change{Kind: Remove, What: what, Name: name, Class: cl, Detail: removeDetail(sec)})
			case old != neu:
				detail, destructive := entryDiff(sec, old, neu)
				cl := Safe
				if destructive {
					cl = Destructive
				}
				out = append(out, Change{Kind: Modify, What: what, Name: name, Class: cl, Detail: detail})
			}
		}
	}
	return out
}

func removeDetail(sec string) string {
	switch sec {
	case "channels":
		return "its sources stop taking messages (its routes are removed); messages in flight finish"
	case "tests":
		return ""
	}
	return "whatever uses it stops working"
}

// entryDiff describes the change of one entry and tells whether it is
// destructive.
func entryDiff(sec, old, neu string) (string, bool) {
	om, nm := mappingOf(old), mappingOf(neu)
	impl := implementationKeys[sec]
	if om == nil || nm == nil {
		// Not mappings (a var, a flow written as a list, a provider
		// written {component: spec}): the whole value changed.
		return "value: " + short(old) + " -> " + short(neu), sec == "providers" && providerKind(old) != providerKind(neu)
	}
	if sec == "providers" {
		if providerKind(old) != providerKind(neu) {
			return "component: " + providerKind(old) + " -> " + providerKind(neu), true
		}
	}
	var parts []string
	destructive := false
	keys := slices.Clone(om.order)
	for _, k := range nm.order {
		if _, ok := om.m[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		ov, inOld := om.m[k]
		nv, inNew := nm.m[k]
		if inOld && inNew && ov == nv {
			continue
		}
		isImpl := slices.Contains(impl, k)
		switch {
		case k == "steps" && inOld && inNew:
			parts = append(parts, stepsDiff(ov, nv))
		case sec == "channels" && k == "from":
			d, gone := sourcesDiff(ov, nv)
			parts = append(parts, "from: "+d)
			destructive = destructive || gone
		case !inOld:
			parts = append(parts, k+" added: "+short(nv))
		case !inNew:
			parts = append(parts, k+" removed (was "+short(ov)+")")
			destructive = destructive || isImpl
		default:
			parts = append(parts, k+": "+short(ov)+" -> "+short(nv))
			destructive = destructive || isImpl
		}
	}
	return strings.Join(parts, "; "), destructive
}

// sourcesDiff compares a channel's from: values (one {kind: spec} or a
// list of them): a source present before and not after (removed, or
// changed in any way: a route moved, a subscription changed) makes the
// change destructive; only added sources is safe.
func sourcesDiff(old, neu string) (string, bool) {
	a, b := sourceList(old), sourceList(neu)
	var removed, added []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			removed = append(removed, s)
		}
	}
	for _, s := range b {
		if !slices.Contains(a, s) {
			added = append(added, s)
		}
	}
	var parts []string
	if len(removed) > 0 {
		parts = append(parts, "source removed or changed: "+strings.Join(mapShort(removed), ", "))
	}
	if len(added) > 0 {
		parts = append(parts, "source added: "+strings.Join(mapShort(added), ", "))
	}
	return strings.Join(parts, "; "), len(removed) > 0
}

// stepsDiff describes the change of a steps: list, step by step
// (numbered from 1).
func stepsDiff(old, neu string) string {
	a, b := sourceList(old), sourceList(neu)
	var parts []string
	for i := range max(len(a), len(b)) {
		switch {
		case i >= len(a):
			parts = append(parts, fmt.Sprintf("step %d added: %s", i+1, short(b[i])))
		case i >= len(b):
			parts = append(parts, fmt.Sprintf("step %d removed (was %s)", i+1, short(a[i])))
		case a[i] != b[i]:
			parts = append(parts, fmt.Sprintf("step %d: %s -> %s", i+1, short(a[i]), short(b[i])))
		}
	}
	if len(parts) > 3 {
		parts = append(parts[:3], fmt.Sprintf("and %d more", len(parts)-3))
	}
	return "steps: " + strings.Join(parts, "; ")
}

func mapShort(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = short(x)
	}
	return out
}

// sourceList returns the canonical YAML of each source of a from: value.
func sourceList(text string) []string {
	var doc yaml.Node
	if yaml.Load([]byte(text), &doc) != nil || len(doc.Content) == 0 {
		return []string{text}
	}
	n := doc.Content[0]
	if n.Kind != yaml.SequenceNode {
		return []string{text}
	}
	var out []string
	for _, c := range n.Content {
		b, err := yaml.Dump(c)
		if err != nil {
			continue
		}
		out = append(out, strings.TrimSuffix(string(b), "\n"))
	}
	return out
}

// providerKind returns the component of a provider entry ({cache: ...}:
// cache).
func providerKind(text string) string {
	m := mappingOf(text)
	if m == nil || len(m.order) == 0 {
		return short(text)
	}
	return m.order[0]
}

type mapping struct {
	order []string
	m     map[string]string
}

// mappingOf reads a canonical YAML mapping into its keys (in order) and
// their values' canonical YAML; nil when text is not a mapping.
func mappingOf(text string) *mapping {
	var doc yaml.Node
	if yaml.Load([]byte(text), &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	n := doc.Content[0]
	if n.Kind != yaml.MappingNode {
		return nil
	}
	out := &mapping{m: map[string]string{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		b, err := yaml.Dump(n.Content[i+1])
		if err != nil {
			continue
		}
		k := n.Content[i].Value
		out.order = append(out.order, k)
		out.m[k] = strings.TrimSuffix(string(b), "\n")
	}
	return out
}

// short is a value on one line (YAML's flow style), cut to 80
// characters.
func short(s string) string {
	var doc yaml.Node
	if yaml.Load([]byte(s), &doc) == nil && len(doc.Content) > 0 {
		var flowStyle func(n *yaml.Node)
		flowStyle = func(n *yaml.Node) {
			if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
				n.Style = yaml.FlowStyle
			}
			for _, c := range n.Content {
				flowStyle(c)
			}
		}
		flowStyle(doc.Content[0])
		if b, err := yaml.Dump(doc.Content[0]); err == nil {
			s = string(b)
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// NewPlan returns the plan that changes the configuration running (as
// GET /config answers it) into next.
func NewPlan(running RunningConfig, next Files) (*Plan, error) {
	n, err := config.Normalize(next.Sources(), next.Sets...)
	if err != nil {
		return nil, err
	}
	base := config.Normalized{Sections: running.Sections}
	return &Plan{Version: PlanVersion, Base: running.Fingerprint, Fingerprint: n.Fingerprint(), Config: next, Changes: Diff(base, n)}, nil
}

// Destructive returns the destructive changes of the plan.
func (p *Plan) Destructive() []Change {
	var out []Change
	for _, c := range p.Changes {
		if c.Class == Destructive {
			out = append(out, c)
		}
	}
	return out
}

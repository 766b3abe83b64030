package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"

	yaml "go.yaml.in/yaml/v4"
)

// Normalized is a configuration reduced to what it declares, for
// comparing two configurations (a running server's and a new one, see
// `flowrun plan`): each top-level section (flows, channels, services,
// providers, vars, ...) maps the names of its entries to their YAML in
// one canonical form: comments and quoting styles dropped, aliases
// expanded, the --set overrides applied, keys in the order written. A
// section whose value is not a mapping of named entries (version, tests)
// has one entry named "".
//
// The text is the files' text before ${...} references are read: a
// change of an environment variable or of a ${file:...} secret is not a
// change of the configuration (and GET /config shows no secret read so).
type Normalized struct {
	Sections map[string]map[string]string `json:"sections"`
}

// maxNormalNodes bounds the nodes of a normalized configuration: aliases
// expanded cannot blow it up.
const maxNormalNodes = 1_000_000

// ErrTooLarge is wrapped by the error of [Normalize] for a configuration
// whose aliases expand beyond a million nodes.
var ErrTooLarge = errors.New("configuration too large once its aliases are expanded")

// Normalize returns the normalized form of the files srcs with the
// overrides sets (see [WithSet]) applied. Files that do not parse are an
// error ([Errors], at file:line:col); nothing else is checked: load the
// files for that.
func Normalize(srcs []Source, sets ...string) (Normalized, error) {
	l := &loader{cfg: &Config{}}
	for _, s := range srcs {
		if f := l.parseFile(s); f != nil {
			l.cfg.files = append(l.cfg.files, f)
		}
	}
	l.applySets(sets)
	if len(l.errs) > 0 {
		return Normalized{}, l.errs
	}
	n := Normalized{Sections: map[string]map[string]string{}}
	budget := maxNormalNodes
	add := func(section, name string, v *yaml.Node) error {
		text, err := canonical(v, &budget)
		if err != nil {
			return fmt.Errorf("%s %q: %w", section, name, err)
		}
		m := n.Sections[section]
		if m == nil {
			m = map[string]string{}
			n.Sections[section] = m
		}
		if _, dup := m[name]; !dup { // the first file's wins, as loading reports the others
			m[name] = text
		}
		return nil
	}
	for _, f := range l.cfg.files {
		root, _ := resolve(f.root, nil)
		if root == nil || root.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(root.Content); i += 2 {
			section := root.Content[i].Value
			v, _ := resolve(root.Content[i+1], nil)
			if v == nil || v.Kind != yaml.MappingNode || section == "version" {
				if err := add(section, "", v); err != nil {
					return Normalized{}, err
				}
				continue
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				name, val := v.Content[j].Value, v.Content[j+1]
				if err := add(section, name, val); err != nil {
					return Normalized{}, err
				}
			}
		}
	}
	return n, nil
}

// canonical returns the YAML of a copy of n in the canonical form.
func canonical(n *yaml.Node, budget *int) (string, error) {
	if n == nil {
		return "", nil
	}
	c, err := canonicalNode(n, budget, 0)
	if err != nil {
		return "", err
	}
	out, err := yaml.Dump(c)
	if err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(out, []byte("\n"))), nil
}

func canonicalNode(n *yaml.Node, budget *int, depth int) (*yaml.Node, error) {
	n, _ = resolve(n, nil)
	*budget--
	if n == nil || *budget < 0 || depth > 10_000 {
		if n == nil {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
		}
		return nil, ErrTooLarge
	}
	c := &yaml.Node{Kind: n.Kind, Tag: n.Tag, Value: n.Value}
	if n.Kind == yaml.ScalarNode && n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		c.Style = yaml.DoubleQuotedStyle // one form for a text however it was written
	}
	if n.Kind == yaml.DocumentNode {
		c.Kind = yaml.DocumentNode
	}
	for _, k := range n.Content {
		kc, err := canonicalNode(k, budget, depth+1)
		if err != nil {
			return nil, err
		}
		c.Content = append(c.Content, kc)
	}
	return c, nil
}

// Fingerprint is "sha256:" and the hex SHA-256 of the normalized
// configuration: two configurations with the same fingerprint declare
// the same thing.
func (n Normalized) Fingerprint() string {
	h := sha256.New()
	for _, sec := range slices.Sorted(maps.Keys(n.Sections)) {
		entries := n.Sections[sec]
		for _, name := range slices.Sorted(maps.Keys(entries)) {
			fmt.Fprintf(h, "%d:%s%d:%s%d:%s", len(sec), sec, len(name), name, len(entries[name]), entries[name])
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Calls returns the flows the named flow's steps call (call: NAME, at
// any depth), and the flows those call, sorted, the flow itself not
// included.
func (n Normalized) Calls(flow string) []string {
	seen := map[string]bool{flow: true}
	var out []string
	todo := []string{flow}
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		text, ok := n.Sections["flows"][name]
		if !ok {
			continue
		}
		var doc yaml.Node
		if yaml.Load([]byte(text), &doc) != nil {
			continue
		}
		var walk func(*yaml.Node)
		walk = func(x *yaml.Node) {
			if x.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(x.Content); i += 2 {
					if k, v := x.Content[i], x.Content[i+1]; k.Value == "call" && v.Kind == yaml.ScalarNode && !seen[v.Value] {
						seen[v.Value] = true
						out = append(out, v.Value)
						todo = append(todo, v.Value)
					}
				}
			}
			for _, c := range x.Content {
				walk(c)
			}
		}
		walk(&doc)
	}
	slices.Sort(out)
	return out
}

// Sources returns the files the configuration was loaded from, as read
// (before ${...} references were read).
func (c *Config) Sources() []Source {
	out := make([]Source, 0, len(c.files))
	for _, f := range c.files {
		out = append(out, Source{Name: f.name, Data: bytes.Clone(f.src)})
	}
	return out
}

// Sets returns the overrides the configuration was loaded with
// ([WithSet]).
func (c *Config) Sets() []string { return slices.Clone(c.sets) }

// Normalized returns the normalized form of the configuration: its files
// as read, with its overrides applied (see [Normalize]).
func (c *Config) Normalized() (Normalized, error) {
	return Normalize(c.Sources(), c.sets...)
}

// LoadLike loads the files srcs with the overrides sets as c was
// loaded: with its registry, its components, its environment lookup
// (WithLookupEnv) and its data folder (WithDataDir). It is how a running
// server loads the configuration a plan brings.
func (c *Config) LoadLike(srcs []Source, sets ...string) (*Config, error) {
	opts := []Option{WithRegistry(c.reg), WithComponents(c.comps), WithDataDir(c.dataDir), WithSet(sets...)}
	if c.lookupEnv != nil {
		opts = append(opts, WithLookupEnv(c.lookupEnv))
	}
	return LoadSources(srcs, opts...)
}

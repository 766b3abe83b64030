package config

import (
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v4"
)

// applySets applies the path=value overrides of WithSet to the parsed
// files, before anything is read from them.
func (l *loader) applySets(sets []string) {
	for _, s := range sets {
		path, value, ok := strings.Cut(s, "=")
		if !ok || path == "" {
			l.add(&Error{File: "--set", Msg: "expected path=value, got " + strconv.Quote(s)})
			continue
		}
		var doc yaml.Node
		var val *yaml.Node
		if strings.TrimSpace(value) == "" {
			val = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
		} else if err := safeYAML([]byte(value), &doc); err != nil || len(doc.Content) == 0 {
			l.add(&Error{File: "--set", Msg: "bad YAML value in " + strconv.Quote(s), Err: err})
			continue
		} else {
			val = doc.Content[0]
		}
		applied := false
		for _, f := range l.cfg.files {
			if setPath(f.root, strings.Split(path, "."), val, false) {
				applied = true
				break
			}
		}
		// No file has the path's parent: create the missing mappings in
		// the first file (a misspelt key is then reported as unknown).
		if !applied && len(l.cfg.files) > 0 {
			applied = setPath(l.cfg.files[0].root, strings.Split(path, "."), val, true)
		}
		if !applied {
			l.add(&Error{File: "--set", Msg: strconv.Quote(path) + ": no loaded file has this path"})
		}
	}
}

// setPath replaces the node at path under n with val, or adds the last
// key to a mapping; with create, missing mappings on the way are added.
// It reports whether val was placed.
func setPath(n *yaml.Node, path []string, val *yaml.Node, create bool) bool {
	n = deref(n)
	if n == nil || len(path) == 0 {
		return false
	}
	seg, rest := path[0], path[1:]
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := deref(n.Content[i]); k != nil && k.Value == seg {
				if len(rest) == 0 {
					place(val, n.Content[i+1])
					n.Content[i+1] = val
					return true
				}
				return setPath(n.Content[i+1], rest, val, create)
			}
		}
		if len(rest) == 0 || create {
			key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: seg}
			place(key, n)
			child := val
			if len(rest) > 0 {
				child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
			}
			place(child, n)
			n.Content = append(n.Content, key, child)
			return len(rest) == 0 || setPath(child, rest, val, create)
		}
	case yaml.SequenceNode:
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 || i >= len(n.Content) {
			return false
		}
		if len(rest) == 0 {
			place(val, n.Content[i])
			n.Content[i] = val
			return true
		}
		return setPath(n.Content[i], rest, val, create)
	}
	return false
}

// place gives an override's nodes the position of the node it replaces,
// so problems in it are reported where the original value was.
func place(n, at *yaml.Node) {
	if n == nil || at == nil {
		return
	}
	n.Line, n.Column = at.Line, at.Column
	for _, c := range n.Content {
		place(c, at)
	}
}

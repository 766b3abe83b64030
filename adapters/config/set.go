package config

import (
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v4"
)

// applySets applies the path=value overrides of WithSet to the parsed
// files, before anything is read from them.
func (l *loader) applySets(sets []string) {
	for i, s := range sets {
		path, value, ok := strings.Cut(s, "=")
		if !ok || path == "" {
			l.add(&Error{File: "--set", Msg: "expected path=value, got " + strconv.Quote(s)})
			continue
		}
		line := setLine(i)
		var doc yaml.Node
		var val *yaml.Node
		if strings.TrimSpace(value) == "" {
			val = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
		} else if err := safeYAML([]byte(value), &doc); err != nil || len(doc.Content) == 0 {
			l.add(&Error{File: "--set " + s, Msg: "bad YAML value", Err: err})
			continue
		} else {
			val = doc.Content[0]
		}
		mark(val, line)
		applied := false
		for _, f := range l.cfg.files {
			if setPath(f.root, strings.Split(path, "."), val, false, line) {
				applied = true
				break
			}
		}
		// No file has the path's parent: create the missing mappings in
		// the first file (a misspelt key is then reported as unknown).
		if !applied && len(l.cfg.files) > 0 {
			applied = setPath(l.cfg.files[0].root, strings.Split(path, "."), val, true, line)
		}
		if !applied {
			l.add(&Error{File: "--set " + s, Msg: strconv.Quote(path) + ": no loaded file has this path"})
		}
	}
}

// setPath replaces the node at path under n with val, or adds the last
// key to a mapping; with create, missing mappings on the way are added.
// It reports whether val was placed.
func setPath(n *yaml.Node, path []string, val *yaml.Node, create bool, line int) bool {
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
					n.Content[i+1] = val
					return true
				}
				return setPath(n.Content[i+1], rest, val, create, line)
			}
		}
		if len(rest) == 0 || create {
			key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: seg, Line: line, Column: 1}
			child := val
			if len(rest) > 0 {
				child = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: line, Column: 1}
			}
			n.Content = append(n.Content, key, child)
			return len(rest) == 0 || setPath(child, rest, val, create, line)
		}
	case yaml.SequenceNode:
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 || i >= len(n.Content) {
			return false
		}
		if len(rest) == 0 {
			n.Content[i] = val
			return true
		}
		return setPath(n.Content[i], rest, val, create, line)
	}
	return false
}

// The nodes of a --set value keep their own positions, moved to lines
// past the end of any file: line setLine(i) is the first line of the i-th
// --set value. setErrors gives a problem found there to the flag.
const (
	setLineBase   = 1 << 28
	setLineStride = 1 << 12
)

func setLine(i int) int { return setLineBase + i*setLineStride }

// mark moves the positions of the nodes of a --set value to its lines.
func mark(n *yaml.Node, line int) {
	if n == nil {
		return
	}
	n.Line += line - 1
	for _, c := range n.Content {
		mark(c, line)
	}
}

// setErrors reports the problems found in --set values at the flag that
// gave them ("--set flows.f.retry.max_attempts=x: ..."), not at a file
// position.
func (l *loader) setErrors(sets []string) Errors {
	for _, e := range l.errs {
		if e.Line < setLineBase {
			continue
		}
		i := (e.Line - setLineBase) / setLineStride
		if i < len(sets) {
			e.File = "--set " + sets[i]
		} else {
			e.File = "--set"
		}
		e.Line, e.Column = 0, 0
		if k := strings.Index(e.Msg, " (in anchor &"); k >= 0 {
			e.Msg = e.Msg[:k]
		}
	}
	return l.errs
}

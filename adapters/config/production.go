package config

import (
	"fmt"
	"slices"

	yaml "go.yaml.in/yaml/v4"

	"github.com/svcflow/svcflow/flow"
)

// parseProduction keeps the entries of a file's production: section (one
// per component), unread, for package adapters/production.
func (l *loader) parseProduction(f *srcFile, fs *fields) {
	fd, ok := fs.get("production")
	if !ok {
		return
	}
	ps, ok := l.mapping(f, fd.val, "production", nil)
	if !ok {
		return
	}
	for _, name := range ps.order {
		e := ps.m[name]
		l.cfg.production = append(l.cfg.production, Section{File: f.name, Name: name, section: "components", file: f, key: e.key, node: e.val, comps: l.cfg.comps, tpl: l.tpl})
	}
}

// Production returns the entries of the production sections, one per
// component, unread and in file order: the production (package
// adapters/production) reads them, as the channel adapters read
// [Config.Channels].
func (c *Config) Production() []Section { return slices.Clone(c.production) }

// DecodeAt decodes the value at path of the entry, which d (from
// [Section.Decode]) read, into spec, as Decode does: a part of an entry
// whose type is known only once the rest is read (the settings of a
// component, decoded into the spec of the Go service that implements
// it). An absent value decodes as an empty mapping (defaults apply,
// required keys are reported at the entry).
func (s Section) DecodeAt(d *Decoded, path string, spec any) (*Decoded, error) {
	if s.file == nil || d == nil {
		return nil, fmt.Errorf("config: section %q was not loaded", s.Name)
	}
	n, ok := d.at[path]
	if !ok {
		n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		if d.root != nil {
			n.Line, n.Column = d.root.Line, d.root.Column
		}
	}
	return decodeSpec(s.file, n, s.what()+": "+path, spec, s.comps, s.tpl)
}

// Use returns the service a `use: name` step gets, with args as its
// `with:` arguments (a factory's; a ready service takes none): what a
// production component implemented by a registered Go service runs. The
// caller owns it: it calls its Init and Close (a ready service with a
// lifecycle is shared by reference, as between flows).
func (r *Registry) Use(name string, args map[string]any) (flow.Service, error) {
	reg, ok := r.lookup(name)
	if !ok {
		return nil, fmt.Errorf("unknown service %q%s", name, suggest(name, r.names()))
	}
	if reg.factory == nil {
		if len(args) > 0 {
			return nil, fmt.Errorf("service %q takes no settings (it is not a factory: register one with RegisterFactory)", name)
		}
		return reg.owner(name), nil
	}
	return safeFactory(reg.factory, name, Args{m: args})
}

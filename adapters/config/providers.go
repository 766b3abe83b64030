package config

import (
	"errors"
	"reflect"
	"strconv"

	yaml "go.yaml.in/yaml/v4"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/provide"
)

// providerDef is a provider of the providers: section.
type providerDef struct {
	name string
	at   *yaml.Node
	typ  reflect.Type
}

// parseProviders reads a providers: section: each entry is a provider
// component ({cache: {backend: sqlite}}) whose value is provided under
// the entry's name, and also as the unnamed value of its type when no
// other provider of the configuration has that type.
func (l *loader) parseProviders(f *srcFile, n *yaml.Node) {
	ps, ok := l.mapping(f, n, "providers", nil)
	if !ok {
		return
	}
	for _, name := range ps.order {
		p := ps.m[name]
		what := "provider " + strconv.Quote(name)
		if prev, dup := l.providers[name]; dup {
			l.at(f, p.key, "%s: declared twice (first at line %d)", what, prev.at.Line)
			continue
		}
		d := &decoder{f: f, comps: l.cfg.comps, tpl: l.tpl, out: newDecoded(f, p.val)}
		ref, ok := d.ref(p.val, what, "", component.KindProvider)
		l.errs = append(l.errs, d.errs...)
		if !ok {
			continue
		}
		v, err := ref.Build(component.Env{Name: name, DataDir: l.dataDir})
		if err != nil {
			// Field errors name the spec's fields; the spec sits under the
			// component's name.
			fields, others := component.FieldErrors(err)
			for _, fe := range fields {
				e := d.out.Errorf(ref.Component.Name+"."+fe.Field, "%s: %s: %s", what, ref.Component.Name, fieldError(fe))
				e.Err = fe
				l.add(e)
			}
			if len(others) > 0 {
				for _, e := range d.out.Error(what+": "+ref.Component.Name, errors.Join(others...)) {
					l.add(e)
				}
			}
			continue
		}
		def, ok := v.(*provide.Definition)
		if !ok {
			l.at(f, p.val, "%s: component %s made a %T, not a provider definition (provide.Define)", what, ref.Component.Name, v)
			continue
		}
		if err := l.cfg.providers.Add(def, provide.Named(name)); err != nil {
			l.at(f, p.key, "%s: %v", what, err)
			continue
		}
		if l.providers == nil {
			l.providers = map[string]providerDef{}
		}
		l.providers[name] = providerDef{name: name, at: p.key, typ: def.Type()}
	}
}

// aliasProviders makes each provider that is the only one of its type the
// unnamed provider of that type.
func (l *loader) aliasProviders() {
	count := map[reflect.Type]int{}
	for _, p := range l.providers {
		count[p.typ]++
	}
	for _, p := range l.providers {
		if count[p.typ] == 1 {
			_ = l.cfg.providers.Alias(p.typ, p.name, "") // cannot fail: the name is registered, "" is not
		}
	}
}

// Providers returns the container of the configuration's providers:
// section, whose values the flows' Func steps receive (see
// flow.Builder.Provide). Whoever runs the flows closes it after them
// (provide.Container.Close): serve does when it stops.
func (c *Config) Providers() *provide.Container { return c.providers }

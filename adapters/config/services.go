package config

import "slices"

// parseServices keeps the entries of a file's services: section, unread,
// for the bus (package adapters/bus reads them).
func (l *loader) parseServices(f *srcFile, fs *fields) {
	fd, ok := fs.get("services")
	if !ok {
		return
	}
	ss, ok := l.mapping(f, fd.val, "services", nil)
	if !ok {
		return
	}
	for _, name := range ss.order {
		e := ss.m[name]
		l.cfg.services = append(l.cfg.services, Section{File: f.name, Name: name, section: "services", file: f, key: e.key, node: e.val, comps: l.cfg.comps, tpl: l.tpl})
	}
}

// Services returns the entries of the services sections, unread: the bus
// (package adapters/bus) reads them, as the channel adapters read
// [Config.Channels].
func (c *Config) Services() []Section { return slices.Clone(c.services) }

// parseBus keeps a file's bus: section, unread, for the bus.
func (l *loader) parseBus(f *srcFile, fs *fields) {
	fd, ok := fs.get("bus")
	if !ok {
		return
	}
	l.cfg.bus = append(l.cfg.bus, Section{File: f.name, Name: "bus", section: "bus", file: f, key: fd.key, node: fd.val, comps: l.cfg.comps, tpl: l.tpl})
}

// Bus returns the bus: sections of the files (one per file that has one),
// unread: the bus (package adapters/bus) reads them, its transport
// between processes among them.
func (c *Config) Bus() []Section { return slices.Clone(c.bus) }

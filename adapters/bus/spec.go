package bus

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// Spec is one service as declared under `services:` in a configuration
// file. Each action names a flow of the configuration; the service runs
// an instance of its own of each.
//
//	services:
//	  com:
//	    internal: true                 # never stops; starts first
//	    actions: {Process: to_hub}     # action -> flow
//	  sensor:
//	    actions: {Process: reading, StateUpdate: on_state}
//	    from: {cron: "@every 10s"}     # sources feeding source_action (default Process)
//	  emailhandler:
//	    actions: {Process: send_email, SendEmail: send_email}
//	    mailbox: 100                   # capacity (default 256)
//	    when_full: block               # or fail
//	    store: sqlite:data/bus.db      # a durable mailbox (default: in memory)
//	    restart: {initial: 100ms, max: 30s, max_attempts: 10}
type Spec struct {
	// Name is the service's name (its key under services:).
	Name string `yaml:"-"`
	// Actions maps action names to flow names.
	Actions map[string]string `yaml:"actions" spec:"required" doc:"action -> the flow that runs it (Process by convention, StateUpdate for state updates)"`
	// Internal services never stop.
	Internal bool `yaml:"internal" doc:"an internal service: starts first, never stops, keeps running when the state disables custom services"`
	// Mailbox is the mailbox's capacity.
	Mailbox int `yaml:"mailbox" default:"256" doc:"how many messages wait in the service's mailbox (at least 1)"`
	// WhenFull is block or fail.
	WhenFull string `yaml:"when_full" default:"block" enum:"block,fail" doc:"what a submit to a full mailbox does: wait for room, or fail at once"`
	// From are the sources feeding the service.
	From []component.Ref `yaml:"from" kind:"source" spec:"oneormany" doc:"sources whose messages are submitted to source_action: one {kind: spec} or a list"`
	// SourceAction is the action the sources submit to.
	SourceAction string `yaml:"source_action" default:"Process" doc:"the action the sources' messages go to"`
	// Store makes the mailbox durable.
	Store component.Ref `yaml:"store" kind:"store" doc:"records every message before delivery and recovers the owed ones at start (default: the mailbox is in memory)"`
	// Restart is the backoff between restarts after panics and Fatal
	// errors.
	Restart *errors.Policy `yaml:"restart" doc:"backoff between restarts after a panic or a Fatal error, and restarts per message (the keys of a flow's retry:)"`
}

// SpecType is the Go type of an entry under services:, for schemas.
var SpecType = reflect.TypeFor[Spec]()

// FileSpec is the bus: section of a configuration file: what the whole
// bus shares.
//
//	bus:
//	  transport:                       # services in other processes (a transport component)
//	    nats: {url: nats://127.0.0.1:4222}   # no url: the embedded server under --data
type FileSpec struct {
	// Transport carries messages to the services of other processes.
	Transport component.Ref `yaml:"transport" kind:"transport" doc:"carries submits and requests to the services other processes run, and theirs to this one's (nats: subjects svc.<destination>.<action>); none: every destination is a service of this process"`
}

// FileSpecType is the Go type of the bus: section, for schemas.
var FileSpecType = reflect.TypeFor[FileSpec]()

// ConfigOptions say how [FromConfig] builds a bus.
type ConfigOptions struct {
	// Options are the bus's options; FromConfig sets none of them but
	// Logger when it is nil.
	Options Options
	// Env is what the services' sources and stores are built with (the
	// logger, the data folder, the servers that sources share); its Name
	// is set to each service's.
	Env component.Env
	// Middleware is added to every action's flow (flow.Measure, say).
	Middleware []flow.Middleware
	// Open opens the stores; without it FromConfig only checks (it builds
	// every flow, source and store spec, and opens nothing).
	Open bool
	// NoSources leaves the sources out (`flowrun bus send`).
	NoSources bool
	// ClientOnly, when the configuration declares a transport (bus:
	// transport:), builds the bus without the declared services (they are
	// still checked): every message goes through the transport to the
	// processes that run them, and this bus takes none of theirs
	// (`flowrun bus send`). Without a transport it has no effect.
	ClientOnly bool
}

// Built is the bus of a configuration's services and the stores it opened
// for them, which its owner closes after stopping the bus.
type Built struct {
	// Bus holds the services, not started.
	Bus *Bus
	// Stores are the stores opened for durable mailboxes.
	Stores []store.Store
}

// Close closes the stores.
func (b *Built) Close() error {
	var errs []error
	for _, st := range b.Stores {
		errs = append(errs, st.Close())
	}
	b.Stores = nil
	return errors.Join(errs...)
}

// FromConfig builds a bus of the services declared under services: in
// cfg. Every problem is returned as config.Errors, each at file:line:col:
// an unknown key, an unknown flow (with the flows the configuration
// declares), a source or store spec its component refuses, a service
// declared twice. Without opts.Open it returns a nil *Built when cfg
// checks. Services naming the same store share one opened store.
func FromConfig(cfg *config.Config, opts ConfigOptions) (*Built, error) {
	if opts.Options.Logger == nil {
		opts.Options.Logger = opts.Env.Log()
	}
	if opts.Env.Logger == nil {
		opts.Env.Logger = opts.Options.Logger
	}
	var errs config.Errors
	type plan struct {
		def   Service
		open  component.StoreOpener
		store component.Ref
		at    *config.Decoded
	}
	var plans []plan
	seen := map[string]bool{}
	for _, sec := range cfg.Services() {
		if seen[sec.Name] {
			errs = append(errs, sec.Error("service %q declared twice", sec.Name))
			continue
		}
		seen[sec.Name] = true
		sp := Spec{Name: sec.Name}
		at, err := sec.Decode(&sp)
		var derrs config.Errors
		if err != nil && !errors.As(err, &derrs) {
			errs = append(errs, sec.Error("service %q: %v", sec.Name, err))
			continue
		}
		errs = append(errs, derrs...)
		if at == nil {
			continue
		}
		before := len(errs)
		if sec.Name == Broadcast || strings.ContainsAny(sec.Name, " \t\n.") {
			errs = append(errs, sec.Error("service %q: a name must be a word other than %q", sec.Name, Broadcast))
		}
		env := opts.Env
		env.Name = sec.Name
		def := Service{Name: sec.Name, Internal: sp.Internal, Mailbox: sp.Mailbox, SourceAction: sp.SourceAction,
			Restart: sp.Restart, Actions: Actions{}}
		if sp.Mailbox < 1 && at.Has("mailbox") {
			errs = append(errs, at.Errorf("mailbox", "service %q: mailbox: expected at least 1, got %d", sec.Name, sp.Mailbox))
		}
		if sp.WhenFull == "fail" {
			def.WhenFull = Fail
		}
		for _, action := range sortedStrings(sp.Actions) {
			name := sp.Actions[action]
			b, ok := cfg.Builder(name)
			if !ok {
				errs = append(errs, at.Errorf("actions."+action, "service %q: action %s: unknown flow %q: %s", sec.Name, action, name, flowList(cfg.Flows())))
				continue
			}
			f, err := b.Use(opts.Middleware...).Build()
			if err != nil {
				errs = append(errs, at.Errorf("actions."+action, "service %q: action %s: flow %q: %v", sec.Name, action, name, err))
				continue
			}
			def.Actions[action] = f
		}
		if len(sp.From) > 0 && sp.Actions[sp.SourceAction] == "" {
			errs = append(errs, at.Errorf("source_action", "service %q: source_action %q: %v: %s", sec.Name, sp.SourceAction, ErrUnknownAction, actionList(def.Actions)))
		}
		if !opts.NoSources {
			for i, ref := range sp.From {
				if ref.IsZero() {
					continue
				}
				src, err := ref.Source(env)
				if err != nil {
					errs = append(errs, at.Errorf(fmt.Sprintf("from.%d", i), "service %q: from: %s: %v", sec.Name, ref.Component.Name, err))
					continue
				}
				def.Sources = append(def.Sources, src)
			}
		}
		p := plan{def: def, at: at, store: sp.Store}
		if !sp.Store.IsZero() {
			open, err := sp.Store.Store(env)
			if err != nil {
				errs = append(errs, at.Errorf("store", "service %q: store: %s: %v", sec.Name, sp.Store.Component.Name, err))
			}
			p.open = open
		}
		if len(errs) == before {
			plans = append(plans, p)
		}
	}
	if t, terrs := transportOf(cfg, opts); len(terrs) > 0 {
		errs = append(errs, terrs...)
	} else if t != nil && opts.Options.Transport == nil {
		opts.Options.Transport = t
	}
	if len(errs) > 0 {
		return nil, errs.Sorted()
	}
	if !opts.Open {
		return nil, nil
	}
	built := &Built{Bus: New(opts.Options)}
	if opts.ClientOnly && opts.Options.Transport != nil {
		return built, nil
	}
	type opened struct {
		ref component.Ref
		st  store.Store
	}
	var stores []opened
	for _, p := range plans {
		if p.open != nil {
			for _, o := range stores {
				if o.ref.Component.Name == p.store.Component.Name && reflect.DeepEqual(o.ref.Spec, p.store.Spec) {
					p.def.Store = o.st
				}
			}
			if p.def.Store == nil {
				st, err := p.open()
				if err == nil {
					_, err = store.Probe(context.Background(), st)
					if err != nil {
						_ = st.Close()
					}
				}
				if err != nil {
					errs = append(errs, p.at.Errorf("store", "service %q: store %s: %v", p.def.Name, p.store.Component.Name, err))
					continue
				}
				stores = append(stores, opened{p.store, st})
				built.Stores = append(built.Stores, st)
				p.def.Store = st
			}
		}
		if err := built.Bus.Add(p.def); err != nil {
			errs = append(errs, p.at.Errorf("", "%v", err))
		}
	}
	if len(errs) > 0 {
		_ = built.Close()
		return nil, errs.Sorted()
	}
	return built, nil
}

func sortedStrings(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// flowList is "expected one of a, b" for an unknown flow.
func flowList(names []string) string {
	switch len(names) {
	case 0:
		return "the configuration declares none"
	case 1:
		return "expected " + names[0]
	}
	return "expected one of " + strings.Join(names, ", ")
}

// transportOf builds the transport the bus: sections declare (nil: none).
func transportOf(cfg *config.Config, opts ConfigOptions) (Transport, config.Errors) {
	var errs config.Errors
	var t Transport
	for _, sec := range cfg.Bus() {
		var fs FileSpec
		at, err := sec.Decode(&fs)
		var derrs config.Errors
		if err != nil && !errors.As(err, &derrs) {
			errs = append(errs, sec.Error("bus: %v", err))
			continue
		}
		errs = append(errs, derrs...)
		if at == nil || fs.Transport.IsZero() {
			continue
		}
		if t != nil {
			errs = append(errs, at.Errorf("transport", "bus: transport: declared in two files; declare it once"))
			continue
		}
		env := opts.Env
		env.Name = "bus"
		v, err := fs.Transport.Build(env)
		if err != nil {
			errs = append(errs, at.Errorf("transport", "bus: transport: %s: %v", fs.Transport.Component.Name, err))
			continue
		}
		tr, ok := v.(Transport)
		if !ok {
			errs = append(errs, at.Errorf("transport", "bus: transport: %s makes a %T, not a bus.Transport", fs.Transport.Component.Name, v))
			continue
		}
		t = tr
	}
	return t, errs
}

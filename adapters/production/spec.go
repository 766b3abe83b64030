package production

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// Spec is one component as declared under `production:` in a
// configuration file, keyed by its name. It is implemented by a flow of
// the configuration (flow:) or a registered Go service (use:).
//
//	production:
//	  Python.MyBusinessOperation:
//	    kind: operation
//	    use: my_operation              # a registered Go service
//	    settings: {greeting: hello}    # decoded into its spec
//	  Python.MyBusinessProcess:
//	    kind: process
//	    flow: my_process               # a flow of the configuration
//	    targets: {Operation: Python.MyBusinessOperation}
//	    pool: 4
//	  Python.MyBusinessService:
//	    kind: service
//	    flow: intake
//	    from: {http: {path: /send_message}}
//	    store: sqlite:data/intake.db
//	    durable: steps
//
// use: names a step component first (component.Step: its spec is the
// component's typed settings, decoded from settings: with file:line:col
// errors like any spec), then a Go service of the configuration's
// registry (config.Registry: settings are a factory's with: arguments; a
// ready service takes none). A flow component's runs find its settings
// under the "settings" key (declare it in the flow's input to read it).
type Spec struct {
	// Name is the component's name (its key under production:).
	Name string `yaml:"-"`
	// Kind is service, process or operation.
	Kind string `yaml:"kind" spec:"required" enum:"service,process,operation" doc:"business service (inbound), process or operation"`
	// Flow names the flow that implements the component.
	Flow string `yaml:"flow" doc:"the flow of the configuration that implements the component (or use:)"`
	// Use names the Go service that implements it.
	Use string `yaml:"use" doc:"the registered Go service that implements the component: a step component (settings: its spec) or a service of the registry (settings: a factory's with:)"`
	// Settings are the component's settings.
	Settings map[string]any `yaml:"settings" doc:"the component's settings: the spec of a use: step component, a factory's arguments, or a flow's settings key"`
	// Targets maps roles to component names.
	Targets map[string]string `yaml:"targets" doc:"role -> component name: a send to the role reaches that component"`
	// Pool bounds the requests running at once.
	Pool int `yaml:"pool" doc:"how many requests the component runs at once (0: no bound)"`
	// From are a business service's sources.
	From []component.Ref `yaml:"from" kind:"source" spec:"oneormany" doc:"a business service's sources: one {kind: spec} or a list"`
	// Store records a business service's messages.
	Store component.Ref `yaml:"store" kind:"store" doc:"where a business service's messages are recorded (default: flowrun serve's default store for it; in Go, a memory store)"`
	// Durable is "steps" for durable runs of a business service.
	Durable string `yaml:"durable" enum:"steps" doc:"steps: a business service's runs resume after their last completed step (its store must keep a journal)"`
}

// SpecType is the Go type of an entry under production:, for schemas.
var SpecType = reflect.TypeFor[Spec]()

// ConfigOptions say how [FromConfig] builds a production.
type ConfigOptions struct {
	// Name is the production's name (default "production").
	Name string
	// Options are the production's options; FromConfig sets Logger from
	// Env when it is nil.
	Options Options
	// Env is what the services' sources and stores and the use: step
	// components are built with (the logger, the data folder, the servers
	// that sources share); its Name is set to each component's.
	Env component.Env
	// Middleware is added to every flow that implements a component.
	Middleware []flow.Middleware
	// DefaultStore is the store URL of a business service that names none,
	// in which {name} is the component's name ("sqlite:data/{name}.db");
	// empty: a memory store of its own.
	DefaultStore string
	// Open opens the stores and makes the production; without it
	// FromConfig only checks (it builds every flow, service, source and
	// store spec, and opens nothing).
	Open bool
	// NoSources leaves the business services' sources out.
	NoSources bool
}

// Built is the production of a configuration and the stores it opened
// for it, which its owner closes after stopping the production.
type Built struct {
	// Production holds the components, not started.
	Production *Production
	// Stores are the stores opened for business services.
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

// FromConfig builds a production of the components declared under
// production: in cfg. Every problem is returned as config.Errors, each at
// file:line:col: an unknown key, a kind that is not service, process or
// operation, neither or both of flow and use, an unknown flow or service,
// settings its spec refuses, a target naming no process or operation,
// sources or a store on a component that is not a business service. It
// returns a nil *Built when cfg declares no production, or when it checks
// without opts.Open.
func FromConfig(cfg *config.Config, opts ConfigOptions) (*Built, error) {
	sections := cfg.Production()
	if len(sections) == 0 {
		return nil, nil
	}
	if opts.Options.Logger == nil {
		opts.Options.Logger = opts.Env.Log()
	}
	if opts.Env.Logger == nil {
		opts.Env.Logger = opts.Options.Logger
	}
	if opts.Name == "" {
		opts.Name = "production"
	}
	var errs config.Errors
	type plan struct {
		def   Component
		open  component.StoreOpener
		store component.Ref
		at    *config.Decoded
	}
	var plans []plan
	specs := map[string]Spec{}
	seen := map[string]bool{}
	for _, sec := range sections {
		if seen[sec.Name] {
			errs = append(errs, sec.Error("component %q declared twice", sec.Name))
			continue
		}
		seen[sec.Name] = true
		sp := Spec{Name: sec.Name}
		at, err := sec.Decode(&sp)
		var derrs config.Errors
		if err != nil && !errors.As(err, &derrs) {
			errs = append(errs, sec.Error("component %q: %v", sec.Name, err))
			continue
		}
		errs = append(errs, derrs...)
		if at == nil {
			continue
		}
		specs[sec.Name] = sp
		before := len(errs)
		kind, kerr := ParseKind(sp.Kind)
		if kerr != nil {
			continue // reported by Decode (enum)
		}
		if strings.ContainsAny(sec.Name, " \t\n") {
			errs = append(errs, sec.Error("component %q: a name is a word (dots allowed)", sec.Name))
		}
		env := opts.Env
		env.Name = sec.Name
		def := Component{Name: sec.Name, Kind: kind, Targets: sp.Targets, Pool: sp.Pool, Durable: sp.Durable == "steps"}
		if sp.Pool < 0 {
			errs = append(errs, at.Errorf("pool", "component %q: pool: expected 0 or more, got %d", sec.Name, sp.Pool))
		}
		switch {
		case sp.Flow == "" && sp.Use == "":
			errs = append(errs, at.Errorf("", "component %q: expected flow: (a flow of the configuration) or use: (a registered Go service)", sec.Name))
		case sp.Flow != "" && sp.Use != "":
			errs = append(errs, at.Errorf("use", "component %q: flow: and use: both given: a component has one implementation", sec.Name))
		case sp.Flow != "":
			b, ok := cfg.Builder(sp.Flow)
			if !ok {
				errs = append(errs, at.Errorf("flow", "component %q: unknown flow %q: %s", sec.Name, sp.Flow, listOf(cfg.Flows())))
				break
			}
			f, err := b.Use(opts.Middleware...).Build()
			if err != nil {
				errs = append(errs, at.Errorf("flow", "component %q: flow %q: %v", sec.Name, sp.Flow, err))
				break
			}
			def.Service = f
			if sp.Settings != nil {
				def.Settings = sp.Settings
			}
		default:
			svc, settings, uerrs := useService(cfg, sec, at, sp, env)
			errs = append(errs, uerrs...)
			def.Service, def.Settings = svc, settings
			if kind == Service && svc != nil && def.Durable {
				errs = append(errs, at.Errorf("durable", "component %q: durable: steps needs a flow: a use: service has no steps to resume", sec.Name))
			}
		}
		if kind != Service {
			for _, k := range []string{"from", "store", "durable"} {
				if at.Has(k) {
					errs = append(errs, at.Errorf(k, "component %q: %s: only a business service (kind: service) has one; processes and operations are reached by sends", sec.Name, k))
				}
			}
		}
		p := plan{def: def, at: at}
		if kind == Service {
			if !opts.NoSources {
				for i, ref := range sp.From {
					if ref.IsZero() {
						continue
					}
					src, err := ref.Source(env)
					if err != nil {
						errs = append(errs, at.Errorf(fmt.Sprintf("from.%d", i), "component %q: from: %s: %v", sec.Name, ref.Component.Name, err))
						continue
					}
					p.def.Sources = append(p.def.Sources, src)
				}
			}
			ref := sp.Store
			if ref.IsZero() && opts.DefaultStore != "" {
				r, err := cfg.Components().ParseURL(component.KindStore, strings.ReplaceAll(opts.DefaultStore, "{name}", sec.Name))
				if err != nil {
					errs = append(errs, at.Errorf("", "component %q: default store: %v", sec.Name, err))
				}
				ref = r
			}
			if !ref.IsZero() {
				open, err := ref.Store(env)
				if err != nil {
					errs = append(errs, at.Errorf("store", "component %q: store: %s: %v", sec.Name, ref.Component.Name, err))
				}
				p.open, p.store = open, ref
			}
		}
		if len(errs) == before {
			plans = append(plans, p)
		}
	}
	// Targets name processes and operations of the production.
	for _, p := range plans {
		for _, role := range slices.Sorted(maps.Keys(p.def.Targets)) {
			name := p.def.Targets[role]
			t, ok := specs[name]
			switch {
			case !ok:
				errs = append(errs, p.at.Errorf("targets."+role, "component %q: target %s: unknown component %q: %s", p.def.Name, role, name, listOf(targetNames(specs))))
			case t.Kind == "service":
				errs = append(errs, p.at.Errorf("targets."+role, "component %q: target %s: %q is a business service: %v", p.def.Name, role, name, ErrNotTarget))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs.Sorted()
	}
	if !opts.Open {
		return nil, nil
	}
	built := &Built{Production: New(opts.Name, opts.Options)}
	for _, p := range plans {
		if p.open != nil {
			st, err := p.open()
			if err == nil {
				if _, err = store.Probe(context.Background(), st); err != nil {
					_ = st.Close()
				}
			}
			if err != nil {
				errs = append(errs, p.at.Errorf("store", "component %q: store %s: %v", p.def.Name, p.store.Component.Name, err))
				continue
			}
			built.Stores = append(built.Stores, st)
			p.def.Store = st
			if _, ok := st.(store.Journal); p.def.Durable && !ok {
				errs = append(errs, p.at.Errorf("durable", "component %q: durable: steps: store %s keeps no journal of durable runs; use one that does, such as sqlite:, file: or memory:", p.def.Name, p.store.Component.Name))
				continue
			}
		}
		if err := built.Production.Add(p.def); err != nil {
			errs = append(errs, p.at.Errorf("", "%v", err))
		}
	}
	if len(errs) > 0 {
		_ = built.Close()
		return nil, errs.Sorted()
	}
	return built, nil
}

// useService builds the Go service a use: names, with its settings.
func useService(cfg *config.Config, sec config.Section, at *config.Decoded, sp Spec, env component.Env) (flow.Service, any, config.Errors) {
	if c, ok := cfg.Components().Lookup(component.KindStep, sp.Use); ok {
		spec := c.NewSpec()
		var errs config.Errors
		sd, err := sec.DecodeAt(at, "settings", spec)
		if err != nil {
			if !errors.As(err, &errs) {
				errs = config.Errors{at.Errorf("settings", "component %q: settings: %v", sec.Name, err)}
			}
			return nil, nil, errs
		}
		svc, err := c.BuildStep(env, spec)
		if err != nil {
			return nil, nil, sd.Error(fmt.Sprintf("component %q: use: %s: settings", sec.Name, sp.Use), err)
		}
		return svc, reflect.ValueOf(spec).Elem().Interface(), nil
	}
	svc, err := cfg.Registry().Use(sp.Use, sp.Settings)
	if err != nil {
		return nil, nil, config.Errors{at.Errorf("use", "component %q: use: %v", sec.Name, err)}
	}
	var settings any
	if sp.Settings != nil {
		settings = sp.Settings
	}
	return svc, settings, nil
}

// targetNames are the processes and operations, sorted.
func targetNames(specs map[string]Spec) []string {
	var out []string
	for name, sp := range specs {
		if sp.Kind != "service" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// listOf is "expected one of a, b" for an unknown name.
func listOf(names []string) string {
	switch len(names) {
	case 0:
		return "the configuration declares none"
	case 1:
		return "expected " + names[0]
	}
	return "expected one of " + strings.Join(names, ", ")
}

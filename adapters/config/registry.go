package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"sync"

	"github.com/svcflow/svcflow/adapters/component"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/provide"
)

// Registry holds the Go services YAML flows can use, registered by name
// and reached with `use: name`, the input types flows may declare, and
// what the step kinds of the component registry are built with: the
// logger of log steps, the client of http steps, and the restricted
// kinds that are enabled (shell). The step kinds themselves are step
// components (see [WithComponents]).
//
// Register services before loading; a Registry is safe for concurrent
// reads once loading starts.
type Registry struct {
	mu       sync.RWMutex
	services map[string]registered
	types    map[string]reflect.Type
	allowed  map[string]bool
	logger   *slog.Logger
	client   *http.Client
}

type registered struct {
	svc     flow.Service // a ready service (Register)
	shared  *shared      // its references, when it has a lifecycle
	factory Factory      // or a factory (RegisterFactory)
	doc     string
}

// owner returns the service of a new instance of a `use:` step named name
// of a ready service: the service itself, or, when it has a lifecycle, a
// new reference to it (see [Config.Builder]).
func (r registered) owner(name string) flow.Service {
	if r.shared == nil {
		return renamed(name, r.svc)
	}
	return newReference(name, r.shared, r.svc)
}

// shared is a ready service with a lifecycle and the count of its
// initialised references: its Init runs when the count leaves zero, its
// Close when the count returns to zero.
type shared struct {
	svc  flow.Service
	mu   sync.Mutex
	refs int
}

// reference is one owner's hold on a shared service: a step of one flow
// instance, under the step's name. It counts as initialised from its Init
// to its Close; a second Init or Close in a row does nothing.
type reference struct {
	name   string
	shared *shared
	svc    flow.Service // what runs: the shared service, or what its Prepare returned
	held   bool         // initialised; guarded by shared.mu
}

func (r *reference) Name() string { return r.name }

func (r *reference) Call(ctx context.Context, c *fc.Context) error { return r.svc.Call(ctx, c) }

func (r *reference) Contract() flow.Contract {
	if c, ok := r.svc.(flow.Contractor); ok {
		return c.Contract()
	}
	return flow.Contract{}
}

// Init initialises the shared service if no other reference holds it.
func (r *reference) Init(ctx context.Context) error {
	s := r.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.held {
		return nil
	}
	if s.refs == 0 {
		if in, ok := s.svc.(flow.Initializer); ok {
			if err := in.Init(ctx); err != nil {
				return err
			}
		}
	}
	s.refs++
	r.held = true
	return nil
}

// Close closes the shared service if no other reference holds it.
func (r *reference) Close(ctx context.Context) error {
	s := r.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	if !r.held {
		return nil
	}
	r.held = false
	s.refs--
	if s.refs > 0 {
		return nil
	}
	if cl, ok := s.svc.(flow.Closer); ok {
		return cl.Close(ctx)
	}
	return nil
}

// Prepare prepares the shared service for where the step sits, if it
// prepares itself: the reference then runs what Prepare returns.
func (r *reference) Prepare(known map[string]reflect.Type) (flow.Service, error) {
	p, ok := r.svc.(flow.Preparer)
	if !ok {
		return r, nil
	}
	ps, err := p.Prepare(known)
	if err != nil || ps == nil {
		return r, err
	}
	return newReference(r.name, r.shared, ps), nil
}

// Inject gives the shared service its provided values, if it takes any:
// the reference then runs the service Inject returns.
func (r *reference) Inject(c *provide.Container) (flow.Service, error) {
	in, ok := r.svc.(flow.Injectable)
	if !ok {
		return r, nil
	}
	is, err := in.Inject(c)
	if err != nil || is == nil {
		return r, err
	}
	return newReference(r.name, r.shared, is), nil
}

// Compensate undoes the step, if the shared service can.
func (r *compensating) Compensate(ctx context.Context, c *fc.Context, cause error) error {
	return r.svc.(flow.Compensator).Compensate(ctx, c, cause)
}

// compensating is a reference to a service that can compensate: only
// those are flow.Compensators, so a saga undoes nothing for the others.
type compensating struct{ *reference }

// newReference returns a reference to svc, a compensating one when svc
// can compensate.
func newReference(name string, sh *shared, svc flow.Service) flow.Service {
	r := &reference{name: name, shared: sh, svc: svc}
	if _, ok := svc.(flow.Compensator); ok {
		return &compensating{r}
	}
	return r
}

// Wait waits for the taps of a shared flow.
func (r *reference) Wait(ctx context.Context) error {
	if w, ok := r.svc.(interface{ Wait(context.Context) error }); ok {
		return w.Wait(ctx)
	}
	return nil
}

// Factory makes a configured service for one `use:` step from its `with:`
// arguments. name is the step's name, which the service should report; a
// service whose Name differs is renamed.
type Factory func(name string, args Args) (flow.Service, error)

// Args are the `with:` arguments of a `use:` step, as plain JSON-like
// values.
type Args struct {
	m map[string]any
}

// Map returns the arguments (nil when there are none).
func (a Args) Map() map[string]any { return maps.Clone(a.m) }

// Decode fills v (a pointer to a struct with json tags) from the arguments.
// Unknown arguments are an error, so typos are caught at load.
func (a Args) Decode(v any) error {
	data, err := json.Marshal(a.m)
	if err != nil {
		return fmt.Errorf("arguments: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("arguments: %w", err)
	}
	return nil
}

// RegistryOption configures a Registry.
type RegistryOption func(*Registry)

// Allow enables the restricted step kinds named (see
// component.Component.Restrict), such as shell, which runs commands on
// the host. They are off by default: a flow using one is a load error
// saying how to enable it.
func Allow(kinds ...string) RegistryOption {
	return func(r *Registry) {
		for _, k := range kinds {
			r.allowed[k] = true
		}
	}
}

// AllowShell enables the shell step kind, which runs commands on the host:
// Allow("shell"), which flowrun's --allow-shell flag gives.
func AllowShell() RegistryOption { return Allow("shell") }

// WithLogger sets the logger step components are built with (the log
// step's; default slog.Default()): their component.Env's Logger.
func WithLogger(l *slog.Logger) RegistryOption { return func(r *Registry) { r.logger = l } }

// WithHTTPClient sets the client of the http step (default: a client with
// no overall timeout; each step has its own): step components are built
// with an Env that provides it (component.Value[*http.Client]).
func WithHTTPClient(c *http.Client) RegistryOption { return func(r *Registry) { r.client = c } }

// NewRegistry returns a registry holding no services.
func NewRegistry(opts ...RegistryOption) *Registry {
	r := &Registry{services: map[string]registered{}, types: map[string]reflect.Type{}, allowed: map[string]bool{}}
	for name, t := range builtinTypes {
		r.types[name] = t
	}
	for _, o := range opts {
		o(r)
	}
	return r
}

// ShellAllowed reports whether the shell step kind is enabled.
func (r *Registry) ShellAllowed() bool { return r.Allowed("shell") }

// Allowed reports whether the restricted step kind named kind is enabled
// (see [Allow]).
func (r *Registry) Allowed(kind string) bool { return r.allowed[kind] }

// stepEnv is what step components are built with, but their names.
func (r *Registry) stepEnv() component.Env {
	env := component.Env{Logger: r.logger}
	if r.client != nil {
		env = env.WithValue(r.client)
	}
	return env
}

// Register adds a Go service under its own name, with a one-line doc for
// the catalog. Its contract (a flow.Func derives one from its types) takes
// part in the build checks of the YAML flows that use it. A name taken by
// a built-in or another service is an error.
//
// The service is used as it is by every flow that uses it, in every
// configuration loaded with r. If it has a lifecycle ([flow.Initializer]
// or [flow.Closer]), each of its `use:` steps in each flow instance holds
// a reference to it: its Init runs on the first Init of a reference, and
// its Close on the Close of the last initialised one (see
// [Config.Builder]). Register a factory instead for a service each flow
// instance should have its own of.
func (r *Registry) Register(svc flow.Service, doc string) error {
	if svc == nil || reflect.ValueOf(svc).Kind() == reflect.Pointer && reflect.ValueOf(svc).IsNil() {
		return fmt.Errorf("register: nil service")
	}
	reg := registered{svc: svc, doc: doc}
	_, initer := svc.(flow.Initializer)
	_, closer := svc.(flow.Closer)
	if initer || closer {
		reg.shared = &shared{svc: svc}
	}
	return r.add(svc.Name(), reg)
}

// RegisterFactory adds a configurable service: each `use: name` step calls
// f with its `with:` arguments when the configuration is loaded, to check
// them, and for each further instance of a flow holding the step (see
// [Config.Builder]); each instance owns the service f made for it.
func (r *Registry) RegisterFactory(name, doc string, f Factory) error {
	if f == nil {
		return fmt.Errorf("register %q: nil factory", name)
	}
	return r.add(name, registered{factory: f, doc: doc})
}

// MustRegister is Register that panics on error, for registrations at
// program start.
func (r *Registry) MustRegister(svc flow.Service, doc string) *Registry {
	if err := r.Register(svc, doc); err != nil {
		panic(err)
	}
	return r
}

func (r *Registry) add(name string, reg registered) error {
	if name == "" {
		return fmt.Errorf("register: empty service name")
	}
	if _, ok := component.Default().Lookup(component.KindStep, name); ok || slices.Contains(structuralKinds, name) {
		return fmt.Errorf("register %q: the name of a built-in step", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.services[name]; dup {
		return fmt.Errorf("register %q: already registered", name)
	}
	r.services[name] = reg
	return nil
}

// RegisterType names a Go type for the typed form of flow inputs
// (`input: [{name: items, type: order_items}]`), so a YAML input can be
// declared with the exact type a Go service needs. string, int, float,
// bool, list, map and any are predeclared.
func (r *Registry) RegisterType(name string, t reflect.Type) error {
	if name == "" || t == nil {
		return fmt.Errorf("register type: empty name or nil type")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.types[name]; dup {
		return fmt.Errorf("register type %q: already registered", name)
	}
	r.types[name] = t
	return nil
}

// builtinTypes are the predeclared input types.
var builtinTypes = map[string]reflect.Type{
	"string": reflect.TypeFor[string](),
	"int":    reflect.TypeFor[int](),
	"float":  reflect.TypeFor[float64](),
	"bool":   reflect.TypeFor[bool](),
	"list":   reflect.TypeFor[[]any](),
	"map":    reflect.TypeFor[map[string]any](),
	"any":    nil,
}

func (r *Registry) lookupType(name string) (reflect.Type, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	t, ok := r.types[name]
	return t, ok
}

func (r *Registry) typeNames() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.types))
}

func (r *Registry) lookup(name string) (registered, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.services[name]
	return s, ok
}

func (r *Registry) names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.services))
}

// ServiceInfo describes one entry of the catalog.
type ServiceInfo struct {
	Name    string
	Builtin bool   // a step kind of the YAML format rather than a `use:` service
	Doc     string // what it does
	// Fields describe the spec of a step kind that is a step component:
	// the keys its YAML value takes (see component.Field).
	Fields []component.Field
	// Needs and Provides are a registered service's contract (nil for
	// factories, whose contract depends on their arguments).
	Needs    []fc.KeyInfo
	Provides []fc.KeyInfo
	// Given are the provided values a registered service's input receives
	// (the providers: section, see flow.Builder.Provide).
	Given []flow.ProvidedField
	// Inputs and Outputs describe in words what a step reads and writes
	// when its contract depends on how a step configures it (call, a
	// factory).
	Inputs, Outputs string
	Example         string // a YAML step using it
	Disabled        string // why a step kind is off, if it is
}

// Services returns the catalog of the step kinds of [component.Default]
// and of the services of r: see [Registry.ServicesIn].
func (r *Registry) Services() []ServiceInfo { return r.ServicesIn(component.Default()) }

// ServicesIn returns the catalog: the step kinds, those of the step
// components of comps with the fields of their spec and call, sorted by
// name; then the services registered in r, sorted by name.
func (r *Registry) ServicesIn(comps *component.Registry) []ServiceInfo {
	var out []ServiceInfo
	for _, name := range slices.Sorted(slices.Values(append(comps.Names(component.KindStep), "call"))) {
		if name == "call" {
			out = append(out, callInfo)
			continue
		}
		c, _ := comps.Lookup(component.KindStep, name)
		si := ServiceInfo{Name: name, Builtin: true, Doc: c.Doc, Fields: c.Fields()}
		if c.Restricted != "" && !r.Allowed(name) {
			si.Disabled = "off unless enabled (flowrun --allow-" + name + ")"
		}
		out = append(out, si)
	}
	for _, name := range r.names() {
		reg, _ := r.lookup(name)
		si := ServiceInfo{Name: name, Doc: reg.doc, Example: "use: " + name}
		if reg.svc != nil {
			if c, ok := reg.svc.(flow.Contractor); ok {
				ct := c.Contract()
				si.Needs, si.Provides = ct.Needs, ct.Provides
			}
			if g := flow.ProvidedFields(reg.svc); len(g) > 0 {
				si.Given = g
			}
		} else {
			si.Example = "{use: " + name + ", with: {...}}"
			si.Inputs = "set by its `with:` arguments"
		}
		out = append(out, si)
	}
	return out
}

// callInfo is the catalog entry of call, which the loader knows itself.
var callInfo = ServiceInfo{
	Name:    "call",
	Builtin: true,
	Doc:     "run another flow of the configuration on this context",
	Inputs:  "the called flow's declared input",
	Outputs: "what the called flow provides on every path",
	Example: `call: price_order`,
}

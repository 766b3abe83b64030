package component

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/flow"
)

// Kind is what a component makes: a source, a store, a step, a sink or a
// provider.
type Kind string

// The kinds of component.
const (
	// KindSource makes a [channel.Source]: `from:` of a channel.
	KindSource Kind = "source"
	// KindStore makes a [store.Store] (through a [StoreOpener]): `store:`
	// of a channel.
	KindStore Kind = "store"
	// KindStep makes a [flow.Service]: a step of a YAML flow.
	KindStep Kind = "step"
	// KindSink makes a [channel.Sink]: where a channel sends its results.
	KindSink Kind = "sink"
	// KindProvider makes a value that services are given (a client, a
	// cache, a configuration).
	KindProvider Kind = "provider"
	// KindTransport makes a bus transport (a bus.Transport of package
	// adapters/bus, which this package cannot name): `bus: {transport:}`
	// carries the bus's messages between processes.
	KindTransport Kind = "transport"
)

// Kinds lists every kind, in the order catalogs show them.
var Kinds = []Kind{KindSource, KindStore, KindStep, KindSink, KindProvider, KindTransport}

// StoreOpener opens a store. A store component's constructor checks its
// spec and returns an opener, so that checking a configuration opens
// nothing; the store is opened when the channel that uses it is made.
type StoreOpener func() (store.Store, error)

// Component is a kind, a name, a typed spec and a constructor from spec to
// value. Make one with [Source], [Store], [Step], [Sink] or [Provider] and
// add it to a [Registry]. The zero Component is invalid: registering it is
// an error.
type Component struct {
	// Kind is what the component makes.
	Kind Kind
	// Name is how configurations name it (`http`, `sqlite`, `set`).
	Name string
	// Doc says in one line what it does, for catalogs.
	Doc string
	// Restricted is non-empty for a component that is off unless enabled
	// (see [Component.Restrict]): what makes it dangerous, in a few words.
	Restricted string

	spec  reflect.Type                         // the spec struct type
	build func(env Env, spec any) (any, error) // spec is a value of type spec
}

// SpecType returns the Go type of the component's spec, a struct.
func (c Component) SpecType() reflect.Type { return c.spec }

// NewSpec returns a pointer to a zero spec, for a decoder to fill.
func (c Component) NewSpec() any {
	if c.spec == nil {
		return nil
	}
	return reflect.New(c.spec).Interface()
}

// Fields describes the spec's fields (see [Field]).
func (c Component) Fields() []Field { return Fields(c.spec) }

// Build calls the constructor with spec, a value or pointer of the
// component's spec type. The result's type depends on the kind: a
// [channel.Source], a [StoreOpener], a [flow.Service], a [channel.Sink], a
// bus.Transport for a transport, or any value for a provider. A panic in the constructor is returned as an
// error.
func (c Component) Build(env Env, spec any) (v any, err error) {
	if c.build == nil {
		return nil, fmt.Errorf("component: %w", ErrInvalid)
	}
	sv := reflect.ValueOf(spec)
	if sv.Kind() == reflect.Pointer && sv.Type().Elem() == c.spec {
		if sv.IsNil() {
			return nil, fmt.Errorf("%s %s: nil spec: %w", c.Kind, c.Name, ErrInvalid)
		}
		sv = sv.Elem()
	}
	if !sv.IsValid() || sv.Type() != c.spec {
		return nil, fmt.Errorf("%s %s: spec of type %T, want %v: %w", c.Kind, c.Name, spec, c.spec, ErrInvalid)
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%s %s: constructor panicked: %v", c.Kind, c.Name, r)
		}
	}()
	v, err = c.build(env, sv.Interface())
	if err == nil && v == nil {
		err = fmt.Errorf("%s %s: constructor returned nothing", c.Kind, c.Name)
	}
	return v, err
}

// BuildStep is [Component.Build] for a step component: the service of one
// step, named env.Name.
func (c Component) BuildStep(env Env, spec any) (flow.Service, error) {
	if c.Kind != KindStep {
		return nil, fmt.Errorf("component %s %q is not a step: %w", c.Kind, c.Name, ErrInvalid)
	}
	v, err := c.Build(env, spec)
	if err != nil {
		return nil, err
	}
	return v.(flow.Service), nil
}

func newComponent[S, T any](kind Kind, name, doc string, build func(Env, S) (T, error)) Component {
	c := Component{Kind: kind, Name: name, Doc: doc, spec: reflect.TypeFor[S]()}
	if build != nil {
		c.build = func(env Env, spec any) (any, error) {
			v, err := build(env, spec.(S))
			if err != nil {
				return nil, err
			}
			if rv := reflect.ValueOf(v); !rv.IsValid() || (rv.Kind() == reflect.Pointer || rv.Kind() == reflect.Func || rv.Kind() == reflect.Interface) && rv.IsNil() {
				return nil, nil
			}
			return v, nil
		}
	}
	return c
}

// Source makes a source component: build checks the spec and returns a
// source that does nothing until the channel runs it.
func Source[S any](name, doc string, build func(env Env, spec S) (channel.Source, error)) Component {
	return newComponent(KindSource, name, doc, build)
}

// Store makes a store component: build checks the spec and returns an
// opener; nothing is opened or created until it is called.
func Store[S any](name, doc string, build func(env Env, spec S) (StoreOpener, error)) Component {
	return newComponent(KindStore, name, doc, build)
}

// Step makes a step component: build returns the service of one step,
// named env.Name.
func Step[S any](name, doc string, build func(env Env, spec S) (flow.Service, error)) Component {
	return newComponent(KindStep, name, doc, build)
}

// Sink makes a sink component.
func Sink[S any](name, doc string, build func(env Env, spec S) (channel.Sink, error)) Component {
	return newComponent(KindSink, name, doc, build)
}

// Transport makes a transport component: build checks the spec and
// returns a bus.Transport (package adapters/bus) that connects nothing
// until the bus starts it.
func Transport[S any](name, doc string, build func(env Env, spec S) (any, error)) Component {
	return newComponent(KindTransport, name, doc, build)
}

// Provider makes a provider component: build returns the provided value.
func Provider[S any](name, doc string, build func(env Env, spec S) (any, error)) Component {
	return newComponent(KindProvider, name, doc, build)
}

// Env is what a constructor is given besides its spec.
type Env struct {
	// Name is the name of what is being built: the channel of a source or
	// store, the step of a step (the service a step component makes
	// reports it as its Name).
	Name string
	// Logger is for the component's logs (never nil when built by serve;
	// use [Env.Log] to get a default).
	Logger *slog.Logger
	// DataDir is where components keep files by default (SQLite stores
	// go there as <channel>.db).
	DataDir string
	// Servers shares servers between components (one HTTP server behind
	// many routes). Nil: each [Env.Server] call makes its own.
	Servers *Servers
	// Existing asks a store to open only what exists (a tool that reads
	// stored messages): a store whose file or folder is missing fails
	// with an error wrapping [ErrNoStore] that names it, and creates
	// nothing.
	Existing bool

	values map[reflect.Type]any // see WithValue
}

// ResponseObserver is what whoever runs the channels (serve, for its
// metrics) provides to sources with [Env.WithValue] to be told of every
// response an HTTP source writes: the server's address as configured, the
// route ("POST /orders"; "" for a path no route serves) and the status
// code. Read it with Value[component.ResponseObserver](env).
type ResponseObserver func(server, route string, code int)

// Log returns Logger, or slog.Default() when it is nil.
func (e Env) Log() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}

// Server returns the server shared under key, made by mk on first use.
// key names the server's kind and address ("http 127.0.0.1:8080").
func (e Env) Server(key string, mk func() (Server, error)) (Server, error) {
	if e.Servers == nil {
		return mk()
	}
	return e.Servers.get(key, mk)
}

// Server is a listener that components share and that whoever runs the
// channels starts before their sources and stops after them: the HTTP
// server behind many routes.
type Server interface {
	// Listen binds the address without serving yet, so Addr is known.
	Listen() error
	// Addr returns the bound address ("" before Listen).
	Addr() string
	// Serve serves until ctx is canceled.
	Serve(ctx context.Context) error
	// Ready reports whether the server answers its routes.
	Ready() bool
	// WaitReady returns when Ready holds, or with ctx's error.
	WaitReady(ctx context.Context) error
}

// Servers is the set of servers the components of one configuration
// share. The zero value is ready to use; it is safe for concurrent use.
type Servers struct {
	mu sync.Mutex
	m  map[string]Server
}

func (s *Servers) get(key string, mk func() (Server, error)) (Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if srv, ok := s.m[key]; ok {
		return srv, nil
	}
	srv, err := mk()
	if err != nil {
		return nil, err
	}
	if s.m == nil {
		s.m = map[string]Server{}
	}
	s.m[key] = srv
	return srv, nil
}

// All returns the servers by key.
func (s *Servers) All() map[string]Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

// Keys returns the keys of the servers, sorted.
func (s *Servers) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.m))
}

// ErrInvalid is returned (wrapped) for a component that cannot be
// registered or built: no name, no constructor, a spec that is not a
// struct.
var ErrInvalid = fmt.Errorf("invalid component")

// ErrNoStore is wrapped by the error of a store opened with Env.Existing
// whose data does not exist.
var ErrNoStore = fmt.Errorf("no such store")

// ErrUnknown is returned (wrapped) when no component of a kind has a name.
var ErrUnknown = fmt.Errorf("unknown component")

// Registry holds components by kind and name. The zero value is empty and
// ready to use; a Registry is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	m  map[Kind]map[string]Component
}

// NewRegistry returns a registry holding the given components (see
// [Registry.Register]).
func NewRegistry(cs ...Component) (*Registry, error) {
	r := &Registry{}
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds c. A name already taken within c's kind, an empty name, an
// unknown kind, a nil constructor or a spec that is not a struct is an
// error.
func (r *Registry) Register(c Component) error {
	switch {
	case !slices.Contains(Kinds, c.Kind):
		return fmt.Errorf("register %q: kind %q: %w", c.Name, c.Kind, ErrInvalid)
	case c.Name == "" || strings.TrimSpace(c.Name) != c.Name || strings.ContainsAny(c.Name, ": \t\n"):
		return fmt.Errorf("register %s %q: a name must be a non-empty word: %w", c.Kind, c.Name, ErrInvalid)
	case c.build == nil:
		return fmt.Errorf("register %s %q: no constructor: %w", c.Kind, c.Name, ErrInvalid)
	case c.spec.Kind() != reflect.Struct:
		return fmt.Errorf("register %s %q: spec %v is not a struct: %w", c.Kind, c.Name, c.spec, ErrInvalid)
	}
	if err := checkSpec(c.spec); err != nil {
		return fmt.Errorf("register %s %q: %w", c.Kind, c.Name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[c.Kind][c.Name]; dup {
		return fmt.Errorf("register %s %q: already registered", c.Kind, c.Name)
	}
	if r.m == nil {
		r.m = map[Kind]map[string]Component{}
	}
	if r.m[c.Kind] == nil {
		r.m[c.Kind] = map[string]Component{}
	}
	r.m[c.Kind][c.Name] = c
	return nil
}

// MustRegister is Register that panics on error, for registration in an
// init function.
func (r *Registry) MustRegister(cs ...Component) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Lookup returns the component of kind named name.
func (r *Registry) Lookup(kind Kind, name string) (Component, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.m[kind][name]
	return c, ok
}

// Get is Lookup with an error for an unknown name that lists the known
// ones and wraps [ErrUnknown].
func (r *Registry) Get(kind Kind, name string) (Component, error) {
	if c, ok := r.Lookup(kind, name); ok {
		return c, nil
	}
	return Component{}, &UnknownError{Kind: kind, Name: name, Known: r.Names(kind)}
}

// Names returns the names of the components of kind, sorted.
func (r *Registry) Names(kind Kind) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.m[kind]))
}

// All returns every component, by kind (in the order of [Kinds]) then
// name.
func (r *Registry) All() []Component {
	var out []Component
	for _, k := range Kinds {
		for _, n := range r.Names(k) {
			c, _ := r.Lookup(k, n)
			out = append(out, c)
		}
	}
	return out
}

// UnknownError is returned by [Registry.Get] for a name no component of
// the kind has.
type UnknownError struct {
	Kind  Kind
	Name  string
	Known []string // the names that are registered, sorted
}

// Error implements error: `unknown source "htp": expected one of cron,
// files, http, poll`.
func (e *UnknownError) Error() string {
	known := "none is registered"
	switch len(e.Known) {
	case 0:
	case 1:
		known = "expected " + e.Known[0]
	default:
		known = "expected one of " + strings.Join(e.Known, ", ")
	}
	return fmt.Sprintf("unknown %s %q: %s", e.Kind, e.Name, known)
}

// Unwrap returns [ErrUnknown].
func (e *UnknownError) Unwrap() error { return ErrUnknown }

var defaultRegistry Registry

// Default returns the registry that packages register their components in
// from init functions (import a component's package for its side effect,
// as with database/sql drivers), and that configurations use unless told
// otherwise.
func Default() *Registry { return &defaultRegistry }

// Register adds components to the default registry and panics on error:
// call it from init functions.
func Register(cs ...Component) { defaultRegistry.MustRegister(cs...) }

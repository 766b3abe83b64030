package provide

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// ErrMissing is wrapped by the error for a type that no provider of the
// container provides.
var ErrMissing = errors.New("no provider")

// ErrCycle is wrapped by the error for a provider that depends on itself,
// directly or through others.
var ErrCycle = errors.New("dependency cycle")

// ErrScope is wrapped by the error for a singleton that depends on a
// per-run value, and for a per-run value used outside a run.
var ErrScope = errors.New("scope mismatch")

// ErrClosed is returned (wrapped) by a use of a closed container.
var ErrClosed = errors.New("container closed")

// Error is a problem with a provided type: missing, in a cycle, or in the
// wrong scope. Path is the chain of types that led to it, the first being
// the one asked for.
type Error struct {
	Path []string // "cache.Cache", "*main.Config" ...: who needs whom
	Err  error    // ErrMissing, ErrCycle, ErrScope, or a constructor's error
}

// Error implements error: `provided cache.Cache -> *main.Config: no provider`.
func (e *Error) Error() string {
	return "provided " + strings.Join(e.Path, " -> ") + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

type key struct {
	t    reflect.Type
	name string
}

func (k key) String() string {
	if k.name == "" {
		return k.t.String()
	}
	return fmt.Sprintf("%s (named %q)", k.t, k.name)
}

// Option configures a provider.
type Option func(*Definition)

// Named registers the provider under name besides its type: a field
// tagged `provide:"name"` receives it. Without Named a provider is the
// unnamed one of its type.
func Named(name string) Option { return func(d *Definition) { d.name = name } }

// PerRun makes the value per run: constructed at most once per run of a
// flow, on first use, and closed when the run ends.
func PerRun() Option { return func(d *Definition) { d.perRun = true } }

// Singleton makes the value shared by every run (the default):
// constructed once, on first use, closed by [Container.Close].
func Singleton() Option { return func(d *Definition) { d.perRun = false } }

// WithClose sets how a provided value is closed, instead of its own Close
// method. fn receives the value as its constructor returned it.
func WithClose[T any](fn func(ctx context.Context, v T) error) Option {
	return func(d *Definition) {
		d.close = func(ctx context.Context, v any) error {
			t, _ := v.(T)
			return fn(ctx, t)
		}
	}
}

// Definition is a provider not yet in a container: a type, an optional
// name, a scope and a constructor. Make one with [Define]; a component
// of kind provider returns one, which a configuration adds to its
// container under the name it gives it. A Definition is immutable.
type Definition struct {
	typ    reflect.Type
	name   string
	perRun bool
	deps   []reflect.Type                                     // parameters, context.Context excluded
	ctxAt  []int                                              // positions of context.Context parameters
	call   func(ctx context.Context, deps []any) (any, error) // the constructor
	close  func(ctx context.Context, v any) error
	owned  bool // the container closes the value (false for Value)
}

// Type returns the provided type.
func (d *Definition) Type() reflect.Type { return d.typ }

// Name returns the provider's name ("" for the unnamed one of its type).
func (d *Definition) Name() string { return d.name }

// PerRun reports whether the value is per run.
func (d *Definition) PerRun() bool { return d.perRun }

// Deps returns the types the constructor depends on, in parameter order.
func (d *Definition) Deps() []reflect.Type { return slices.Clone(d.deps) }

var (
	ctxType = reflect.TypeFor[context.Context]()
	errType = reflect.TypeFor[error]()
)

// Define makes the definition of a provider of T from ctor, a function
// returning T or (T, error) (a value assignable to T). Its parameters are
// what it depends on, provided by the container: each the unnamed
// provider of its type, except a context.Context, which is the context of
// the first use (without its cancellation, for a singleton). A ctor of
// another shape is an error.
func Define[T any](ctor any, opts ...Option) (*Definition, error) {
	t := reflect.TypeFor[T]()
	d := &Definition{typ: t, owned: true}
	for _, o := range opts {
		o(d)
	}
	switch fn := ctor.(type) {
	case nil:
		return nil, fmt.Errorf("provide %s: nil constructor", t)
	case func() (T, error):
		if fn == nil {
			return nil, fmt.Errorf("provide %s: nil constructor", t)
		}
		d.call = func(context.Context, []any) (any, error) { v, err := fn(); return v, err }
		return d, nil
	case func() T:
		if fn == nil {
			return nil, fmt.Errorf("provide %s: nil constructor", t)
		}
		d.call = func(context.Context, []any) (any, error) { return fn(), nil }
		return d, nil
	case func(context.Context) (T, error):
		if fn == nil {
			return nil, fmt.Errorf("provide %s: nil constructor", t)
		}
		d.ctxAt = []int{0}
		d.call = func(ctx context.Context, _ []any) (any, error) { v, err := fn(ctx); return v, err }
		return d, nil
	}
	fv := reflect.ValueOf(ctor)
	ft := fv.Type()
	if ft.Kind() != reflect.Func || fv.IsNil() {
		return nil, fmt.Errorf("provide %s: constructor of type %s: want a function returning %s or (%s, error)", t, ft, t, t)
	}
	if ft.IsVariadic() {
		return nil, fmt.Errorf("provide %s: constructor of type %s: variadic parameters are not supported", t, ft)
	}
	switch {
	case ft.NumOut() == 1 && ft.Out(0).AssignableTo(t):
	case ft.NumOut() == 2 && ft.Out(0).AssignableTo(t) && ft.Out(1) == errType:
	default:
		return nil, fmt.Errorf("provide %s: constructor of type %s: want a function returning %s or (%s, error)", t, ft, t, t)
	}
	n := ft.NumIn()
	for i := range n {
		if p := ft.In(i); p == ctxType {
			d.ctxAt = append(d.ctxAt, i)
		} else {
			d.deps = append(d.deps, p)
		}
	}
	withErr := ft.NumOut() == 2
	ctxAt := d.ctxAt
	d.call = func(ctx context.Context, deps []any) (any, error) {
		args := make([]reflect.Value, n)
		j := 0
		for i := range n {
			if slices.Contains(ctxAt, i) {
				args[i] = reflect.ValueOf(&ctx).Elem()
				continue
			}
			if deps[j] == nil {
				args[i] = reflect.Zero(ft.In(i))
			} else {
				args[i] = reflect.ValueOf(deps[j])
			}
			j++
		}
		out := fv.Call(args)
		if withErr && !out[1].IsNil() {
			return nil, out[1].Interface().(error)
		}
		return out[0].Interface(), nil
	}
	return d, nil
}

// Container holds providers by type and name. Register every provider
// before the flows that use it are built; a Container is safe for
// concurrent use.
type Container struct {
	mu      sync.Mutex
	entries map[key]*entry
	built   []*entry // singletons in construction order, for Close
	closed  bool
}

// entry is a provider in a container, with the singleton it made.
type entry struct {
	d    *Definition
	k    key
	c    *Container
	mu   sync.Mutex          // held while constructing the singleton
	inst atomic.Pointer[box] // the singleton, once constructed
	deps []*entry            // resolved by check; guarded by c.mu
}

type box struct{ v any }

// New returns an empty container.
func New() *Container { return &Container{entries: map[key]*entry{}} }

// Add adds a provider; opts apply over the definition's own (Named gives
// it the name a configuration chose). A second provider of the same type
// and name is an error.
func (c *Container) Add(d *Definition, opts ...Option) error {
	if d == nil || d.call == nil {
		return errors.New("provide: add: not a definition made by Define")
	}
	if len(opts) > 0 {
		cp := *d
		cp.deps, cp.ctxAt = slices.Clone(d.deps), slices.Clone(d.ctxAt)
		for _, o := range opts {
			o(&cp)
		}
		d = &cp
	}
	k := key{d.typ, d.name}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[key]*entry{}
	}
	if _, dup := c.entries[k]; dup {
		return fmt.Errorf("provide %s: already registered", k)
	}
	c.entries[k] = &entry{d: d, k: k, c: c}
	return nil
}

// Alias makes the provider of t named name reachable under the name
// alias too: both give the same value. A configuration that names its
// providers makes the only one of a type its unnamed one this way.
func (c *Container) Alias(t reflect.Type, name, alias string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key{t, name}]
	if !ok {
		return &Error{Path: []string{key{t, name}.String()}, Err: ErrMissing}
	}
	if _, dup := c.entries[key{t, alias}]; dup {
		return fmt.Errorf("provide %s: already registered", key{t, alias})
	}
	c.entries[key{t, alias}] = e
	return nil
}

// Types returns the types and names of the providers of c, sorted by
// type then name: for catalogs and tools.
func (c *Container) Types() []Provided {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Provided, 0, len(c.entries))
	for k, e := range c.entries {
		out = append(out, Provided{Type: k.t, Name: k.name, PerRun: e.d.perRun})
	}
	slices.SortFunc(out, func(a, b Provided) int {
		return strings.Compare(a.Type.String()+"\x00"+a.Name, b.Type.String()+"\x00"+b.Name)
	})
	return out
}

// Provided describes a provider of a container.
type Provided struct {
	Type   reflect.Type
	Name   string
	PerRun bool
}

// HasPerRun reports whether any provider of c is per run.
func (c *Container) HasPerRun() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.d.perRun {
			return true
		}
	}
	return false
}

// Register adds a provider of T made by ctor (see [Define]).
func Register[T any](c *Container, ctor any, opts ...Option) error {
	d, err := Define[T](ctor, opts...)
	if err != nil {
		return err
	}
	return c.Add(d)
}

// MustRegister is [Register] that panics on error, for setup code.
func MustRegister[T any](c *Container, ctor any, opts ...Option) {
	if err := Register[T](c, ctor, opts...); err != nil {
		panic(err)
	}
}

// Value adds a ready value of T as a singleton. The container does not
// close it (its owner does) unless [WithClose] is given.
func Value[T any](c *Container, v T, opts ...Option) error {
	d, err := Define[T](func() T { return v }, opts...)
	if err != nil {
		return err
	}
	d.owned = d.close != nil
	return c.Add(d)
}

// Check reports whether a value of type t (named name, "" for the
// unnamed provider) can be provided: its provider and every provider it
// depends on are registered, none depends on itself, and no singleton
// depends on a per-run value. The error is an [*Error].
func (c *Container) Check(t reflect.Type, name string) error {
	_, err := c.resolve(key{t, name})
	return err
}

func (c *Container) resolve(k key) (*entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.check(k, nil, false)
}

// check resolves k and its dependencies; path holds the entries being
// resolved (for cycles); single is set under a singleton.
func (c *Container) check(k key, path []*entry, single bool) (*entry, error) {
	names := func(last key) []string {
		out := make([]string, 0, len(path)+1)
		for _, e := range path {
			out = append(out, e.k.String())
		}
		return append(out, last.String())
	}
	e, ok := c.entries[k]
	if !ok {
		return nil, &Error{Path: names(k), Err: ErrMissing}
	}
	if slices.Contains(path, e) {
		return nil, &Error{Path: names(k), Err: ErrCycle}
	}
	if single && e.d.perRun {
		return nil, &Error{Path: names(k), Err: fmt.Errorf("%w: a singleton cannot depend on a per-run value", ErrScope)}
	}
	path = append(path, e)
	deps := make([]*entry, len(e.d.deps))
	for i, t := range e.d.deps {
		de, err := c.check(key{t, ""}, path, single || !e.d.perRun)
		if err != nil {
			return nil, err
		}
		deps[i] = de
	}
	e.deps = deps
	return e, nil
}

// Binding is a checked provider of one type and name, resolved once and
// used per run: what a flow holds for each provided field of a step.
type Binding struct{ e *entry }

// Bind checks the provider of t named name (see [Container.Check]) and
// returns it bound.
func (c *Container) Bind(t reflect.Type, name string) (*Binding, error) {
	e, err := c.resolve(key{t, name})
	if err != nil {
		return nil, err
	}
	return &Binding{e: e}, nil
}

// PerRun reports whether the bound value is per run.
func (b *Binding) PerRun() bool { return b.e.d.perRun }

// Type returns the bound type.
func (b *Binding) Type() reflect.Type { return b.e.k.t }

// Get returns the value, constructing it (and what it depends on) on
// first use: a singleton once for the container, a per-run value once
// for the run's [Scope] found in ctx (none: an error wrapping ErrScope).
func (b *Binding) Get(ctx context.Context) (any, error) {
	if bx := b.e.inst.Load(); bx != nil {
		return bx.v, nil
	}
	return b.e.get(ctx)
}

// Get returns the value of the provider of T named name ("" for the
// unnamed one) from c: the way code that is not a [flow.Func] reaches a
// provided value. Per-run values need the run's context.
func Get[T any](ctx context.Context, c *Container, name string) (T, error) {
	var zero T
	b, err := c.Bind(reflect.TypeFor[T](), name)
	if err != nil {
		return zero, err
	}
	v, err := b.Get(ctx)
	if err != nil {
		return zero, err
	}
	t, ok := v.(T)
	if !ok && v != nil {
		return zero, fmt.Errorf("provided %s: constructor returned %T", reflect.TypeFor[T](), v)
	}
	return t, nil
}

func (e *entry) get(ctx context.Context) (any, error) {
	if e.d.perRun {
		s := scopeOf(ctx)
		if s == nil {
			return nil, &Error{Path: []string{e.k.String()}, Err: fmt.Errorf("%w: a per-run value used outside a run", ErrScope)}
		}
		return s.get(ctx, e)
	}
	if bx := e.inst.Load(); bx != nil {
		return bx.v, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if bx := e.inst.Load(); bx != nil {
		return bx.v, nil
	}
	e.c.mu.Lock()
	closed := e.c.closed
	e.c.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("provided %s: %w", e.k, ErrClosed)
	}
	v, err := e.construct(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	e.inst.Store(&box{v})
	e.c.mu.Lock()
	e.c.built = append(e.c.built, e)
	e.c.mu.Unlock()
	return v, nil
}

// construct calls the constructor with the dependencies' values.
func (e *entry) construct(ctx context.Context) (v any, err error) {
	var deps []*entry
	if len(e.d.deps) > 0 {
		e.c.mu.Lock()
		_, err := e.c.check(e.k, nil, !e.d.perRun)
		deps = e.deps
		e.c.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	var args []any
	if len(deps) > 0 {
		args = make([]any, len(deps))
		for i, de := range deps {
			if args[i], err = de.get(ctx); err != nil {
				return nil, err
			}
		}
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("constructor panicked: %v", r)
		}
		if err != nil {
			err = &Error{Path: []string{e.k.String()}, Err: err}
		}
	}()
	return e.d.call(ctx, args)
}

// closeValue closes v as its provider says.
func (e *entry) closeValue(ctx context.Context, v any) error {
	if !e.d.owned {
		return nil
	}
	if e.d.close != nil {
		return e.d.close(ctx, v)
	}
	switch x := v.(type) {
	case interface{ Close(context.Context) error }:
		return x.Close(ctx)
	case interface{ Close() error }:
		return x.Close()
	}
	return nil
}

// Close closes the singletons constructed so far, in reverse order of
// construction, and returns their errors joined. A closed container
// constructs nothing more.
func (c *Container) Close(ctx context.Context) error {
	c.mu.Lock()
	built := c.built
	c.built, c.closed = nil, true
	c.mu.Unlock()
	var errs []error
	for i := len(built) - 1; i >= 0; i-- {
		e := built[i]
		if err := e.closeValue(ctx, e.inst.Load().v); err != nil {
			errs = append(errs, fmt.Errorf("provided %s: close: %w", e.k, err))
		}
	}
	return errors.Join(errs...)
}

// Scope holds the per-run values of one run. A flow that uses per-run
// values makes one per run and closes it when the run ends; code running
// flows by hand needs none. A Scope is safe for concurrent use (the
// concurrent branches of one run share it).
type Scope struct {
	mu     sync.Mutex
	slots  map[*entry]*slot
	order  []*slot // constructed, in order
	closed bool
}

type slot struct {
	e    *entry
	mu   sync.Mutex
	done bool
	v    any
}

type scopeKey struct{}

// NewScope returns an empty scope.
func NewScope() *Scope { return &Scope{} }

// WithScope returns ctx carrying s.
func WithScope(ctx context.Context, s *Scope) context.Context {
	return context.WithValue(ctx, scopeKey{}, s)
}

// ScopeOf returns the scope ctx carries, or nil.
func ScopeOf(ctx context.Context) *Scope { return scopeOf(ctx) }

func scopeOf(ctx context.Context) *Scope {
	s, _ := ctx.Value(scopeKey{}).(*Scope)
	return s
}

func (s *Scope) get(ctx context.Context, e *entry) (any, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("provided %s: the run ended: %w", e.k, ErrClosed)
	}
	if s.slots == nil {
		s.slots = map[*entry]*slot{}
	}
	sl := s.slots[e]
	if sl == nil {
		sl = &slot{e: e}
		s.slots[e] = sl
	}
	s.mu.Unlock()
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.done {
		return sl.v, nil
	}
	v, err := e.construct(ctx)
	if err != nil {
		return nil, err
	}
	sl.v, sl.done = v, true
	s.mu.Lock()
	s.order = append(s.order, sl)
	s.mu.Unlock()
	return v, nil
}

// Close closes the values constructed in the scope, in reverse order of
// construction, and returns their errors joined.
func (s *Scope) Close(ctx context.Context) error {
	s.mu.Lock()
	order := s.order
	s.order, s.closed = nil, true
	s.mu.Unlock()
	var errs []error
	for i := len(order) - 1; i >= 0; i-- {
		sl := order[i]
		if err := sl.e.closeValue(ctx, sl.v); err != nil {
			errs = append(errs, fmt.Errorf("provided %s: close: %w", sl.e.k, err))
		}
	}
	return errors.Join(errs...)
}

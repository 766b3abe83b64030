package flow

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/provide"
)

// Injectable is implemented by services that receive provided values
// (package provide) when the flow holding them is built: [Func] services
// whose input has fields tagged `provide:""` or `provide:"name"`. Build
// calls Inject once for each place the service appears, with the flow's
// container (nil when it has none, see [Builder.Provide]), and runs the
// service it returns there. An error, such as a missing provider or a
// cycle, is a build error of the step.
type Injectable interface {
	Inject(c *provide.Container) (Service, error)
}

// ProvidedField is a field of a [Func] input that receives a provided
// value: for catalogs.
type ProvidedField struct {
	Field string       // the Go field
	Type  reflect.Type // the provided type
	Name  string       // the provider's name ("" for the unnamed one)
}

// String returns "cache.Cache" or `*main.Vendor (named "eu")`.
func (p ProvidedField) String() string {
	if p.Name == "" {
		return p.Type.String()
	}
	return fmt.Sprintf("%s (named %q)", p.Type, p.Name)
}

// ProvidedFields returns the fields of svc's input that receive provided
// values (see [Func]), seen through [Named]; none for other services.
func ProvidedFields(svc Service) []ProvidedField {
	for {
		switch s := svc.(type) {
		case *named:
			svc = s.Service
		case interface{ providedFields() []ProvidedField }:
			return s.providedFields()
		default:
			return nil
		}
	}
}

func (f *funcService[In, Out]) providedFields() []ProvidedField {
	var out []ProvidedField
	for _, b := range f.prov {
		out = append(out, ProvidedField{Field: b.field, Type: b.typ, Name: b.pname})
	}
	return out
}

// Provide gives the flow's steps the values of c: a [Func] input field
// tagged `provide:""` receives the unnamed provider of its type,
// `provide:"name"` the one registered with provide.Named(name). Build
// checks every such field against c. A flow whose providers include
// per-run values gives each run a scope of its own, closed (its values
// closed in reverse order) when the run ends; a nested flow shares the
// run's scope (a [Tap] still running after its run ends gets an error
// instead of a closed value). The container's singletons are closed by
// whoever made it (provide.Container.Close), after the flows that use it.
func (b *Builder) Provide(c *provide.Container) *Builder {
	b.providers = c
	return b
}

// injected is a provided field of a Func input, bound to its provider.
// Once a singleton is made, a pointer-shaped or interface one is kept as
// the words the field holds (w, published by ready), copied into each
// call's input without reflection (the stores keep the garbage
// collector's write barriers); any other type is kept as a reflect.Value.
type injected struct {
	ready  atomic.Uint32 // 0: not made; 1: rv; 2: w[0] (one word); 3: w (two words)
	w      [2]unsafe.Pointer
	offset uintptr
	b      *provide.Binding
	typ    reflect.Type
	field  string
	mu     sync.Mutex    // guards the first store
	rv     reflect.Value // set before ready
}

// keep records a singleton's value, as the field holds it.
func (in *injected) keep(rv reflect.Value) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.ready.Load() != 0 {
		return
	}
	p := rv.Addr().UnsafePointer()
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		in.w[0] = *(*unsafe.Pointer)(p)
		in.ready.Store(2)
	case reflect.Interface:
		in.w = *(*[2]unsafe.Pointer)(p)
		in.ready.Store(3)
	default:
		in.rv = rv
		in.ready.Store(1)
	}
}

// Inject implements [Injectable]: it binds each provided field of the
// input to its provider in c.
func (f *funcService[In, Out]) Inject(c *provide.Container) (Service, error) {
	if len(f.prov) == 0 || f.err != nil {
		return f, nil
	}
	nf := &funcService[In, Out]{name: f.name, fn: f.fn, in: f.in, out: f.out, prov: f.prov, outMap: f.outMap,
		contract: f.contract, outKeys: f.outKeys, pure: f.pure}
	var errs []error
	nf.inj = make([]injected, len(f.prov))
	for i, b := range f.prov {
		if c == nil {
			errs = append(errs, fmt.Errorf("field %s: provided %s: %w (the flow has no container: Builder.Provide)", b.field, b.typ, provide.ErrMissing))
			continue
		}
		pb, err := c.Bind(b.typ, b.pname)
		if err != nil {
			errs = append(errs, fmt.Errorf("field %s: %w", b.field, err))
			continue
		}
		in := &nf.inj[i]
		in.b, in.typ, in.offset, in.field = pb, b.typ, b.offset, b.field
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return nf, nil
}

// notInjected is the error of a call of a Func with provided fields that
// no flow injected.
func (f *funcService[In, Out]) notInjected() error {
	return fmt.Errorf("step %q: provided fields not injected: run the step in a flow given the providers (Builder.Provide)", f.name)
}

// fill sets the provided field in the input at base.
func (in *injected) fill(ctx context.Context, base unsafe.Pointer) error {
	dst := unsafe.Add(base, in.offset)
	switch in.ready.Load() {
	case 3:
		*(*[2]unsafe.Pointer)(dst) = in.w
		return nil
	case 2:
		*(*unsafe.Pointer)(dst) = in.w[0]
		return nil
	case 1:
		reflect.NewAt(in.typ, dst).Elem().Set(in.rv)
		return nil
	}
	v, err := in.b.Get(ctx)
	if err != nil {
		return fmt.Errorf("field %s: %w", in.field, err)
	}
	rv := reflect.New(in.typ).Elem() // addressable: keep reads its words
	if v != nil {
		vv := reflect.ValueOf(v)
		if !vv.Type().AssignableTo(in.typ) {
			return fmt.Errorf("field %s: provided %s: constructor returned %T", in.field, in.typ, v)
		}
		rv.Set(vv)
	}
	if !in.b.PerRun() {
		in.keep(rv)
	}
	reflect.NewAt(in.typ, dst).Elem().Set(rv)
	return nil
}

// inject gives svc, if it takes provided values, its providers.
func (b *builder) inject(svc Service) (Service, error) {
	switch s := svc.(type) {
	case Injectable:
		return s.Inject(b.providers)
	case *named:
		if _, ok := s.Service.(Injectable); ok {
			in, err := b.inject(s.Service)
			if err != nil || isNil(in) {
				return svc, err
			}
			return &named{name: s.name, Service: in}, nil
		}
	}
	return svc, nil
}

package flow

import (
	"context"
	"fmt"
	"reflect"
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

// Provide gives the flow's steps the values of c: a [Func] input field
// tagged `provide:""` receives the unnamed provider of its type,
// `provide:"name"` the one registered with provide.Named(name). Build
// checks every such field against c. A flow whose providers include
// per-run values gives each run a scope of its own, closed (its values
// closed in reverse order) when the run ends; a nested flow shares the
// run's scope. The container's singletons are closed by whoever made it
// (provide.Container.Close), after the flows that use it.
func (b *Builder) Provide(c *provide.Container) *Builder {
	b.providers = c
	return b
}

// injected is a provided field of a Func input, bound to its provider.
type injected struct {
	b      *provide.Binding
	typ    reflect.Type
	offset uintptr
	field  string
	single atomic.Pointer[image] // a singleton, as the field holds it
}

// image is a singleton as a field of its type holds it: copied into each
// call's input. A pointer-shaped or interface field is one or two words,
// copied without reflection (the stores keep the garbage collector's
// write barriers); any other type goes through reflect.
type image struct {
	words int // 1 or 2: copy w; 0: use rv
	w     [2]unsafe.Pointer
	rv    reflect.Value
}

func newImage(rv reflect.Value) *image {
	im := &image{rv: rv}
	p := rv.Addr().UnsafePointer()
	switch rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		im.words, im.w[0] = 1, *(*unsafe.Pointer)(p)
	case reflect.Interface:
		im.words, im.w = 2, *(*[2]unsafe.Pointer)(p)
	}
	return im
}

// Inject implements [Injectable]: it binds each provided field of the
// input to its provider in c.
func (f *funcService[In, Out]) Inject(c *provide.Container) (Service, error) {
	if len(f.prov) == 0 || f.err != nil {
		return f, nil
	}
	nf := &funcService[In, Out]{name: f.name, fn: f.fn, in: f.in, out: f.out, prov: f.prov, outMap: f.outMap,
		contract: f.contract, outKeys: f.outKeys}
	var errs []error
	for _, b := range f.prov {
		if c == nil {
			errs = append(errs, fmt.Errorf("field %s: provided %s: %w (the flow has no container: Builder.Provide)", b.field, b.typ, provide.ErrMissing))
			continue
		}
		pb, err := c.Bind(b.typ, b.pname)
		if err != nil {
			errs = append(errs, fmt.Errorf("field %s: %w", b.field, err))
			continue
		}
		nf.inj = append(nf.inj, &injected{b: pb, typ: b.typ, offset: b.offset, field: b.field})
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
	if im := in.single.Load(); im != nil {
		switch im.words {
		case 1:
			*(*unsafe.Pointer)(dst) = im.w[0]
		case 2:
			*(*[2]unsafe.Pointer)(dst) = im.w
		default:
			reflect.NewAt(in.typ, dst).Elem().Set(im.rv)
		}
		return nil
	}
	v, err := in.b.Get(ctx)
	if err != nil {
		return fmt.Errorf("field %s: %w", in.field, err)
	}
	rv := reflect.New(in.typ).Elem() // addressable: newImage reads its words
	if v != nil {
		vv := reflect.ValueOf(v)
		if !vv.Type().AssignableTo(in.typ) {
			return fmt.Errorf("field %s: provided %s: constructor returned %T", in.field, in.typ, v)
		}
		rv.Set(vv)
	}
	if !in.b.PerRun() {
		in.single.Store(newImage(rv))
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

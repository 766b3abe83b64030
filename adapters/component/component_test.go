package component_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/store"
)

type nopSource struct{ name string }

func (s nopSource) Name() string                                     { return s.name }
func (s nopSource) Run(ctx context.Context, _ channel.Handler) error { <-ctx.Done(); return nil }

type pathSpec struct {
	Path  string        `yaml:"path" spec:"required,scalar" doc:"where"`
	Every time.Duration `yaml:"every" default:"1s"`
}

func pathSource(name string) component.Component {
	return component.Source(name, "a test source", func(env component.Env, s pathSpec) (channel.Source, error) {
		if s.Path == "boom" {
			panic("boom")
		}
		if s.Path == "" {
			return nil, errors.New("no path")
		}
		return nopSource{name: env.Name + " " + s.Path}, nil
	})
}

func TestRegister(t *testing.T) {
	var reg component.Registry // the zero value is ready
	require.NoError(t, reg.Register(pathSource("p")))
	assert.ErrorContains(t, reg.Register(pathSource("p")), `register source "p": already registered`)
	require.NoError(t, reg.Register(component.Store("p", "a store named like the source", func(component.Env, pathSpec) (component.StoreOpener, error) {
		return func() (store.Store, error) { return store.NewMemory(), nil }, nil
	})), "names are per kind")

	for name, c := range map[string]component.Component{
		"zero":        {},
		"empty name":  pathSource(""),
		"name: colon": pathSource("a:b"),
		"nil build":   component.Source[pathSpec]("nb", "", nil),
		"not struct":  component.Source("ns", "", func(component.Env, string) (channel.Source, error) { return nil, nil }),
		"ref no kind": component.Source("rk", "", func(component.Env, struct{ R component.Ref }) (channel.Source, error) { return nil, nil }),
		"two scalars": component.Source("ts", "", func(component.Env, struct {
			A string `spec:"scalar"`
			B string `spec:"scalar"`
		}) (channel.Source, error) {
			return nil, nil
		}),
		"same key": component.Source("sk", "", func(component.Env, struct {
			A string `yaml:"x"`
			B string `yaml:"x"`
		}) (channel.Source, error) {
			return nil, nil
		}),
		"oneormany on a string": component.Source("om", "", func(component.Env, struct {
			A string `spec:"oneormany"`
		}) (channel.Source, error) {
			return nil, nil
		}),
	} {
		assert.ErrorIs(t, reg.Register(c), component.ErrInvalid, name)
	}
	assert.Equal(t, []string{"p"}, reg.Names(component.KindSource))
	assert.Len(t, reg.All(), 2)
	assert.Panics(t, func() { reg.MustRegister(pathSource("p")) })

	_, err := reg.Get(component.KindSource, "q")
	assert.ErrorIs(t, err, component.ErrUnknown)
	var ue *component.UnknownError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, `unknown source "q": expected p`, err.Error())
	_, err = reg.Get(component.KindSink, "q")
	assert.EqualError(t, err, `unknown sink "q": none is registered`)
}

func TestBuild(t *testing.T) {
	c := pathSource("p")
	v, err := c.Build(component.Env{Name: "ch"}, pathSpec{Path: "/x"})
	require.NoError(t, err)
	assert.Equal(t, "ch /x", v.(channel.Source).Name())
	v, err = c.Build(component.Env{Name: "ch"}, &pathSpec{Path: "/y"})
	require.NoError(t, err, "a pointer to the spec")
	assert.Equal(t, "ch /y", v.(channel.Source).Name())

	_, err = c.Build(component.Env{}, pathSpec{Path: "boom"})
	assert.ErrorContains(t, err, "source p: constructor panicked: boom")
	_, err = c.Build(component.Env{}, pathSpec{})
	assert.EqualError(t, err, "no path")
	_, err = c.Build(component.Env{}, "not a spec")
	assert.ErrorIs(t, err, component.ErrInvalid)
	_, err = c.Build(component.Env{}, (*pathSpec)(nil))
	assert.ErrorIs(t, err, component.ErrInvalid)
	_, err = component.Component{}.Build(component.Env{}, nil)
	assert.ErrorIs(t, err, component.ErrInvalid)

	nilSource := component.Source("n", "", func(component.Env, pathSpec) (channel.Source, error) { return nil, nil })
	_, err = nilSource.Build(component.Env{}, pathSpec{})
	assert.ErrorContains(t, err, "constructor returned nothing")

	sp, ok := c.NewSpec().(*pathSpec)
	require.True(t, ok)
	assert.Zero(t, *sp)
}

func TestParseURLAndRef(t *testing.T) {
	reg, err := component.NewRegistry(pathSource("p"), component.MemoryStore)
	require.NoError(t, err)
	ref, err := reg.ParseURL(component.KindSource, "p:/orders")
	require.NoError(t, err)
	assert.Equal(t, &pathSpec{Path: "/orders"}, ref.Spec)
	assert.Equal(t, "source p", ref.String())
	src, err := ref.Source(component.Env{Name: "c"})
	require.NoError(t, err)
	assert.Equal(t, "c /orders", src.Name())
	_, err = ref.Store(component.Env{})
	assert.ErrorIs(t, err, component.ErrInvalid, "a source is not a store")

	ref, err = reg.ParseURL(component.KindStore, "memory:")
	require.NoError(t, err)
	open, err := ref.Store(component.Env{})
	require.NoError(t, err)
	st, err := open()
	require.NoError(t, err)
	require.NoError(t, st.Close())

	_, err = reg.ParseURL(component.KindStore, "memory:x")
	assert.ErrorContains(t, err, `memory takes nothing after "memory:"`)
	_, err = reg.ParseURL(component.KindStore, "nothing")
	assert.ErrorContains(t, err, `store "nothing": expected name:value, such as memory:`)
	_, err = reg.ParseURL(component.KindStore, "redis:x")
	assert.ErrorIs(t, err, component.ErrUnknown)

	var zero component.Ref
	assert.True(t, zero.IsZero())
	_, err = zero.Build(component.Env{})
	assert.ErrorIs(t, err, component.ErrInvalid)
}

type fakeServer struct{ addr string }

func (f *fakeServer) Listen() error                   { return nil }
func (f *fakeServer) Addr() string                    { return f.addr }
func (f *fakeServer) Serve(ctx context.Context) error { return nil }
func (f *fakeServer) Ready() bool                     { return true }
func (f *fakeServer) WaitReady(context.Context) error { return nil }

func TestServersAreShared(t *testing.T) {
	made := 0
	mk := func() (component.Server, error) { made++; return &fakeServer{addr: "a"}, nil }
	env := component.Env{Servers: &component.Servers{}}
	a, err := env.Server("x :1", mk)
	require.NoError(t, err)
	b, err := env.Server("x :1", mk)
	require.NoError(t, err)
	assert.Same(t, a, b)
	_, err = env.Server("x :2", mk)
	require.NoError(t, err)
	assert.Equal(t, 2, made)
	assert.Equal(t, []string{"x :1", "x :2"}, env.Servers.Keys())
	assert.Len(t, env.Servers.All(), 2)

	_, err = env.Server("x :3", func() (component.Server, error) { return nil, errors.New("no") })
	assert.EqualError(t, err, "no")
	assert.Len(t, env.Servers.All(), 2, "a failed server is not kept")

	alone := component.Env{}
	c, err := alone.Server("x :1", mk)
	require.NoError(t, err)
	assert.NotSame(t, a, c, "without Servers each call makes its own")
	assert.NotNil(t, alone.Log())
}

func TestFields(t *testing.T) {
	type inner struct{ N int }
	type spec struct {
		Path       string            `yaml:"path" spec:"required,scalar" doc:"where"`
		MaxBody    int64             `default:"5"`
		HTTPPort   int               `yaml:",omitempty"`
		Skip       string            `yaml:"-"`
		Every      time.Duration     `yaml:"every"`
		Tags       []string          `spec:"oneormany"`
		Headers    map[string]string `yaml:"headers"`
		From       []component.Ref   `kind:"source"`
		Inner      *inner
		unexported int
	}
	fs := component.Fields(reflectType[spec]())
	var names, types []string
	for _, f := range fs {
		names = append(names, f.Name)
		types = append(types, component.TypeName(f))
	}
	assert.Equal(t, []string{"path", "max_body", "http_port", "every", "tags", "headers", "from", "inner"}, names)
	assert.Equal(t, []string{"string", "integer", "integer", "duration", "list of string", "map of string", "list of source", "object"}, types)
	assert.True(t, fs[0].Required && fs[0].Scalar)
	assert.Equal(t, "where", fs[0].Doc)
	assert.Equal(t, "5", fs[1].Default)
	assert.True(t, fs[4].OneOrMany)
	assert.Equal(t, component.KindSource, fs[6].Kind)
	sf, ok := component.ScalarField(reflectType[spec]())
	assert.True(t, ok)
	assert.Equal(t, "path", sf.Name)
	assert.Nil(t, component.Fields(reflectType[int]()))

	for in, want := range map[string]string{"MaxBody": "max_body", "HTTPPort": "http_port", "ID": "id", "URL": "url", "OrderBy": "order_by", "x": "x"} {
		assert.Equal(t, want, component.SnakeCase(in), in)
	}
}

func reflectType[T any]() reflect.Type { return reflect.TypeFor[T]() }

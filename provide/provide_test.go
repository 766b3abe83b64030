package provide_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/provide"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type Config struct{ DSN string }

type DB struct {
	cfg    *Config
	closed *[]string
}

func (d *DB) Close(ctx context.Context) error { *d.closed = append(*d.closed, "db"); return nil }

type Repo struct {
	db     *DB
	closed *[]string
}

func (r *Repo) Close() error { *r.closed = append(*r.closed, "repo"); return nil }

func TestSingletonsCloseInReverseOrder(t *testing.T) {
	var closed []string
	c := provide.New()
	require.NoError(t, provide.Register[*Repo](c, func(db *DB) *Repo { return &Repo{db: db, closed: &closed} }))
	require.NoError(t, provide.Register[*DB](c, func(ctx context.Context, cfg *Config) (*DB, error) {
		return &DB{cfg: cfg, closed: &closed}, ctx.Err()
	}))
	require.NoError(t, provide.Value(c, &Config{DSN: "x"}, provide.WithClose(func(ctx context.Context, cfg *Config) error {
		closed = append(closed, "config")
		return nil
	})))
	repo, err := provide.Get[*Repo](t.Context(), c, "")
	require.NoError(t, err)
	assert.Equal(t, "x", repo.db.cfg.DSN)
	again, err := provide.Get[*Repo](t.Context(), c, "")
	require.NoError(t, err)
	assert.Same(t, repo, again, "a singleton")
	require.NoError(t, c.Close(t.Context()))
	assert.Equal(t, []string{"repo", "db", "config"}, closed, "reverse order of construction")
	_, err = provide.Get[*Repo](t.Context(), c, "")
	assert.NoError(t, err, "made before: still there")
	_, err = provide.Get[*Config](t.Context(), provide.New(), "")
	assert.ErrorIs(t, err, provide.ErrMissing)
}

func TestValueIsNotClosed(t *testing.T) {
	var closed []string
	c := provide.New()
	require.NoError(t, provide.Value(c, &Repo{closed: &closed}))
	_, err := provide.Get[*Repo](t.Context(), c, "")
	require.NoError(t, err)
	require.NoError(t, c.Close(t.Context()))
	assert.Empty(t, closed, "its owner closes it")
}

func TestCloseErrorsJoined(t *testing.T) {
	c := provide.New()
	require.NoError(t, provide.Register[*Config](c, func() *Config { return &Config{} },
		provide.WithClose(func(context.Context, *Config) error { return errors.New("disk gone") })))
	_, err := provide.Get[*Config](t.Context(), c, "")
	require.NoError(t, err)
	assert.EqualError(t, c.Close(t.Context()), "provided *provide_test.Config: close: disk gone")
	_, err = provide.Get[*Repo](t.Context(), c, "")
	assert.ErrorIs(t, err, provide.ErrMissing)
}

func TestClosedContainerConstructsNothing(t *testing.T) {
	c := provide.New()
	require.NoError(t, provide.Register[*Config](c, func() *Config { return &Config{} }))
	require.NoError(t, c.Close(t.Context()))
	_, err := provide.Get[*Config](t.Context(), c, "")
	assert.ErrorIs(t, err, provide.ErrClosed)
}

func TestDefineChecksTheConstructor(t *testing.T) {
	for name, ctor := range map[string]any{
		"nil":           nil,
		"not a func":    42,
		"wrong result":  func() string { return "" },
		"second result": func() (*Config, string) { return nil, "" },
		"variadic":      func(...int) *Config { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			_, err := provide.Define[*Config](ctor)
			assert.ErrorContains(t, err, "provide *provide_test.Config")
		})
	}
	d, err := provide.Define[fmt.Stringer](func(cfg *Config, ctx context.Context, db *DB) (fmt.Stringer, error) { return nil, nil }, provide.PerRun(), provide.Named("x"))
	require.NoError(t, err)
	assert.Equal(t, []reflect.Type{reflect.TypeFor[*Config](), reflect.TypeFor[*DB]()}, d.Deps())
	assert.Equal(t, "x", d.Name())
	assert.True(t, d.PerRun())
	assert.Equal(t, reflect.TypeFor[fmt.Stringer](), d.Type())
}

func TestAddNamedAndDuplicates(t *testing.T) {
	c := provide.New()
	d, err := provide.Define[*Config](func() *Config { return &Config{DSN: "a"} })
	require.NoError(t, err)
	require.NoError(t, c.Add(d))
	require.NoError(t, c.Add(d, provide.Named("primary")))
	assert.ErrorContains(t, c.Add(d), "provide *provide_test.Config: already registered")
	assert.NoError(t, c.Check(reflect.TypeFor[*Config](), "primary"))
	err = c.Check(reflect.TypeFor[*Config](), "replica")
	assert.EqualError(t, err, `provided *provide_test.Config (named "replica"): no provider`)
	var pe *provide.Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, []string{`*provide_test.Config (named "replica")`}, pe.Path)
}

func TestPerRunNeedsAScope(t *testing.T) {
	var closed []string
	c := provide.New()
	require.NoError(t, provide.Register[*Repo](c, func() *Repo { return &Repo{closed: &closed} }, provide.PerRun()))
	_, err := provide.Get[*Repo](t.Context(), c, "")
	assert.ErrorIs(t, err, provide.ErrScope)
	s := provide.NewScope()
	ctx := provide.WithScope(t.Context(), s)
	a, err := provide.Get[*Repo](ctx, c, "")
	require.NoError(t, err)
	b, err := provide.Get[*Repo](ctx, c, "")
	require.NoError(t, err)
	assert.Same(t, a, b, "once per scope")
	require.NoError(t, s.Close(ctx))
	assert.Equal(t, []string{"repo"}, closed)
	_, err = provide.Get[*Repo](ctx, c, "")
	assert.ErrorIs(t, err, provide.ErrClosed, "the run ended")
}

func TestConstructorPanicIsAnError(t *testing.T) {
	c := provide.New()
	require.NoError(t, provide.Register[*Config](c, func() (*Config, error) { panic("no config file") }))
	_, err := provide.Get[*Config](t.Context(), c, "")
	assert.EqualError(t, err, "provided *provide_test.Config: constructor panicked: no config file")
}

func Example() {
	c := provide.New()
	provide.MustRegister[*Config](c, func() *Config { return &Config{DSN: "file:orders.db"} })
	provide.MustRegister[*DB](c, func(cfg *Config) (*DB, error) { return &DB{cfg: cfg, closed: new([]string)}, nil })
	db, err := provide.Get[*DB](context.Background(), c, "")
	fmt.Println(db.cfg.DSN, err)
	fmt.Println(c.Close(context.Background()))
	// Output:
	// file:orders.db <nil>
	// <nil>
}

func ExamplePerRun() {
	c := provide.New()
	n := 0
	provide.MustRegister[*Config](c, func() *Config { n++; return &Config{DSN: fmt.Sprint("run ", n)} }, provide.PerRun())
	for range 2 {
		s := provide.NewScope() // a flow makes one per run
		ctx := provide.WithScope(context.Background(), s)
		a, _ := provide.Get[*Config](ctx, c, "")
		b, _ := provide.Get[*Config](ctx, c, "")
		fmt.Println(a.DSN, a == b)
		_ = s.Close(ctx)
	}
	// Output:
	// run 1 true
	// run 2 true
}

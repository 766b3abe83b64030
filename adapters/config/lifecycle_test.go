package config_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/message"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// lifecycle counts the Init and Close calls of a kind of service.
type lifecycle struct {
	inits, closes, made atomic.Int64
	mu                  sync.Mutex
	bad                 []string // an Init of an open client, a Close of a closed one
}

func (lc *lifecycle) fail(format string, args ...any) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.bad = append(lc.bad, fmt.Sprintf(format, args...))
}

// client is a service with a lifecycle, like a database client: Init
// opens it, Close closes it, and a call of a closed client fails.
type client struct {
	name string
	lc   *lifecycle
	open atomic.Bool
}

func (s *client) Name() string { return s.name }

func (s *client) Init(context.Context) error {
	if s.open.Swap(true) {
		s.lc.fail("%s: Init of an open client", s.name)
	}
	s.lc.inits.Add(1)
	return nil
}

func (s *client) Close(context.Context) error {
	if !s.open.Swap(false) {
		s.lc.fail("%s: Close of a closed client", s.name)
	}
	s.lc.closes.Add(1)
	return nil
}

func (s *client) Call(_ context.Context, c *fc.Context) error {
	if !s.open.Load() {
		return fmt.Errorf("%s client closed", s.name)
	}
	c.Set(s.name, "ok")
	return nil
}

// tripwire returns a Fatal error for n = -1 (as JSON decodes it), once
// each time it is armed.
type tripwire struct{ armed atomic.Bool }

func (t *tripwire) Name() string { return "trip" }

func (t *tripwire) Call(_ context.Context, c *fc.Context) error {
	if n, _ := c.Get("n"); n == -1.0 && t.armed.CompareAndSwap(true, false) {
		return errors.Fatal(fmt.Errorf("tripped"))
	}
	return nil
}

// Two flows, each served by a channel of its own, call the same flow,
// which uses a client made by a factory (db) and a ready client (cache).
const sharedLookup = `
version: 1
flows:
  lookup:
    input: [n]
    steps:
      - {use: db, with: {table: customers}}
      - use: cache
      - use: trip
  orders:
    input: [n]
    steps:
      - call: lookup
      - set: {order: "n"}
  refunds:
    input: [n]
    steps:
      - call: lookup
      - set: {refund: "n"}
`

type lookupServices struct {
	db, cache lifecycle
	trip      *tripwire
	reg       *config.Registry
}

func newLookupServices(t *testing.T) *lookupServices {
	ls := &lookupServices{trip: &tripwire{}, reg: config.NewRegistry()}
	require.NoError(t, ls.reg.RegisterFactory("db", "a database client", func(name string, args config.Args) (flow.Service, error) {
		ls.db.made.Add(1)
		return &client{name: name, lc: &ls.db}, nil
	}))
	require.NoError(t, ls.reg.Register(&client{name: "cache", lc: &ls.cache}, "a cache client"))
	require.NoError(t, ls.reg.Register(ls.trip, "fails with Fatal once when armed"))
	return ls
}

// serveFlow builds the named flow as flowrun serve does, once per channel.
func serveFlow(t *testing.T, cfg *config.Config, name string) *channel.Channel {
	t.Helper()
	b, ok := cfg.Builder(name)
	require.True(t, ok)
	f, err := b.Build()
	require.NoError(t, err)
	ch, err := channel.New(channel.Config{Name: name, Flow: f, Logger: slog.New(slog.DiscardHandler),
		Restart: &errors.Policy{Initial: time.Millisecond, MaxAttempts: 3}})
	require.NoError(t, err)
	return ch
}

func handle(ch *channel.Channel, n int) channel.Result {
	m, err := message.NewJSON(map[string]any{"n": n}, nil)
	if err != nil {
		return channel.Result{Err: err}
	}
	return ch.Handle(context.Background(), m)
}

// busy handles messages on ch until stopped, and returns the errors of
// those that did not finish.
func busy(ch *channel.Channel) (stop func() []error) {
	done := make(chan struct{})
	var errs []error
	var handled int
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if res := handle(ch, i); (res.Err != nil || res.Settle != channel.Ack) && len(errs) < 3 {
				errs = append(errs, fmt.Errorf("message %d: %v (settle %v)", i, res.Err, res.Settle))
			}
			handled++
		}
	}()
	return func() []error {
		close(done)
		<-finished
		if handled == 0 {
			errs = append(errs, fmt.Errorf("no message handled"))
		}
		return errs
	}
}

// TestChannelsOwnTheirServices: two channels served from one
// configuration, both calling the same flow, own what they use: stopping
// one, or restarting its services after a Fatal error, leaves the other
// running and processing, and every Init is matched by one Close once
// both stop.
func TestChannelsOwnTheirServices(t *testing.T) {
	for _, what := range []string{"stop", "fatal restart"} {
		t.Run(what, func(t *testing.T) {
			ls := newLookupServices(t)
			cfg := load(t, sharedLookup, config.WithRegistry(ls.reg))
			ctx := context.Background()
			orders, refunds := serveFlow(t, cfg, "orders"), serveFlow(t, cfg, "refunds")
			require.NoError(t, orders.Start(ctx))
			require.NoError(t, refunds.Start(ctx))
			assert.Equal(t, int64(1), ls.cache.inits.Load(), "the ready client is initialised once, by its first owner")
			assert.Equal(t, int64(2), ls.db.inits.Load(), "each channel initialises a db client of its own")

			stop := busy(refunds)
			require.NoError(t, handle(orders, 1).Err)
			switch what {
			case "stop":
				require.NoError(t, orders.Stop(ctx))
			case "fatal restart":
				ls.trip.armed.Store(true)
				res := handle(orders, -1)
				require.NoError(t, res.Err)
				assert.Equal(t, channel.Ack, res.Settle)
				assert.Equal(t, int64(1), orders.Status().Restarts)
				require.NoError(t, handle(orders, 14).Err)
			}
			time.Sleep(20 * time.Millisecond) // the other channel keeps processing
			assert.Empty(t, stop(), "the other channel's messages")
			require.NoError(t, handle(refunds, 2).Err)

			require.NoError(t, orders.Stop(ctx))
			require.NoError(t, refunds.Stop(ctx))
			for name, lc := range map[string]*lifecycle{"db": &ls.db, "cache": &ls.cache} {
				assert.Empty(t, lc.bad, name)
				assert.Positive(t, lc.inits.Load(), name)
				assert.Equal(t, lc.inits.Load(), lc.closes.Load(), "%s: every Init is matched by one Close", name)
			}
			assert.Equal(t, int64(1), ls.cache.inits.Load(), "the ready client is closed only after its last owner")
			wantDB := int64(2)
			if what == "fatal restart" {
				wantDB = 3 // the restarted channel's db client, again
			}
			assert.Equal(t, wantDB, ls.db.inits.Load())
		})
	}
}

// TestBuilderMakesInstances: each Builder call makes an instance of the
// flow with services of its own (a factory is called again, a called flow
// is built again), except a ready service with a lifecycle, shared by
// reference count; Config.Flow keeps returning the configuration's own.
func TestBuilderMakesInstances(t *testing.T) {
	ls := newLookupServices(t)
	cfg := load(t, sharedLookup, config.WithRegistry(ls.reg))
	ctx := context.Background()
	made := ls.db.made.Load()
	own, _ := cfg.Flow("orders")
	again, _ := cfg.Flow("orders")
	assert.Same(t, own, again)

	build := func() *flow.Flow {
		b, ok := cfg.Builder("orders")
		require.True(t, ok)
		f, err := b.Build()
		require.NoError(t, err)
		return f
	}
	f1, f2 := build(), build()
	assert.Equal(t, made+2, ls.db.made.Load(), "the factory is called for each instance")

	require.NoError(t, f1.Init(ctx))
	require.NoError(t, f2.Init(ctx))
	assert.Equal(t, int64(2), ls.db.inits.Load())
	assert.Equal(t, int64(1), ls.cache.inits.Load(), "Init on the first reference only")
	out, err := f2.Run(ctx, map[string]any{"n": 1})
	require.NoError(t, err)
	assert.Equal(t, "ok", out.Map()["db"])

	require.NoError(t, f1.Close(ctx))
	assert.Equal(t, int64(1), ls.db.closes.Load())
	assert.Zero(t, ls.cache.closes.Load(), "Close after the last reference only")
	_, err = f2.Run(ctx, map[string]any{"n": 2})
	require.NoError(t, err, "closing one instance leaves the other working")

	require.NoError(t, f2.Close(ctx))
	assert.Equal(t, int64(2), ls.db.closes.Load())
	assert.Equal(t, int64(1), ls.cache.closes.Load())
	assert.Empty(t, ls.db.bad)
	assert.Empty(t, ls.cache.bad)

	// Config.Build makes instances too.
	stubbed, err := cfg.Build("orders", map[string]flow.Service{"set(order)": flow.Step("x", func(context.Context, *fc.Context) error { return nil })})
	require.NoError(t, err)
	assert.NotSame(t, own, stubbed)
	assert.Equal(t, made+3, ls.db.made.Load())
}

// failing is a ready service whose Init fails while fail is set.
type failing struct {
	client
	fail atomic.Bool
}

func (s *failing) Init(ctx context.Context) error {
	if s.fail.Load() {
		return fmt.Errorf("%s: cannot connect", s.name)
	}
	return s.client.Init(ctx)
}

// A reference whose Init fails holds nothing, and the next Init tries
// again; a reference closed twice releases the service once; the service
// is closed once, after its last reference.
func TestSharedServiceInitFails(t *testing.T) {
	var lc lifecycle
	svc := &failing{client: client{name: "cache", lc: &lc}}
	reg := config.NewRegistry()
	require.NoError(t, reg.Register(svc, "a cache client"))
	cfg := load(t, `
version: 1
flows:
  f:
    steps: [{use: cache}]
`, config.WithRegistry(reg))
	ctx := context.Background()
	b1, _ := cfg.Builder("f")
	b2, _ := cfg.Builder("f")
	f1, err := b1.Build()
	require.NoError(t, err)
	f2, err := b2.Build()
	require.NoError(t, err)

	svc.fail.Store(true)
	require.ErrorContains(t, f1.Init(ctx), "cannot connect")
	svc.fail.Store(false)
	require.NoError(t, f1.Close(ctx))
	assert.Zero(t, lc.closes.Load(), "a reference that failed to initialise closes nothing")
	require.NoError(t, f1.Init(ctx))
	require.NoError(t, f2.Init(ctx))
	require.NoError(t, f1.Close(ctx))
	require.NoError(t, f1.Close(ctx), "a second Close of one reference")
	assert.Zero(t, lc.closes.Load(), "the other reference holds the service")
	require.NoError(t, f2.Close(ctx))
	assert.Equal(t, int64(1), lc.inits.Load())
	assert.Equal(t, int64(1), lc.closes.Load())
	assert.Empty(t, lc.bad)
}

// A factory that fails for a later instance fails that instance's build,
// naming the step.
func TestFactoryFailsForAnInstance(t *testing.T) {
	calls := 0
	reg := config.NewRegistry()
	require.NoError(t, reg.RegisterFactory("db", "a database client", func(name string, _ config.Args) (flow.Service, error) {
		calls++
		if calls > 1 {
			return nil, fmt.Errorf("no connections left")
		}
		return flow.Step(name, func(context.Context, *fc.Context) error { return nil }), nil
	}))
	cfg := load(t, "version: 1\nflows:\n  f:\n    steps: [{use: db}]\n", config.WithRegistry(reg))
	b, ok := cfg.Builder("f")
	require.True(t, ok)
	_, err := b.Build()
	require.ErrorContains(t, err, `step "db": use db: no connections left`)
}

// Each call step runs an instance of the called flow of its own, so the
// steps of a flow are counted with those of the flows it calls.
func TestCallsAreBounded(t *testing.T) {
	src := "version: 1\nflows:\n  f0:\n    steps: [{set: {x: \"1\"}}]\n"
	for i := 1; i <= 9; i++ {
		prev := fmt.Sprintf("f%d", i-1)
		src += fmt.Sprintf("  f%d:\n    steps: [{call: %s}, {call: %s}, {call: %s}, {call: %s}]\n", i, prev, prev, prev, prev)
	}
	start := time.Now()
	msg := loadErr(t, src)
	// f7 runs 4 * f6, which runs 9556 steps.
	assert.Equal(t, `test.yaml:17:3: flow "f7": too many steps with those of the flows it calls (more than 20000): each call runs an instance of the called flow of its own`, msg)
	assert.Less(t, time.Since(start), 10*time.Second)
}

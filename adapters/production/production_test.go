package production_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/production"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// lifecycle records Init and Close calls of components, in order.
type lifecycle struct {
	mu     sync.Mutex
	events []string
}

func (l *lifecycle) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *lifecycle) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func (l *lifecycle) count(e string) int {
	n := 0
	for _, x := range l.list() {
		if x == e {
			n++
		}
	}
	return n
}

// tracked is a service with a lifecycle that records it.
type tracked struct {
	name string
	l    *lifecycle
	fn   func(ctx context.Context, c *fc.Context) error
}

func (t *tracked) Name() string { return t.name }
func (t *tracked) Init(ctx context.Context) error {
	t.l.add("init " + t.name)
	return nil
}
func (t *tracked) Close(ctx context.Context) error {
	t.l.add("close " + t.name)
	return nil
}
func (t *tracked) Call(ctx context.Context, c *fc.Context) error { return t.fn(ctx, c) }

// sendStep is a flow step that sends the context to target and puts the
// reply under into.
func sendStep(name, target, into string) flow.Service {
	return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
		out, err := production.From(ctx).SendSync(ctx, target, c.Map())
		if err != nil {
			return err
		}
		c.Set(into, out)
		return nil
	})
}

func TestInitCloseOncePerComponentInReverseStartOrder(t *testing.T) {
	ctx := context.Background()
	l := &lifecycle{}
	var calls atomic.Int64
	op := &tracked{name: "op", l: l, fn: func(ctx context.Context, c *fc.Context) error {
		calls.Add(1)
		c.Set("echo", "op")
		return nil
	}}
	p := production.New("demo", production.Options{Logger: quiet})
	// Three processes, each a flow that sends to the same operation twice.
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("proc%d", i)
		f := flow.New(name, sendStep("a", "Operation", "first"), sendStep("b", "op", "second")).MustBuild()
		require.NoError(t, p.Add(production.Component{Name: name, Kind: production.Process, Service: &tracked{name: name, l: l, fn: f.Call},
			Targets: map[string]string{"Operation": "op"}}))
	}
	require.NoError(t, p.Add(production.Component{Name: "svc", Kind: production.Service,
		Service: flow.New("svc", &tracked{name: "svc", l: l, fn: func(ctx context.Context, c *fc.Context) error {
			return production.From(ctx).SendMulti(ctx, production.Call{Target: "proc1"}, production.Call{Target: "proc2"}, production.Call{Target: "proc3"})[0].Err
		}}).MustBuild()}))
	require.NoError(t, p.Add(production.Component{Name: "op", Kind: production.Operation, Service: op}))
	require.NoError(t, p.Start(ctx))

	bs, err := p.Director().Service("svc")
	require.NoError(t, err)
	for range 5 {
		_, err := bs.ProcessInput(ctx, map[string]any{"n": 1})
		require.NoError(t, err)
	}
	out, err := p.SendSync(ctx, "proc2", map[string]any{"x": 1})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"echo": "op", "x": 1}, out["first"])
	assert.Equal(t, "op", out["second"].(map[string]any)["echo"])
	require.NoError(t, p.Stop(ctx))

	assert.Equal(t, int64(5*3*2+2), calls.Load(), "every send reached the one operation")
	for _, name := range []string{"op", "proc1", "proc2", "proc3", "svc"} {
		assert.Equal(t, 1, l.count("init "+name), "init of %s", name)
		assert.Equal(t, 1, l.count("close "+name), "close of %s", name)
	}
	// Operations start first, then processes, then services, each in
	// declaration order; Close runs in the reverse order.
	starts := []string{"init op", "init proc1", "init proc2", "init proc3", "init svc"}
	closes := []string{"close svc", "close proc3", "close proc2", "close proc1", "close op"}
	assert.Equal(t, append(starts, closes...), l.list())
}

func TestSendMultiOrderStatusNoCancellation(t *testing.T) {
	ctx := context.Background()
	failed := make(chan struct{})
	var slowCtxErr error
	p := production.New("multi", production.Options{Logger: quiet})
	require.NoError(t, p.Add(production.Component{Name: "echo", Kind: production.Operation,
		Service: flow.Step("echo", func(ctx context.Context, c *fc.Context) error {
			n, _ := c.Get("n")
			c.Set("double", n.(int)*2)
			return nil
		})}))
	require.NoError(t, p.Add(production.Component{Name: "reject", Kind: production.Operation,
		Service: flow.Step("reject", func(ctx context.Context, c *fc.Context) error { return errors.Stop("no such customer") })}))
	require.NoError(t, p.Add(production.Component{Name: "broken", Kind: production.Operation,
		Service: flow.Step("broken", func(ctx context.Context, c *fc.Context) error {
			defer close(failed)
			return errors.New("connection refused")
		})}))
	// slow ends only after broken failed: a multi that canceled the others
	// on a failure would cancel it.
	require.NoError(t, p.Add(production.Component{Name: "slow", Kind: production.Operation,
		Service: flow.Step("slow", func(ctx context.Context, c *fc.Context) error {
			select {
			case <-failed:
			case <-ctx.Done():
			}
			slowCtxErr = ctx.Err()
			c.Set("slow", true)
			return nil
		})}))
	require.NoError(t, p.Start(ctx))
	defer p.Stop(ctx)

	res := p.SendMulti(ctx,
		production.Call{Target: "slow", Request: map[string]any{"i": 0}},
		production.Call{Target: "echo", Request: map[string]any{"n": 1}},
		production.Call{Target: "broken", Request: map[string]any{"i": 2}},
		production.Call{Target: "reject", Request: map[string]any{"i": 3}},
		production.Call{Target: "nowhere", Request: map[string]any{"i": 4}},
		production.Call{Target: "echo", Request: map[string]any{"n": 5}},
	)
	require.Len(t, res, 6)
	targets := make([]string, len(res))
	statuses := make([]errors.Kind, len(res))
	for i, r := range res {
		targets[i], statuses[i] = r.Target, r.Status
	}
	assert.Equal(t, []string{"slow", "echo", "broken", "reject", "nowhere", "echo"}, targets)
	assert.Equal(t, []errors.Kind{errors.KindOK, errors.KindOK, errors.KindFailed, errors.KindStop, errors.KindFailed, errors.KindOK}, statuses)
	assert.NoError(t, slowCtxErr, "the slow call was not canceled")
	assert.Equal(t, true, res[0].Response["slow"])
	assert.Equal(t, 2, res[1].Response["double"])
	assert.Equal(t, 10, res[5].Response["double"])
	assert.Equal(t, map[string]any{"i": 2}, res[2].Request)
	assert.ErrorContains(t, res[2].Err, "connection refused")
	se, ok := errors.AsType[*errors.StopError](res[3].Err)
	require.True(t, ok)
	assert.Equal(t, "no such customer", se.Reason)
	assert.ErrorIs(t, res[4].Err, production.ErrUnknownTarget)
	assert.False(t, res[2].OK())
	assert.True(t, res[1].OK())
}

// The seed's async shape: a process sends two requests with completion
// keys 1 and 2; OnResponse keeps each response by key in the typed state;
// OnComplete reads both.
func TestSendAsyncOnResponseOnComplete(t *testing.T) {
	ctx := context.Background()
	var sends []production.Send
	var mu sync.Mutex
	type state struct {
		One, Two  string
		Responses []string // keys in the order OnResponse got them
	}
	var events []string
	bp := &production.ProcessOf[state]{
		ServiceName: "MyBP",
		OnMessage: func(ctx context.Context, in *production.Instance[state]) error {
			events = append(events, "message")
			if err := in.SendAsync(ctx, "Python.MyBO", map[string]any{"message": "Message1"}, "1"); err != nil {
				return err
			}
			return in.SendAsync(ctx, "Python.MyBO", map[string]any{"message": "Message2"}, "2")
		},
		OnResponse: func(ctx context.Context, in *production.Instance[state], r production.Result) error {
			events = append(events, "response")
			require.NoError(t, r.Err)
			in.State.Responses = append(in.State.Responses, r.Key)
			switch r.Key {
			case "1":
				in.State.One = r.Response["reply"].(string)
			case "2":
				in.State.Two = r.Response["reply"].(string)
			}
			return nil
		},
		OnComplete: func(ctx context.Context, in *production.Instance[state]) error {
			events = append(events, "complete")
			in.Response["one"], in.Response["two"] = in.State.One, in.State.Two
			return nil
		},
	}
	p := production.New("async", production.Options{Logger: quiet})
	require.NoError(t, p.Observe(func(s production.Send) {
		mu.Lock()
		sends = append(sends, s)
		mu.Unlock()
	}))
	require.NoError(t, p.Add(production.Component{Name: "Python.MyBP", Kind: production.Process, Service: bp}))
	require.NoError(t, p.Add(production.Component{Name: "Python.MyBO", Kind: production.Operation,
		Service: flow.Step("bo", func(ctx context.Context, c *fc.Context) error {
			m, _ := c.Get("message")
			c.Set("reply", "echo "+m.(string))
			return nil
		})}))
	require.NoError(t, p.Start(ctx))
	defer p.Stop(ctx)

	out, err := p.SendSync(ctx, "Python.MyBP", map[string]any{"request_string": "go"})
	require.NoError(t, err)
	assert.Equal(t, "echo Message1", out["one"])
	assert.Equal(t, "echo Message2", out["two"])
	assert.Equal(t, "go", out["request_string"])
	assert.Equal(t, []string{"message", "response", "response", "complete"}, events)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, sends, 3)
	keys := map[string]production.Send{}
	for _, s := range sends[:2] {
		assert.Equal(t, "Python.MyBP", s.From)
		assert.Equal(t, production.Async, s.Mode)
		keys[s.Key] = s
	}
	assert.Equal(t, "Message1", keys["1"].Request["message"])
	assert.Equal(t, "echo Message2", keys["2"].Response["reply"])
	assert.Equal(t, production.Send{Target: "Python.MyBP", Component: "Python.MyBP", Mode: production.Sync,
		Request: map[string]any{"request_string": "go"}, Response: out, Status: errors.KindOK}, withoutDuration(sends[2]))
}

func withoutDuration(s production.Send) production.Send {
	s.Duration = 0
	return s
}

// A failing async call reaches OnResponse with its status; OnResponse may
// send more async calls, which OnComplete waits for.
func TestSendAsyncFailureAndChainedCalls(t *testing.T) {
	ctx := context.Background()
	type state struct{ Statuses map[string]errors.Kind }
	bp := &production.ProcessOf[state]{
		ServiceName: "bp",
		OnMessage: func(ctx context.Context, in *production.Instance[state]) error {
			in.State.Statuses = map[string]errors.Kind{}
			_ = in.SendAsync(ctx, "bad", nil, "first")
			return in.SendAsync(ctx, "good", nil, "second")
		},
		OnResponse: func(ctx context.Context, in *production.Instance[state], r production.Result) error {
			in.State.Statuses[r.Key] = r.Status
			if r.Key == "first" {
				return in.SendAsync(ctx, "good", nil, "again")
			}
			return nil
		},
		OnComplete: func(ctx context.Context, in *production.Instance[state]) error {
			in.Response["statuses"] = fmt.Sprint(in.State.Statuses)
			return nil
		},
	}
	p := production.New("chain", production.Options{Logger: quiet})
	require.NoError(t, p.Add(production.Component{Name: "bp", Kind: production.Process, Service: bp}))
	require.NoError(t, p.Add(production.Component{Name: "good", Kind: production.Operation, Service: flow.Step("good", func(context.Context, *fc.Context) error { return nil })}))
	require.NoError(t, p.Add(production.Component{Name: "bad", Kind: production.Operation, Service: flow.Step("bad", func(context.Context, *fc.Context) error { return errors.Stop("nope") })}))
	require.NoError(t, p.Start(ctx))
	defer p.Stop(ctx)
	out, err := p.SendSync(ctx, "bp", map[string]any{})
	require.NoError(t, err)
	assert.Equal(t, "map[again:ok first:stop second:ok]", out["statuses"])

	// Outside a component's run SendAsync is refused.
	err = (&production.Self{}).SendAsync(ctx, "good", nil, "k")
	assert.ErrorIs(t, err, production.ErrNotInRun)
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	noop := flow.Step("noop", func(context.Context, *fc.Context) error { return nil })
	p := production.New("errs", production.Options{Logger: quiet})
	require.Error(t, p.Add(production.Component{Name: "", Kind: production.Operation, Service: noop}))
	require.Error(t, p.Add(production.Component{Name: "x", Service: noop}))
	require.Error(t, p.Add(production.Component{Name: "x", Kind: production.Operation}))
	require.Error(t, p.Add(production.Component{Name: "x", Kind: production.Operation, Service: noop, Poll: &production.Poll{Every: time.Second}}))
	require.NoError(t, p.Add(production.Component{Name: "op", Kind: production.Operation, Service: noop}))
	require.Error(t, p.Add(production.Component{Name: "op", Kind: production.Operation, Service: noop}))
	require.NoError(t, p.Add(production.Component{Name: "bp", Kind: production.Process, Service: noop, Targets: map[string]string{"Out": "missing"}}))

	_, err := p.SendSync(ctx, "op", nil)
	assert.ErrorIs(t, err, production.ErrStopped, "before Start")
	err = p.Start(ctx)
	assert.ErrorIs(t, err, production.ErrUnknownTarget)
	assert.ErrorContains(t, err, `"bp": target Out`)

	p = production.New("errs", production.Options{Logger: quiet})
	require.NoError(t, p.Add(production.Component{Name: "op", Kind: production.Operation, Service: noop}))
	require.NoError(t, p.Add(production.Component{Name: "in", Kind: production.Service, Service: noop}))
	require.NoError(t, p.Start(ctx))
	_, err = p.SendSync(ctx, "in", nil)
	assert.ErrorIs(t, err, production.ErrNotTarget)
	_, err = p.SendSync(ctx, "nope", nil)
	assert.ErrorIs(t, err, production.ErrUnknownTarget)
	assert.ErrorContains(t, err, "expected op")
	_, err = p.Director().Service("op")
	assert.ErrorContains(t, err, "is a operation, not a business service")
	_, err = p.Director().Service("nope")
	assert.ErrorIs(t, err, production.ErrUnknownTarget)
	require.NoError(t, p.Stop(ctx))
	_, err = p.SendSync(ctx, "op", nil)
	assert.ErrorIs(t, err, production.ErrStopped)
	bs, err := p.Director().Service("in")
	require.NoError(t, err)
	_, err = bs.ProcessInput(ctx, nil)
	assert.ErrorIs(t, err, production.ErrStopped)
}

// Settings are typed; the component's logger carries its name.
func TestSettingsAndLogger(t *testing.T) {
	ctx := context.Background()
	type opSettings struct{ Greeting string }
	var logged sync.Map
	h := &captureHandler{seen: &logged}
	p := production.New("set", production.Options{Logger: slog.New(h)})
	require.NoError(t, p.Add(production.Component{Name: "op", Kind: production.Operation, Settings: opSettings{Greeting: "hello"},
		Service: flow.Step("op", func(ctx context.Context, c *fc.Context) error {
			s, err := production.SettingsOf[opSettings](ctx)
			if err != nil {
				return err
			}
			production.From(ctx).Logger().Info("on_message")
			c.Set("greeting", s.Greeting)
			_, err = production.SettingsOf[string](ctx)
			c.Set("wrong", err.Error())
			return nil
		})}))
	require.NoError(t, p.Start(ctx))
	defer p.Stop(ctx)
	out, err := p.SendSync(ctx, "op", nil)
	require.NoError(t, err)
	assert.Equal(t, "hello", out["greeting"])
	assert.Contains(t, out["wrong"], "not a string")
	v, ok := logged.Load("on_message")
	require.True(t, ok)
	assert.Equal(t, "production=set component=op kind=operation", v)
}

// captureHandler keeps each record's message and attributes.
type captureHandler struct {
	seen  *sync.Map
	attrs []slog.Attr
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	var parts []string
	for _, a := range h.attrs {
		parts = append(parts, a.String())
	}
	r.Attrs(func(a slog.Attr) bool { parts = append(parts, a.String()); return true })
	h.seen.Store(r.Message, strings.Join(parts, " "))
	return nil
}
func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{seen: h.seen, attrs: append(slices.Clone(h.attrs), as...)}
}
func (h *captureHandler) WithGroup(string) slog.Handler { return h }

// A polling business service: OnPoll runs every interval on the fake
// clock of a synctest bubble; it sends itself, and what it returns runs
// the service's implementation.
func TestPollingService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var mu sync.Mutex
		var got []string
		var polls []time.Time
		start := time.Now()
		p := production.New("poll", production.Options{Logger: quiet})
		require.NoError(t, p.Add(production.Component{Name: "op", Kind: production.Operation,
			Service: flow.Step("op", func(ctx context.Context, c *fc.Context) error {
				v, _ := c.Get("from")
				mu.Lock()
				got = append(got, v.(string))
				mu.Unlock()
				return nil
			})}))
		require.NoError(t, p.Add(production.Component{Name: "poller", Kind: production.Service,
			Service: sendStep("forward", "op", "reply"),
			Poll: &production.Poll{Every: 10 * time.Second, OnPoll: func(ctx context.Context) ([]map[string]any, error) {
				polls = append(polls, time.Now())
				if _, err := production.From(ctx).SendSync(ctx, "op", map[string]any{"from": "on_poll"}); err != nil {
					return nil, err
				}
				return []map[string]any{{"from": fmt.Sprintf("message %d", len(polls))}}, nil
			}}}))
		require.NoError(t, p.Start(ctx))
		time.Sleep(35 * time.Second)
		synctest.Wait()
		require.NoError(t, p.Stop(ctx))
		require.Len(t, polls, 4, "at start, then every 10s")
		for i, at := range polls {
			assert.Equal(t, time.Duration(i)*10*time.Second, at.Sub(start))
		}
		assert.Equal(t, []string{"on_poll", "message 1", "on_poll", "message 2", "on_poll", "message 3", "on_poll", "message 4"}, got)
	})
}

// Pool bounds the requests a component runs at once; Stop waits for the
// requests in flight before closing the component, and refuses new ones.
func TestPoolAndGracefulStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		release := make(chan struct{})
		var calls atomic.Int64
		l := &lifecycle{}
		op := &tracked{name: "op", l: l, fn: func(ctx context.Context, c *fc.Context) error {
			calls.Add(1)
			<-release
			return nil
		}}
		p := production.New("pool", production.Options{Logger: quiet})
		require.NoError(t, p.Add(production.Component{Name: "op", Kind: production.Operation, Service: op, Pool: 1}))
		require.NoError(t, p.Start(ctx))
		errs := make(chan error, 2)
		for range 2 {
			go func() {
				_, err := p.SendSync(ctx, "op", nil)
				errs <- err
			}()
		}
		synctest.Wait()
		assert.Equal(t, int64(1), calls.Load(), "the second request waits for room")
		assert.Equal(t, int64(1), p.Status()[0].Running)

		stopped := make(chan error, 1)
		go func() { stopped <- p.Stop(ctx) }()
		synctest.Wait()
		assert.Equal(t, []string{"init op"}, l.list(), "not closed while requests run")
		_, err := p.SendSync(ctx, "op", nil)
		assert.ErrorIs(t, err, production.ErrStopped, "a stopping component refuses new requests")

		close(release)
		require.NoError(t, <-errs)
		require.NoError(t, <-errs)
		require.NoError(t, <-stopped)
		assert.Equal(t, int64(2), calls.Load())
		assert.Equal(t, []string{"init op", "close op"}, l.list())
		st := p.Status()[0]
		assert.Equal(t, int64(2), st.Processed)
		assert.Equal(t, "stopped", st.State)
	})
}

package production

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/svcflow/svcflow/adapters/logging"
	"github.com/svcflow/svcflow/errors"
)

// Mode says how a request was sent.
type Mode int

// The modes of a send.
const (
	// Sync: SendSync, the sender waited for the response.
	Sync Mode = iota + 1
	// Async: SendAsync with a completion key; the response went to the
	// sender's OnResponse (or Complete).
	Async
	// Multi: one call of a SendMulti.
	Multi
)

// String returns "sync", "async" or "multi".
func (m Mode) String() string {
	switch m {
	case Sync:
		return "sync"
	case Async:
		return "async"
	case Multi:
		return "multi"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Call is one request of a [Production.SendMulti]: a target (a component
// name, or a role of the sender's Targets) and its request.
type Call struct {
	Target  string
	Request map[string]any
}

// Result is the outcome of one call: a SendMulti entry, or the response
// of a SendAsync handed to OnResponse.
type Result struct {
	// Target is the target as the sender named it (a component or a
	// role); Component is the component it reached ("" when none); Key
	// is the completion key of an async call ("" otherwise).
	Target    string
	Component string
	Key       string
	// Request is what was sent; Response the target's output context
	// (nil when it failed).
	Request  map[string]any
	Response map[string]any
	// Status is how the call ended (errors.KindOK, KindStop for a
	// rejection, KindFailed, KindCanceled, ...), Err its error.
	Status errors.Kind
	Err    error
}

// OK reports whether the call succeeded.
func (r Result) OK() bool { return r.Err == nil }

// Send is one send as observers see it (Production.Observe,
// productiontest): who sent what to whom, and what came back.
type Send struct {
	// From is the sending component ("" from outside: the Director, a
	// test, an HTTP handler calling Production.SendSync).
	From string
	// Target is the target as named by the sender; Component the
	// component it reached ("" when it named none).
	Target    string
	Component string
	Mode      Mode
	Key       string
	Request   map[string]any
	Response  map[string]any
	Status    errors.Kind
	Err       error
	Duration  time.Duration
}

type runKey struct{}

// run is one run of a component (a request it handles, a message of a
// business service, a poll): its Self and its async calls. It is the
// run's context (one allocation per request): its parent's, with the run
// as the value of runKey.
type run struct {
	context.Context
	x  *comp
	mu sync.Mutex
	as *asyncCalls // nil until the first SendAsync
}

// Value implements context.Context. It also answers logging.AttrsKey:
// records logged with the run's context through logging.Handler (YAML
// log steps under flowrun) carry component and kind.
func (r *run) Value(key any) any {
	switch key {
	case runKey{}:
		return r
	case logging.AttrsKey{}:
		return r.x.attrs
	}
	return r.Context.Value(key)
}

func withSelf(ctx context.Context, x *comp) context.Context {
	return &run{Context: ctx, x: x}
}

// newRun returns ctx with a new run of x.
func newRun(ctx context.Context, x *comp) (context.Context, *run) {
	r := &run{Context: ctx, x: x}
	return r, r
}

// settle waits for the async calls the run left pending (their responses
// are dropped, their errors logged): a run's calls never outlive it.
func (r *run) settle(ctx context.Context) {
	r.mu.Lock()
	as := r.as
	r.mu.Unlock()
	if as == nil {
		return
	}
	for _, res := range as.drain() {
		if res.Err != nil {
			r.x.log.Warn("async response not collected: the call failed", "target", res.Target, "key", res.Key, "error", res.Err)
		} else {
			r.x.log.Debug("async response not collected", "target", res.Target, "key", res.Key)
		}
	}
}

func runOf(ctx context.Context) *run {
	r, _ := ctx.Value(runKey{}).(*run)
	return r
}

// Self is a running component's handle on its production: its name,
// settings and logger, and the calls it makes. Get it with [From] in the
// component's implementation.
type Self struct{ x *comp }

// From returns the Self of the component whose run ctx belongs to (its
// implementation's Call, Init and Close, a business service's OnPoll), or
// nil outside a production.
func From(ctx context.Context) *Self {
	if r := runOf(ctx); r != nil {
		return r.x.self
	}
	return nil
}

// Name returns the component's name.
func (s *Self) Name() string { return s.x.def.Name }

// Kind returns the component's kind.
func (s *Self) Kind() Kind { return s.x.def.Kind }

// Production returns the component's production.
func (s *Self) Production() *Production { return s.x.p }

// Settings returns the component's settings (Component.Settings).
func (s *Self) Settings() any { return s.x.def.Settings }

// Logger returns the component's logger: records carry
// production=NAME, component=NAME and kind=KIND.
func (s *Self) Logger() *slog.Logger { return s.x.log }

// Target returns the component a send from this component to target
// reaches: the component its Targets map the role to, or target itself.
func (s *Self) Target(target string) string {
	if name, ok := s.x.def.Targets[target]; ok {
		return name
	}
	return target
}

// SettingsOf returns the settings of the component running ctx as a T:
// an error when ctx is not a component's run or its settings are not a T
// (settings from YAML are a map[string]any).
func SettingsOf[T any](ctx context.Context) (T, error) {
	var zero T
	s := From(ctx)
	if s == nil {
		return zero, fmt.Errorf("production: settings: %w", ErrNotInRun)
	}
	v, ok := s.x.def.Settings.(T)
	if !ok {
		return zero, fmt.Errorf("production: %q: settings are a %T, not a %T", s.x.def.Name, s.x.def.Settings, zero)
	}
	return v, nil
}

// SendSync sends req to target from outside the production (an HTTP
// handler, a test) and waits for the response: the target's output
// context. The error is the target's, as its implementation returned it
// (errors.As finds a Stop's *errors.StopError), wrapped with the target;
// ErrUnknownTarget, ErrNotTarget and ErrStopped say it did not run. req
// is the run's input: its top level is copied, do not change what it
// holds while the call runs.
func (p *Production) SendSync(ctx context.Context, target string, req map[string]any) (map[string]any, error) {
	res := p.send(ctx, nil, target, req, Sync, "")
	return res.Response, res.Err
}

// SendSync is [Production.SendSync] from this component: target may be
// one of its Targets roles, and observers see it as the sender.
func (s *Self) SendSync(ctx context.Context, target string, req map[string]any) (map[string]any, error) {
	res := s.x.p.send(ctx, s.x, target, req, Sync, "")
	return res.Response, res.Err
}

// SendMulti runs the calls concurrently from outside the production and
// returns a Result per call, in the order of calls, once all ended: each
// with its status and error. A call that fails cancels none of the
// others (unlike flow.All); only ctx does. Calls to the same target run
// concurrently up to its Pool.
func (p *Production) SendMulti(ctx context.Context, calls ...Call) []Result {
	return p.multi(ctx, nil, calls)
}

// SendMulti is [Production.SendMulti] from this component (IoP's
// send_multi_request_sync).
func (s *Self) SendMulti(ctx context.Context, calls ...Call) []Result {
	return s.x.p.multi(ctx, s.x, calls)
}

func (p *Production) multi(ctx context.Context, from *comp, calls []Call) []Result {
	out := make([]Result, len(calls))
	if len(calls) == 0 {
		return out
	}
	var wg sync.WaitGroup
	for i := 1; i < len(calls); i++ {
		wg.Go(func() { p.sendTo(&out[i], ctx, from, calls[i].Target, calls[i].Request, Multi, "") })
	}
	p.sendTo(&out[0], ctx, from, calls[0].Target, calls[0].Request, Multi, "")
	wg.Wait()
	return out
}

// SendAsync sends req to target with a completion key and returns at
// once (IoP's send_request_async): the call runs concurrently, and its
// [Result] (Key set) goes to the run that sent it: a [ProcessOf]'s
// OnResponse, or a YAML flow's complete step. It must be called from a
// component's run (ErrNotInRun otherwise). A run's async calls never
// outlive it: if it ends without collecting them, it waits for them and
// drops their responses (logging the failures). The call runs with ctx:
// canceling the run cancels it.
func (s *Self) SendAsync(ctx context.Context, target string, req map[string]any, completionKey string) error {
	r := runOf(ctx)
	if s == nil || s.x == nil || r == nil || r.x != s.x {
		return fmt.Errorf("production: send async to %q: %w", target, ErrNotInRun)
	}
	if !s.x.p.running.Load() {
		return fmt.Errorf("production: send async to %q: %w", target, ErrStopped)
	}
	as := r.calls()
	as.start()
	go func() {
		as.done(s.x.p.send(ctx, s.x, target, req, Async, completionKey))
	}()
	return nil
}

// Pending returns how many async calls of the run of ctx have not been
// collected yet (sent and not returned by Next).
func (s *Self) Pending(ctx context.Context) int {
	r := runOf(ctx)
	if r == nil || r.x != s.x {
		return 0
	}
	r.mu.Lock()
	as := r.as
	r.mu.Unlock()
	if as == nil {
		return 0
	}
	return as.pending()
}

// Next waits for the next async call of the run of ctx to end, in the
// order they end, and returns its result; false when none is pending. It
// returns early with a Result holding ctx's error when ctx ends.
func (s *Self) Next(ctx context.Context) (Result, bool) {
	r := runOf(ctx)
	if r == nil || r.x != s.x {
		return Result{}, false
	}
	return r.calls().next(ctx)
}

func (r *run) calls() *asyncCalls {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.as == nil {
		r.as = &asyncCalls{ready: make(chan struct{}, 1)}
	}
	return r.as
}

// asyncCalls are a run's async calls: how many are out, and the results
// not collected yet, in the order they ended.
type asyncCalls struct {
	mu    sync.Mutex
	out   int // sent, not ended
	ended []Result
	ready chan struct{} // a token when ended grew
}

func (a *asyncCalls) start() {
	a.mu.Lock()
	a.out++
	a.mu.Unlock()
}

func (a *asyncCalls) done(r Result) {
	a.mu.Lock()
	a.out--
	a.ended = append(a.ended, r)
	a.mu.Unlock()
	select {
	case a.ready <- struct{}{}:
	default:
	}
}

func (a *asyncCalls) pending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.out + len(a.ended)
}

func (a *asyncCalls) next(ctx context.Context) (Result, bool) {
	for {
		a.mu.Lock()
		if len(a.ended) > 0 {
			r := a.ended[0]
			a.ended = a.ended[1:]
			a.mu.Unlock()
			return r, true
		}
		out := a.out
		a.mu.Unlock()
		if out == 0 {
			return Result{}, false
		}
		select {
		case <-a.ready:
		case <-ctx.Done():
			return Result{Status: errors.KindOf(ctx.Err()), Err: fmt.Errorf("production: waiting for async responses: %w", ctx.Err())}, true
		}
	}
}

// drain waits for every call out and returns the results not collected.
func (a *asyncCalls) drain() []Result {
	var out []Result
	for {
		r, ok := a.next(context.Background())
		if !ok {
			return out
		}
		out = append(out, r)
	}
}

// send runs one request to target and tells the observers. It runs on
// the fresh goroutines of SendMulti and SendAsync: its frame is kept
// small (the rare paths are calls), or each would grow its stack.
func (p *Production) send(ctx context.Context, from *comp, target string, req map[string]any, mode Mode, key string) Result {
	var res Result
	p.sendTo(&res, ctx, from, target, req, mode, key)
	return res
}

// sendTo is send writing its result in res.
func (p *Production) sendTo(res *Result, ctx context.Context, from *comp, target string, req map[string]any, mode Mode, key string) {
	var start time.Time
	if len(p.observe) > 0 {
		start = time.Now()
	}
	name := target
	if from != nil {
		if n, ok := from.def.Targets[target]; ok {
			name = n
		}
	}
	res.Target, res.Key, res.Request = target, key, req
	x := p.lookup(name)
	if x != nil && x.def.Kind != Service && p.running.Load() {
		res.Component = name
		if err := x.enter(ctx); err != nil {
			res.Err = err
		} else {
			out, err := x.call(ctx, req)
			x.leave(err)
			if err != nil {
				res.Err = x.wrapErr(from, err, mode, key)
			} else {
				res.Response = out
			}
		}
	} else {
		res.Component, res.Err = p.refuse(x, name, target)
	}
	if res.Err != nil {
		res.Status = errors.KindOf(res.Err)
	}
	if len(p.observe) > 0 {
		p.notify(from, res, mode, time.Since(start))
	}
}

// wrapErr wraps the error of a request that ran.
func (x *comp) wrapErr(from *comp, err error, mode Mode, key string) error {
	if from != nil {
		from.log.Debug("send failed", "target", x.def.Name, "mode", mode.String(), "key", key, "error", err)
	}
	return fmt.Errorf("production: %s %q: %w", x.def.Kind, x.def.Name, err)
}

// refuse is the error of a send that cannot run, and the component it
// named ("" for none).
func (p *Production) refuse(x *comp, name, target string) (string, error) {
	switch {
	case x == nil:
		return "", fmt.Errorf("production: send to %q: %w%s", target, ErrUnknownTarget, p.known())
	case !p.running.Load():
		return name, fmt.Errorf("production %q: send to %q: %w", p.name, target, ErrStopped)
	default:
		return name, fmt.Errorf("production: send to %q: %w", target, ErrNotTarget)
	}
}

// notify tells the observers about a send that ended.
func (p *Production) notify(from *comp, res *Result, mode Mode, d time.Duration) {
	s := Send{Target: res.Target, Component: res.Component, Mode: mode, Key: res.Key, Request: res.Request, Response: res.Response,
		Status: res.Status, Err: res.Err, Duration: d}
	if from != nil {
		s.From = from.def.Name
	}
	for _, fn := range p.observe {
		fn(s)
	}
}

// known is ": expected one of a, b" for errors.
func (p *Production) known() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.knownLocked()
}

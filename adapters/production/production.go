package production

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// Kind is what a component is in the production: a business service, a
// business process or a business operation.
type Kind int

// The kinds of component.
const (
	// Service is a business service: inbound. Its sources (an HTTP route,
	// a schedule, a poll) and the Director hand it messages, which its
	// implementation usually sends on to a process or an operation. It
	// runs as a channel (package channel) of its own.
	Service Kind = iota + 1
	// Process is a business process: it receives requests from services
	// and other processes and orchestrates calls to operations (sync,
	// async with completion keys, multi).
	Process
	// Operation is a business operation: it receives requests and talks to
	// the outside world (a database, an API).
	Operation
)

// String returns "service", "process" or "operation".
func (k Kind) String() string {
	switch k {
	case Service:
		return "service"
	case Process:
		return "process"
	case Operation:
		return "operation"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// ParseKind reads "service", "process" or "operation".
func ParseKind(s string) (Kind, error) {
	for _, k := range []Kind{Service, Process, Operation} {
		if k.String() == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("production: kind %q: expected service, process or operation", s)
}

// Errors of a production. They are wrapped with the component concerned;
// test for them with errors.Is.
var (
	// ErrUnknownTarget: no component of that name (nor a target role of
	// the sender naming one).
	ErrUnknownTarget = errors.New("unknown target")
	// ErrNotTarget: the component is a business service; services are
	// reached through the Director, not sent to.
	ErrNotTarget = errors.New("a business service is not a target (reach it with the Director)")
	// ErrStopped: the production, or the component, is not running; the
	// request was not run.
	ErrStopped = errors.New("not running")
	// ErrNotInRun: SendAsync and Complete need the run of a component
	// (production.From(ctx) is nil).
	ErrNotInRun = errors.New("not in the run of a production component")
)

// Component declares one component of a production. Name, Kind and
// Service are required.
type Component struct {
	// Name is how targets address the component ("Python.MyBusinessOperation").
	Name string
	// Kind is Service, Process or Operation.
	Kind Kind
	// Service implements the component: a *flow.Flow, a flow.Func, a
	// flow.Step, a [ProcessOf] with typed state, any flow.Service. A
	// request is its input context; its response is its output context.
	// If it implements flow.Initializer and flow.Closer, the production
	// calls Init once when the component starts and Close once when it
	// stops, however many flows send to it. A business service's
	// implementation is the flow of its channel: a *flow.Flow is used as
	// is (durable runs journal its steps), another service is wrapped in a
	// one-step flow.
	Service flow.Service
	// Settings are the component's settings, any Go value (a struct):
	// code reads them with [SettingsOf] or Self.Settings. A YAML flow
	// component finds them under the "settings" key of each run.
	Settings any
	// Targets maps roles to component names: a send from this component
	// to a role goes to the component it names ("target: Operation" in a
	// process reaching "Python.MyBusinessOperation"). A target that is no
	// role is a component name.
	Targets map[string]string
	// Pool bounds how many requests the component runs at once (0: no
	// bound); a request waits for room until its context ends.
	Pool int

	// Sources feed a business service: each message they deliver runs its
	// implementation (JSON object payloads are the input context; other
	// payloads go under "body"), as a channel's sources feed its flow.
	Sources []channel.Source
	// Poll makes a business service a polling one: OnPoll is called every
	// Every (see [Poll]).
	Poll *Poll
	// Store records a business service's messages (default: a memory
	// store of its own). The production does not close it.
	Store store.Store
	// Durable journals each completed step of a business service's runs
	// (channel durable runs: the Store must implement store.Journal and
	// Service be a *flow.Flow): after a crash a run resumes after its last
	// completed step.
	Durable bool
}

// Poll is what makes a business service a polling one (IoP's
// PollingBusinessService): OnPoll is called when the service starts and
// then every interval, with the context of a run of the service, so it
// can send to targets itself (production.From(ctx)); each message it
// returns also runs the service's implementation, one at a time, in
// order, as a JSON message of the service's channel (recorded in its
// store; numbers arrive as float64). Polls never overlap; an error is
// logged and the next poll comes as usual (the poll source of package
// poll runs them, on ordinary timers: testing/synctest drives them).
type Poll struct {
	// Every is the interval between polls (required).
	Every time.Duration
	// OnPoll is called each interval (required).
	OnPoll func(ctx context.Context) ([]map[string]any, error)
}

// Options configure a [Production].
type Options struct {
	// Logger receives the production's logs and is the base of each
	// component's logger (records carry component=NAME and kind=KIND);
	// default slog.Default().
	Logger *slog.Logger
	// Observer observes the runs of the business services' channels (see
	// channel.RunObserver); the production wraps it.
	Observer channel.RunObserver
	// Middleware wraps every step of the business services' flows when
	// the production builds them (a Go service it wraps); flows given
	// built keep theirs.
	Middleware []flow.Middleware
}

// Production holds components by name and runs them: business services
// fed by their sources and the Director, processes and operations
// reached by name with SendSync, SendAsync and SendMulti. Make one with
// [New], declare components with [Production.Add], then
// [Production.Start]. A Production is safe for concurrent use once
// started.
type Production struct {
	name     string
	opts     Options
	log      *slog.Logger
	mu       sync.Mutex
	comps    map[string]*comp // immutable once started
	order    []*comp          // declaration order
	started  []*comp          // start order, for Stop
	running  atomic.Bool
	observe  []func(Send)
	director *Director
}

// New returns a production with no components.
func New(name string, opts Options) *Production {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	p := &Production{name: name, opts: opts, log: opts.Logger.With("production", name), comps: map[string]*comp{}}
	p.director = &Director{p: p}
	return p
}

// Name returns the production's name.
func (p *Production) Name() string { return p.name }

// Add declares a component. It fails on a bad declaration (no name, a
// name taken, no kind or implementation, sources or a poll on a
// component that is not a business service, a negative pool) and once
// the production runs. Targets are checked by Start, once every
// component is declared.
func (p *Production) Add(c Component) error {
	switch {
	case c.Name == "" || strings.ContainsAny(c.Name, " \t\n"):
		return fmt.Errorf("production: add %q: a name is a word (dots allowed)", c.Name)
	case c.Kind < Service || c.Kind > Operation:
		return fmt.Errorf("production: add %q: kind %v: expected Service, Process or Operation", c.Name, c.Kind)
	case c.Service == nil:
		return fmt.Errorf("production: add %q: no Service implements it", c.Name)
	case c.Pool < 0:
		return fmt.Errorf("production: add %q: pool %d must not be negative", c.Name, c.Pool)
	case c.Kind != Service && (len(c.Sources) > 0 || c.Poll != nil || c.Store != nil || c.Durable):
		return fmt.Errorf("production: add %q: sources, poll, store and durable are for business services, not a %s", c.Name, c.Kind)
	case c.Durable && c.Kind == Service && !isFlow(c.Service):
		return fmt.Errorf("production: add %q: durable runs need a *flow.Flow implementation (its steps are journaled)", c.Name)
	case c.Poll != nil && (c.Poll.Every <= 0 || c.Poll.OnPoll == nil):
		return fmt.Errorf("production: add %q: poll: Every must be positive and OnPoll set", c.Name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running.Load() {
		return fmt.Errorf("production: add %q: the production runs already", c.Name)
	}
	if _, dup := p.comps[c.Name]; dup {
		return fmt.Errorf("production: add %q: declared twice", c.Name)
	}
	c.Targets = maps.Clone(c.Targets)
	x := newComp(p, c)
	if c.Kind == Service {
		if err := x.makeChannel(); err != nil {
			return fmt.Errorf("production: add %q: %w", c.Name, err)
		}
	}
	p.comps[c.Name] = x
	p.order = append(p.order, x)
	return nil
}

// Substitute replaces the implementation of a declared component before
// Start (a test's stand-in for an operation that calls a real system).
// The component keeps its name, kind, settings and targets.
func (p *Production) Substitute(name string, svc flow.Service) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running.Load() {
		return fmt.Errorf("production: substitute %q: the production runs already", name)
	}
	x := p.comps[name]
	switch {
	case x == nil:
		return fmt.Errorf("production: substitute %q: %w%s", name, ErrUnknownTarget, p.knownLocked())
	case svc == nil:
		return fmt.Errorf("production: substitute %q: nil service", name)
	}
	old, oldSvc := x.ch, x.svc
	x.def.Service = svc
	x.svc = svc
	if x.def.Kind == Service {
		if err := x.makeChannel(); err != nil {
			x.ch, x.svc, x.def.Service = old, oldSvc, oldSvc
			return fmt.Errorf("production: substitute %q: %w", name, err)
		}
	}
	return nil
}

// Observe adds fn to the functions called with every send once it ended
// (sync, async and multi, from outside or from a component), before
// Start. fn must be safe for concurrent use; productiontest uses it to
// capture sends.
func (p *Production) Observe(fn func(Send)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running.Load() {
		return fmt.Errorf("production: observe: the production runs already")
	}
	p.observe = append(p.observe, fn)
	return nil
}

// Components returns the names of the components, in declaration order.
func (p *Production) Components() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(p.order))
	for i, x := range p.order {
		out[i] = x.def.Name
	}
	return out
}

// Component returns the declaration of the named component.
func (p *Production) Component(name string) (Component, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	x := p.comps[name]
	if x == nil {
		return Component{}, false
	}
	return x.def, true
}

// startOrder is operations, then processes, then services, each in
// declaration order: what a component sends to runs before it.
func (p *Production) startOrder() []*comp {
	var out []*comp
	for _, k := range []Kind{Operation, Process, Service} {
		for _, x := range p.order {
			if x.def.Kind == k {
				out = append(out, x)
			}
		}
	}
	return out
}

// Start checks the targets, then starts the operations, the processes and
// the business services, each kind in declaration order: each
// component's implementation is initialised once (flow.Initializer), and
// a business service's channel starts with its sources. On an error it
// stops what it started, in reverse order, and returns the error naming
// the component.
func (p *Production) Start(ctx context.Context) error {
	p.mu.Lock()
	if p.running.Load() {
		p.mu.Unlock()
		return fmt.Errorf("production %q: start: running already", p.name)
	}
	var errs []error
	for _, x := range p.order {
		for _, role := range slices.Sorted(maps.Keys(x.def.Targets)) {
			name := x.def.Targets[role]
			t := p.comps[name]
			switch {
			case t == nil:
				errs = append(errs, fmt.Errorf("%q: target %s: %w %q%s", x.def.Name, role, ErrUnknownTarget, name, p.knownLocked()))
			case t.def.Kind == Service:
				errs = append(errs, fmt.Errorf("%q: target %s: %q: %w", x.def.Name, role, name, ErrNotTarget))
			}
		}
	}
	if len(errs) > 0 {
		p.mu.Unlock()
		return fmt.Errorf("production %q: start: %w", p.name, errors.Join(errs...))
	}
	order := p.startOrder()
	p.started = nil
	p.running.Store(true) // the components' sends find the production running
	p.mu.Unlock()
	for _, x := range order {
		if err := x.start(ctx); err != nil {
			serr := p.stopStarted(context.WithoutCancel(ctx))
			p.running.Store(false)
			return fmt.Errorf("production %q: start: %w", p.name, errors.Join(err, serr))
		}
		p.mu.Lock()
		p.started = append(p.started, x)
		p.mu.Unlock()
	}
	p.log.Info("production started", "components", len(order))
	return nil
}

// Stop stops the components in the reverse of their start order: the
// business services first (their sources stop, their messages in flight
// finish until ctx ends), then the processes and the operations, each
// after the requests it is running ended (until ctx ends), closing each
// implementation once. Later sends fail with ErrStopped.
func (p *Production) Stop(ctx context.Context) error {
	p.mu.Lock()
	if !p.running.Load() {
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	err := p.stopStarted(ctx)
	p.running.Store(false)
	p.log.Info("production stopped")
	return err
}

func (p *Production) stopStarted(ctx context.Context) error {
	p.mu.Lock()
	started := p.started
	p.started = nil
	p.mu.Unlock()
	var errs []error
	for _, x := range slices.Backward(started) {
		if err := x.stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Running reports whether the production runs.
func (p *Production) Running() bool { return p.running.Load() }

// Channels returns the channels of the business services, in declaration
// order: what `flowrun serve` shows on its admin API and metrics.
func (p *Production) Channels() []*channel.Channel {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*channel.Channel
	for _, x := range p.order {
		if x.ch != nil {
			out = append(out, x.ch)
		}
	}
	return out
}

// known is ": expected one of a, b" for errors; p.mu held.
func (p *Production) knownLocked() string {
	var names []string
	for _, x := range p.order {
		if x.def.Kind != Service {
			names = append(names, x.def.Name)
		}
	}
	switch len(names) {
	case 0:
		return ": the production has no processes or operations"
	case 1:
		return ": expected " + names[0]
	}
	return ": expected one of " + strings.Join(names, ", ")
}

// lookup returns the named component; only called while running, when
// the map no longer changes.
func (p *Production) lookup(name string) *comp { return p.comps[name] }

// ComponentStatus is a snapshot of one component.
type ComponentStatus struct {
	// Name and Kind of the component.
	Name string `json:"name"`
	Kind string `json:"kind"`
	// State is stopped or running (a business service: its channel's
	// state).
	State string `json:"state"`
	// Running counts the requests it runs now; Processed those it ran to
	// an outcome, Failed those that ended with an error other than a Stop,
	// Rejected those that stopped.
	Running   int64 `json:"running"`
	Processed int64 `json:"processed"`
	Failed    int64 `json:"failed"`
	Rejected  int64 `json:"rejected"`
}

// Status returns the status of every component, in declaration order.
// A business service's counts are its channel's (channel.Status).
func (p *Production) Status() []ComponentStatus {
	p.mu.Lock()
	order := slices.Clone(p.order)
	p.mu.Unlock()
	out := make([]ComponentStatus, len(order))
	for i, x := range order {
		out[i] = x.status()
	}
	return out
}

func isFlow(s flow.Service) bool {
	_, ok := s.(*flow.Flow)
	return ok
}

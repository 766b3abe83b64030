package bus

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

// Broadcast is the destination that reaches every running service that
// has the action.
const Broadcast = "*"

// Well-known actions.
const (
	// Process is the default action of a service, and the action of
	// Self.SubmitMessage and of a service's sources unless
	// Service.SourceAction says otherwise.
	Process = "Process"
	// StateUpdate is the action [Bus.SetState] delivers the new state to.
	StateUpdate = "StateUpdate"
)

// Defaults.
const (
	// DefaultMailbox is the capacity of a service's mailbox when
	// Service.Mailbox is zero.
	DefaultMailbox = 256
	// DefaultRequestTimeout bounds a Request whose context has no
	// deadline, when Options.RequestTimeout is zero.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultCom is the destination of Self.SubmitMessage when
	// Options.Com is empty: the service that talks to the outside world.
	DefaultCom = "com"
	// DefaultMaxRestarts is how many restarts one message's Fatal errors
	// may cause when the restart policy's MaxAttempts is zero.
	DefaultMaxRestarts = 10
	// MaxCrashes sets a recovered message aside after this many runs in a
	// row that crashed the process (store.CrashedRuns).
	MaxCrashes = 3
)

// Errors of the bus. They are wrapped with the service and action
// concerned; test for them with errors.Is.
var (
	// ErrUnknownDestination: no service of that name, here or (with a
	// Transport) elsewhere.
	ErrUnknownDestination = errors.New("unknown destination")
	// ErrUnknownAction: the service has no action of that name.
	ErrUnknownAction = errors.New("unknown action")
	// ErrStopped: the service is stopped (or stopping); the message was
	// not queued and does not run.
	ErrStopped = errors.New("service stopped")
	// ErrDisabled: the custom service is stopped because the bus state is
	// not enabled; the message was not queued and does not run.
	ErrDisabled = errors.New("service disabled by the bus state (enabled: false)")
	// ErrMailboxFull: the mailbox is full and the service's policy is
	// [Fail]; the message was not queued.
	ErrMailboxFull = errors.New("mailbox full")
	// ErrInternal: internal services never stop while the bus runs.
	ErrInternal = errors.New("internal services never stop")
	// ErrBusStopped: the bus is not running.
	ErrBusStopped = errors.New("bus not running")
)

// Actions maps action names to what runs them: a flow.Service, such as a
// *flow.Flow or a flow.Func.
type Actions map[string]flow.Service

// Full says what a submit to a full mailbox does.
type Full int

const (
	// Block waits until the mailbox has room, the submitter's context
	// ends or the service stops (the default).
	Block Full = iota
	// Fail returns ErrMailboxFull at once.
	Fail
)

// Service declares one service of a bus. Only Name and Actions are
// required.
type Service struct {
	// Name is the service's destination. It must not be empty or "*".
	Name string
	// Actions are the service's actions: "Process" by convention, and
	// StateUpdate to receive state updates.
	Actions Actions
	// Internal services start first, never stop while the bus runs, and
	// keep running when the state disables the custom ones.
	Internal bool
	// Mailbox is the mailbox's capacity (0: DefaultMailbox).
	Mailbox int
	// WhenFull is what a submit to a full mailbox does (default Block).
	WhenFull Full
	// OnStart is called when the service starts (and after each restart),
	// before it takes messages: start the service's own work there with
	// Self.Go, which stops with the service. An error fails the start.
	OnStart func(ctx context.Context, self *Self) error
	// OnStop is called when the service stops (and before each restart),
	// after its mailbox drained and its Self.Go work ended.
	OnStop func(ctx context.Context, self *Self) error
	// Sources feed the service while it runs: each message a source
	// delivers is submitted to SourceAction (its JSON object payload is
	// the body; other payloads go under "body"), and the source is told
	// Ack once the message is queued (and recorded, with a store).
	Sources []channel.Source
	// SourceAction is the action sources submit to (default Process).
	SourceAction string
	// Store, when set, makes the mailbox durable (default Options.Store).
	Store store.Store
	// Restart, when set, replaces Options.Restart for this service.
	Restart *errors.Policy
}

// Options configure a [Bus].
type Options struct {
	// Store makes every mailbox durable (see the package doc); nil keeps
	// them in memory. The bus does not close it.
	Store store.Store
	// Logger receives the bus's and the services' logs (default
	// slog.Default()). Its handler should accept debug records: the bus
	// filters the services' records at info unless the state's Debug.
	Logger *slog.Logger
	// Restart is the backoff between restarts of a service after a panic
	// or a Fatal error (Initial, Multiplier, MaxInterval; jitter is not
	// applied), and how many restarts one message may cause (MaxAttempts;
	// 0: DefaultMaxRestarts). Default: 100ms doubling to 30s, 10 restarts.
	Restart *errors.Policy
	// RequestTimeout bounds a Request whose context has no deadline
	// (default DefaultRequestTimeout).
	RequestTimeout time.Duration
	// Com is the destination of Self.SubmitMessage (default DefaultCom).
	Com string
	// Transport carries messages to destinations that are not local
	// (nil: there are none).
	Transport Transport
}

// State is the desired state of a bus (microservicebus's msb-state).
type State struct {
	// Enabled runs the custom services; false stops them (internal ones
	// keep running).
	Enabled bool `json:"enabled"`
	// Debug lowers the services' log level to debug.
	Debug bool `json:"debug"`
	// Values are more entries of the state, delivered with StateUpdate.
	Values map[string]any `json:"-"`
}

// Map returns the state as the body of a StateUpdate message.
func (s State) Map() map[string]any {
	m := make(map[string]any, len(s.Values)+2)
	maps.Copy(m, s.Values)
	m["enabled"], m["debug"] = s.Enabled, s.Debug
	return m
}

// Bus routes messages to services by destination and action. Make one
// with [New], declare services with [Bus.Add], then [Bus.Start]. A Bus is
// safe for concurrent use.
type Bus struct {
	opts    Options
	log     *slog.Logger
	level   slog.LevelVar // the services' log level
	restart errors.Policy

	// table is services, for the lock-free lookups of submits; up mirrors
	// running for them.
	table atomic.Pointer[map[string]*service]
	// transportUp is true while the transport is started.
	transportUp atomic.Bool
	up          atomic.Bool

	mu       sync.RWMutex
	services map[string]*service
	order    []*service
	running  bool
	ctx      context.Context // the Start context, without its cancellation

	stateMu sync.Mutex // serializes SetState and Stop
	state   State      // guarded by mu

	bgMu     sync.Mutex
	bgClosed bool           // Stop began: no more background state changes
	bg       sync.WaitGroup // state changes of state steps
}

// New returns a bus with no services.
func New(opts Options) *Bus {
	b := &Bus{opts: opts, services: map[string]*service{}, state: State{Enabled: true}}
	b.log = opts.Logger
	if b.log == nil {
		b.log = slog.Default()
	}
	if b.opts.RequestTimeout <= 0 {
		b.opts.RequestTimeout = DefaultRequestTimeout
	}
	if b.opts.Com == "" {
		b.opts.Com = DefaultCom
	}
	b.restart = errors.Policy{Initial: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 30 * time.Second, MaxAttempts: 10}
	if opts.Restart != nil {
		b.restart = *opts.Restart
	}
	b.level.Set(slog.LevelInfo)
	return b
}

// Add declares a service. It fails on a bad declaration (no name, "*", a
// name taken, no action, a nil action, a bad restart policy) and once
// the bus runs.
func (b *Bus) Add(def Service) error {
	switch {
	case def.Name == "" || def.Name == Broadcast || strings.ContainsAny(def.Name, " \t\n."):
		return fmt.Errorf("bus: add service %q: a name must be a word other than %q", def.Name, Broadcast)
	case len(def.Actions) == 0:
		return fmt.Errorf("bus: add service %q: no actions", def.Name)
	case def.Mailbox < 0:
		return fmt.Errorf("bus: add service %q: mailbox %d must not be negative", def.Name, def.Mailbox)
	}
	for name, a := range def.Actions {
		if name == "" || a == nil {
			return fmt.Errorf("bus: add service %q: action %q: a name and a service are required", def.Name, name)
		}
	}
	for i, src := range def.Sources {
		if src == nil {
			return fmt.Errorf("bus: add service %q: source %d is nil", def.Name, i+1)
		}
	}
	if def.SourceAction == "" {
		def.SourceAction = Process
	}
	if len(def.Sources) > 0 && def.Actions[def.SourceAction] == nil {
		return fmt.Errorf("bus: add service %q: sources feed action %q: %w: %s", def.Name, def.SourceAction, ErrUnknownAction, actionList(def.Actions))
	}
	if err := b.restart.Validate(); err != nil {
		return fmt.Errorf("bus: restart policy: %w", err)
	}
	if def.Restart != nil {
		if err := def.Restart.Validate(); err != nil {
			return fmt.Errorf("bus: add service %q: restart policy: %w", def.Name, err)
		}
	}
	if def.Mailbox == 0 {
		def.Mailbox = DefaultMailbox
	}
	if def.Store == nil {
		def.Store = b.opts.Store
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.running {
		return fmt.Errorf("bus: add service %q: the bus runs already", def.Name)
	}
	if _, dup := b.services[def.Name]; dup {
		return fmt.Errorf("bus: add service %q: declared twice", def.Name)
	}
	s := newService(b, def)
	b.services[def.Name] = s
	b.order = append(b.order, s)
	table := maps.Clone(b.services)
	b.table.Store(&table)
	return nil
}

// actionList names the actions of a service, for errors.
func actionList(a Actions) string {
	names := slices.Sorted(maps.Keys(a))
	if len(names) == 1 {
		return "the service has " + names[0]
	}
	return "the service has " + strings.Join(names, ", ")
}

// Services returns the names of the services, in the order they were
// added.
func (b *Bus) Services() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]string, len(b.order))
	for i, s := range b.order {
		out[i] = s.def.Name
	}
	return out
}

// Start starts the internal services, then the custom ones unless the
// state is disabled, then the transport. On an error it stops what it
// started and returns the error naming the service.
func (b *Bus) Start(ctx context.Context) error {
	b.mu.Lock()
	if b.running {
		b.mu.Unlock()
		return fmt.Errorf("bus: start: running already")
	}
	b.running = true
	b.up.Store(true)
	b.ctx = context.WithoutCancel(ctx)
	enabled := b.state.Enabled
	order := slices.Clone(b.order)
	b.mu.Unlock()

	var started []*service
	fail := func(err error) error {
		for _, s := range slices.Backward(started) {
			if serr := s.stop(ctx, false); serr != nil {
				err = errors.Join(err, serr)
			}
		}
		b.mu.Lock()
		b.running = false
		b.up.Store(false)
		b.mu.Unlock()
		return fmt.Errorf("bus: start: %w", err)
	}
	for _, internal := range []bool{true, false} {
		for _, s := range order {
			if s.def.Internal != internal {
				continue
			}
			if !internal && !enabled {
				s.setDisabled(true)
				continue
			}
			if err := s.start(ctx); err != nil {
				return fail(err)
			}
			started = append(started, s)
		}
	}
	if t := b.opts.Transport; t != nil {
		var local []string
		for _, s := range order {
			local = append(local, s.def.Name)
		}
		if err := t.Start(ctx, local, b); err != nil {
			return fail(fmt.Errorf("transport: %w", err))
		}
		b.transportUp.Store(true)
	}
	return nil
}

// TransportReady reports whether the bus's transport is started (true
// when it has none): until then, the services of other processes cannot
// reach this bus's services, nor they theirs.
func (b *Bus) TransportReady() bool {
	return b.opts.Transport == nil || b.transportUp.Load()
}

// Stop stops the transport, the custom services (in reverse order), then
// the internal ones. Each drains its mailbox until ctx ends; the messages
// still queued then are kept to run first at the next start (a durable
// mailbox also keeps them for the next process), and a request waiting
// for one of them gets ErrStopped.
func (b *Bus) Stop(ctx context.Context) error {
	b.bgMu.Lock()
	b.bgClosed = true
	b.bgMu.Unlock()
	b.bg.Wait()
	defer func() {
		b.bgMu.Lock()
		b.bgClosed = false
		b.bgMu.Unlock()
	}()
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	b.mu.Lock()
	if !b.running {
		b.mu.Unlock()
		return nil
	}
	b.running = false
	b.up.Store(false)
	order := slices.Clone(b.order)
	b.mu.Unlock()
	var errs []error
	if t := b.opts.Transport; t != nil {
		b.transportUp.Store(false)
		if err := t.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("bus: stop: transport: %w", err))
		}
	}
	for _, internal := range []bool{false, true} {
		for _, s := range slices.Backward(order) {
			if s.def.Internal == internal {
				if err := s.stop(ctx, false); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}

// StartService starts a stopped custom service again (one StopService
// stopped). A custom service the state disabled starts when the state
// is enabled again (SetState); StartService refuses it meanwhile.
func (b *Bus) StartService(ctx context.Context, name string) error {
	s, err := b.local(name)
	if err != nil {
		return err
	}
	b.stateMu.Lock() // not while SetState changes what runs
	defer b.stateMu.Unlock()
	b.mu.RLock()
	running, enabled := b.running, b.state.Enabled
	b.mu.RUnlock()
	if !running {
		return fmt.Errorf("bus: start %q: %w", name, ErrBusStopped)
	}
	if !s.def.Internal && !enabled {
		return fmt.Errorf("bus: start %q: %w", name, ErrDisabled)
	}
	return s.start(ctx)
}

// StopService stops a custom service gracefully, as [Bus.Stop] stops
// each service; later messages to it fail with ErrStopped until
// StartService. Internal services are refused with ErrInternal.
func (b *Bus) StopService(ctx context.Context, name string) error {
	s, err := b.local(name)
	if err != nil {
		return err
	}
	if s.def.Internal {
		return fmt.Errorf("bus: stop %q: %w", name, ErrInternal)
	}
	return s.stop(ctx, false)
}

// lookup returns the named service, or nil.
func (b *Bus) lookup(name string) *service {
	if t := b.table.Load(); t != nil {
		return (*t)[name]
	}
	return nil
}

func (b *Bus) local(name string) (*service, error) {
	b.mu.RLock()
	s := b.services[name]
	b.mu.RUnlock()
	if s == nil {
		return nil, fmt.Errorf("bus: service %q: %w%s", name, ErrUnknownDestination, b.known())
	}
	return s, nil
}

// known is ": expected one of a, b" for errors.
func (b *Bus) known() string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	names := make([]string, len(b.order))
	for i, s := range b.order {
		names[i] = s.def.Name
	}
	switch len(names) {
	case 0:
		return ": the bus has no services"
	case 1:
		return ": expected " + names[0]
	}
	return ": expected one of " + strings.Join(names, ", ")
}

// Submit queues a message for the action of the destination and returns
// once it is queued (recorded first, with a store): fire and forget. The
// destination Broadcast queues it for every running service that has the
// action. body is the run's input, used as given: each run gets a copy of
// its top level, made when it runs, so do not modify body after Submit
// (a durable mailbox encodes it before Submit returns). See the package
// doc for the errors.
func (b *Bus) Submit(ctx context.Context, destination, action string, body map[string]any) error {
	return b.submit(ctx, "", destination, action, body, nil)
}

// Request queues a message like Submit and waits for the run's output
// context (without "meta"), or its error: the action's error as the flow
// returned it (errors.As finds a Stop's *errors.StopError and its reason),
// wrapped with the destination and action. It waits until ctx ends, or
// Options.RequestTimeout when ctx has no deadline; the message is then not
// run if it has not started, and canceled if it has.
func (b *Bus) Request(ctx context.Context, destination, action string, body map[string]any) (map[string]any, error) {
	return b.request(ctx, "", destination, action, body)
}

func (b *Bus) submit(ctx context.Context, from, dest, action string, body map[string]any, meta map[string]string) error {
	if dest == Broadcast {
		return b.broadcast(ctx, from, action, body)
	}
	s, running := b.lookup(dest), b.up.Load()
	if s == nil {
		if t := b.opts.Transport; t != nil && running {
			return t.Submit(ctx, &Message{ID: b.newID(), From: from, Destination: dest, Action: action, Body: body})
		}
		return fmt.Errorf("bus: submit to %q: %w%s", dest, ErrUnknownDestination, b.known())
	}
	e := envelopes.Get().(*envelope)
	e.from, e.action, e.body, e.meta, e.pooled = from, action, body, meta, true
	if err := s.deliver(ctx, e); err != nil {
		*e = envelope{}
		envelopes.Put(e)
		return err
	}
	return nil
}

// broadcast submits to every running service that has the action, once
// each, then hands the message to the transport; services that are not
// running are skipped. It returns the failures joined.
func (b *Bus) broadcast(ctx context.Context, from, action string, body map[string]any) error {
	err := b.localBroadcast(ctx, from, action, body)
	b.mu.RLock()
	running := b.running
	b.mu.RUnlock()
	if t := b.opts.Transport; t != nil && running {
		if terr := t.Submit(ctx, &Message{ID: b.newID(), From: from, Destination: Broadcast, Action: action, Body: body}); terr != nil {
			err = errors.Join(err, terr)
		}
	}
	return err
}

// localBroadcast is broadcast to the services of this bus only.
func (b *Bus) localBroadcast(ctx context.Context, from, action string, body map[string]any) error {
	b.mu.RLock()
	order := slices.Clone(b.order)
	b.mu.RUnlock()
	var errs []error
	for _, s := range order {
		if s.def.Actions[action] == nil || !s.accepting() {
			continue
		}
		if err := s.deliver(ctx, &envelope{from: from, action: action, body: body}); err != nil && !errors.Is(err, ErrStopped) && !errors.Is(err, ErrDisabled) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (b *Bus) request(ctx context.Context, from, dest, action string, body map[string]any) (map[string]any, error) {
	if dest == Broadcast {
		return nil, fmt.Errorf("bus: request to %q: a request has one destination; submit to broadcast", Broadcast)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.RequestTimeout)
		defer cancel()
	}
	s, running := b.lookup(dest), b.up.Load()
	if s == nil {
		if t := b.opts.Transport; t != nil && running {
			return t.Request(ctx, &Message{ID: b.newID(), From: from, Destination: dest, Action: action, Body: body})
		}
		return nil, fmt.Errorf("bus: request to %q: %w%s", dest, ErrUnknownDestination, b.known())
	}
	return b.requestLocal(ctx, s, from, action, body)
}

// requestLocal queues a request for s and waits for its reply, until ctx
// ends (Options.RequestTimeout when it has no deadline).
func (b *Bus) requestLocal(ctx context.Context, s *service, from, action string, body map[string]any) (map[string]any, error) {
	return b.requestLocalID(ctx, s, "", from, action, body)
}

// requestLocalID is requestLocal for a message with an id ("": a new one).
func (b *Bus) requestLocalID(ctx context.Context, s *service, id, from, action string, body map[string]any) (map[string]any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.RequestTimeout)
		defer cancel()
	}
	e := &envelope{id: id, from: from, action: action, body: body, ctx: ctx, reply: make(chan reply, 1)}
	if err := s.deliver(ctx, e); err != nil {
		return nil, err
	}
	select {
	case r := <-e.reply:
		return r.out, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("bus: request to %q action %q: no reply: %w", s.def.Name, action, ctx.Err())
	}
}

// State returns the bus's desired state.
func (b *Bus) State() State {
	b.mu.RLock()
	defer b.mu.RUnlock()
	st := b.state
	st.Values = maps.Clone(st.Values)
	return st
}

// SetState sets the desired state. Debug takes effect at once. Enabling
// starts the custom services the state had disabled; then every running
// service that has a StateUpdate action gets the state as a message
// (body: enabled, debug and Values), queued like any other; then
// disabling stops the custom services (each runs its mailbox first, the
// StateUpdate included). Internal services keep running. It returns the
// services' start and stop errors joined. It waits for the services it
// stops to run their mailboxes: an action must not call it (it would wait
// for itself); a flow uses the state step, applied after its run.
func (b *Bus) SetState(ctx context.Context, st State) error {
	b.stateMu.Lock()
	defer b.stateMu.Unlock()
	st.Values = maps.Clone(st.Values)
	b.mu.Lock()
	old := b.state
	b.state = st
	running := b.running
	order := slices.Clone(b.order)
	b.mu.Unlock()
	if st.Debug {
		b.level.Set(slog.LevelDebug)
	} else {
		b.level.Set(slog.LevelInfo)
	}
	b.log.Info("bus state", "enabled", st.Enabled, "debug", st.Debug)
	var errs []error
	if !running {
		for _, s := range order {
			if !s.def.Internal {
				s.setDisabled(!st.Enabled)
			}
		}
		return nil
	}
	if st.Enabled && !old.Enabled {
		for _, s := range order {
			if !s.def.Internal && s.isDisabled() {
				s.setDisabled(false)
				if err := s.start(ctx); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := b.broadcast(ctx, "", StateUpdate, st.Map()); err != nil {
		errs = append(errs, err)
	}
	if !st.Enabled && old.Enabled {
		for _, s := range slices.Backward(order) {
			if s.def.Internal {
				continue
			}
			if err := s.stop(ctx, true); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Idle reports whether no service has a message pending (queued or
// running), in two snapshots of every service in a row: a run that
// submits to another service ends after its message is pending there.
func (b *Bus) Idle() bool {
	for range 2 {
		for _, st := range b.Status() {
			if st.Pending > 0 {
				return false
			}
		}
	}
	return true
}

// setStateLater applies a state step's state in the background: the
// service that ran the step may be one the change stops or updates. Stop
// waits for it; once Stop began, the change is dropped (and logged).
func (b *Bus) setStateLater(st State) {
	b.bgMu.Lock()
	defer b.bgMu.Unlock()
	if b.bgClosed {
		b.log.Warn("bus stopping: state change not applied", "enabled", st.Enabled, "debug", st.Debug)
		return
	}
	b.bg.Go(func() {
		if err := b.SetState(b.baseContext(), st); err != nil {
			b.log.Error("state change failed", "error", err)
		}
	})
}

// ServiceStatus is a snapshot of one service.
type ServiceStatus struct {
	// Name is the service's name; Internal says it never stops.
	Name     string `json:"name"`
	Internal bool   `json:"internal"`
	// State is stopped, starting, running, restarting or stopping;
	// Disabled says a custom service is stopped by the bus state.
	State    string `json:"state"`
	Disabled bool   `json:"disabled,omitempty"`
	// Queued counts the messages in the mailbox; Capacity is its size.
	Queued   int `json:"queued"`
	Capacity int `json:"capacity"`
	// Pending counts the messages submitted and not yet run to their end
	// (queued, running, or held for the next start).
	Pending int64 `json:"pending"`
	// Processed counts messages run to an outcome, Failed those whose
	// run failed (any error but a Stop), Rejected those that stopped.
	Processed int64 `json:"processed"`
	Failed    int64 `json:"failed"`
	Rejected  int64 `json:"rejected"`
	// Restarts counts restarts after panics and Fatal errors, Panics the
	// panics.
	Restarts  int64  `json:"restarts"`
	Panics    int64  `json:"panics"`
	LastError string `json:"last_error,omitempty"`
}

// Status returns the status of every service, in the order they were
// added.
func (b *Bus) Status() []ServiceStatus {
	b.mu.RLock()
	order := slices.Clone(b.order)
	b.mu.RUnlock()
	out := make([]ServiceStatus, len(order))
	for i, s := range order {
		out[i] = s.status()
	}
	return out
}

package channel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/internal/redact"
)

// Config describes a channel.
type Config struct {
	// Name identifies the channel in logs, metrics and errors. Required.
	Name string
	// Flow processes each message. Nil: a channel with no steps, which
	// records each message and answers it with its context (the payload's
	// keys and meta), as done.
	Flow *flow.Flow
	// Sources feed the channel; none is fine for a channel driven by
	// Handle, Inject and Replay only.
	Sources []Source
	// Store records every message and its outcome (default: in memory).
	// The channel does not close a store it was given.
	Store store.Store
	// Restart is the backoff between restarts of the flow's services after
	// a Fatal error, and how many restarts one message may cause before it
	// is left for later (default: 100ms doubling to 30s, 10 restarts).
	Restart *errors.Policy
	// RetryAfter is the redelivery delay a source is given when a message's
	// retries ran out and the error carried no hint (default 5s).
	RetryAfter time.Duration
	// OrderKey, when set, makes messages with the same key run one at a
	// time, in the order they reach the channel. Messages with different
	// keys, or an empty key, run concurrently.
	OrderKey func(*message.Message) string
	// Logger receives the channel's logs (default slog.Default()).
	Logger *slog.Logger
	// MaxDeliveries, when positive, dead-letters a message that has failed
	// with a Retry this many times: instead of Nack (redeliver later) the
	// source is told Fail (an HTTP 500, a file moved to failed/, a broker's
	// dead-letter subject) and the message goes to state dead
	// (store.Dead), where it stays, not run again when delivered again,
	// until it is replayed by hand. Zero: always Nack.
	MaxDeliveries int
	// MaxCrashes sets aside a message whose runs keep killing the process:
	// when this many runs of a message in a row ended with no outcome
	// recorded (the process crashed, was killed or exited during each, see
	// store.CrashedRuns), the message is not run again automatically, not
	// at the next start and not when its source delivers it again. It is
	// moved to state dead (store.Dead) with outcome fatal and the error
	// "gave up after N crashed runs" (see [SetAside]), where `flowrun
	// messages --state dead` finds it and Replay runs it again by hand. Zero means
	// DefaultMaxCrashes; negative: never set a message aside.
	MaxCrashes int
	// MaxInFlight bounds the messages the channel runs at once, new and
	// recovered. A delivery beyond it is not recorded nor run: it is left
	// with ErrBusy (HTTP 503 with Retry-After), unless its context was
	// made by [WaitWhenBusy] (sources that cannot redeliver soon: folders,
	// schedules), which waits for a free slot. Zero means
	// DefaultMaxInFlight; negative: no bound.
	MaxInFlight int
	// Observer, when set, observes each run of a message (a span per run
	// with tracing); see [RunObserver].
	Observer RunObserver
	// NoTrace skips recording each run's trace with its message (it is
	// recorded by default; it costs a few microseconds per message). The
	// store keeps the run's outcome and a rejection's reason either way,
	// so a rejected message delivered again is answered with its reason
	// with or without traces.
	NoTrace bool
	// Redact lists keys whose values are secrets: dotted paths into the
	// run's context ("password", "card.number"; a list on the way is
	// entered element by element). The context the store keeps has them
	// replaced by "[redacted]", and their text (4 characters or more) is
	// masked in what is kept or logged of the run: the stored error and
	// reason, the trace's error texts, the channel's log lines. The run
	// itself, and the answer a source gets, see the values. The payload,
	// which a replay runs again, is kept as received. The run's context
	// carries the paths, so a logger that masks them (flowrun's does)
	// masks what a log step's keys: print.
	Redact []string
	// Durable journals each completed step of a run in the store
	// (`durable: steps`), which must implement store.Journal (else New
	// fails with [ErrNoJournal]): before the next step starts, the step's
	// context delta, path and attempts are written. A run of the message
	// again (after a crash, a Fatal restart, a redelivery, a replay of an
	// owed message) restores the context, skips the completed steps (the
	// trace shows them resumed, with their original times) and goes on at
	// the first step not completed. Elements of an Each, branches of an
	// All and whole Until loops are units of their own; taps are not
	// journaled. Steps that wait ([flow.Parker]: `wait`, a long `sleep`)
	// park the message in state waiting, holding no goroutine, until a
	// timer or [Channel.Signal] wakes it, also from inside an element, a
	// branch or a loop (see [flow.Journal]). A saga's compensation is
	// journaled: a message whose saga began compensating finishes it
	// when it runs again, each undo once, and never runs it forward (see
	// [flow.Saga]).
	Durable bool
	// JournalEffects relaxes Durable for steps without effects
	// ([flow.Pure]: set, stop, template, log, a flow.Step with
	// flow.NoEffects): such a step is journaled with the next write (the
	// next step with effects, an element or branch, a park, the end of a
	// failed run) instead of before the next step starts, so a crash may
	// run it again; a step with effects is still journaled before the
	// next step starts, with the steps without effects before it, so it
	// never runs again once completed (`durable: effects`).
	JournalEffects bool
	// RestartOnChange runs a durable message whose flow changed since
	// its journal was written from the top (`on_change: restart`) instead
	// of leaving it in state error naming the change.
	RestartOnChange bool
	// Sinks receive the output of every run that succeeds, in order,
	// after the flow and before the outcome is recorded and the source is
	// told (an HTTP request answered, a NATS message acked): each gets a
	// message with the run's id, payload and meta and the output context
	// (meta included) as Context. A sink's failure fails the message with
	// a Retry error (recorded as error, delivered again by its source,
	// then sent to every sink again: sinks dedupe by message id). The
	// channel closes the sinks that implement io.Closer when it stops.
	Sinks []Sink
	// Hooks are flows run after each message's outcome is settled (on
	// ok, on failure, on reject, on drop, finally); see [Hooks].
	Hooks Hooks
	// OnStateChange, when set, is told every change of the channel's
	// state (stopped, starting, running, restarting, stopping), with its
	// cause, in the order they happen, one at a time. It runs on the
	// goroutine that changes the state (Start, Stop, a run that hit a
	// Fatal): it must return soon and must not call Start or Stop.
	OnStateChange func(StateChange)
	// DeferRecovery makes Start leave the messages owed in the store
	// alone: [Channel.RecoverOwed] runs them again later. It is for a
	// channel that takes over from another instance still draining on the
	// same store (serve's hot reload): that one's messages in flight are
	// processing, not owed, until it stopped.
	DeferRecovery bool
}

// PassStep is the one step of the flow of a channel configured without
// one (Config.Flow nil): it changes nothing.
const PassStep = "pass"

// Defaults of Config fields.
const (
	// DefaultMaxCrashes is the default of Config.MaxCrashes.
	DefaultMaxCrashes = 3
	// DefaultMaxInFlight is the default of Config.MaxInFlight.
	DefaultMaxInFlight = 1024
	// RecoverConcurrency bounds how many owed messages a starting channel
	// runs again at once; it is also at most half of MaxInFlight, so that
	// new messages are served while owed ones run.
	RecoverConcurrency = 16
	// BusyRetryAfter is the Result.RetryAfter of a delivery left because
	// the channel was busy (ErrBusy).
	BusyRetryAfter = time.Second
)

// ErrBusy is wrapped by the error of a delivery that found the channel
// running Config.MaxInFlight messages already: it was not recorded, and
// is left for the source to deliver again after BusyRetryAfter. The
// error is a Retry (errors.KindRetry).
var ErrBusy = errors.New("busy: too many messages in flight")

type waitKey struct{}

// WaitWhenBusy returns a context for Handle and Inject that waits for a
// free slot when the channel is busy (Config.MaxInFlight), instead of
// leaving the message with ErrBusy at once. Sources that cannot deliver a
// message again soon (a watched folder, a schedule, a poll) use it; an
// HTTP source answers 503 with Retry-After instead, so that waiting
// requests do not pile up.
func WaitWhenBusy(ctx context.Context) context.Context {
	return context.WithValue(ctx, waitKey{}, true)
}

// ErrSetAside is wrapped by the error of a delivery of a message that was
// set aside, in state dead: after crashed runs (see Config.MaxCrashes) or
// dead-lettered after Config.MaxDeliveries. It is not run again until it
// is replayed by hand.
var ErrSetAside = errors.New("message set aside (state dead); replay it by hand")

// SetAside reports whether rec is a message set aside: in state dead
// (store.Dead), or, as stores written by earlier versions keep it, in
// state error with outcome fatal, a pair no run records (a Fatal error
// leaves its message owed).
func SetAside(rec *store.Record) bool {
	return rec != nil && (rec.State == store.Dead || rec.State == store.Error && rec.Outcome == errors.KindFatal)
}

// Channel runs a flow for every message its sources deliver, recording
// each message in a store before the run and its outcome after, so that
// nothing accepted is lost: messages left unfinished by a crash are run
// again when the channel starts.
//
// A supervisor applies the control errors: Stop rejects the message (it is
// acked, never redelivered); a Retry whose attempts ran out fails it with a
// redelivery delay; Fatal closes and re-initialises the flow's services
// under the restart backoff and runs the message again; a canceled run
// leaves the message owed. A panic is a failure.
//
// A Channel is safe for concurrent use. Only [New] makes one: the methods
// of a zero Channel (or a nil *Channel) do nothing; those that return an
// error return one wrapping [ErrNotBuilt], Handle and Inject a Fail result
// carrying it, the others an empty value.
type Channel struct {
	cfg     Config
	log     *slog.Logger
	store   store.Store
	restart errors.Policy
	redact  redact.Paths
	order   keyedLock
	ids     keyedLock
	slots   chan struct{} // one per message running; nil: no bound

	gate sync.RWMutex // runs hold it shared; a restart holds it exclusively
	gen  uint64       // restart generation, guarded by gate

	evMu     sync.Mutex // held while a state change is made and told (transition)
	mu       sync.Mutex
	state    string
	stopIn   context.CancelFunc // stops intake
	intake   context.Context    // canceled by stopIn (RecoverOwed)
	hard     context.Context    // canceled when a Stop's deadline passes
	hardStop context.CancelFunc
	srcDone  chan struct{}
	srcErrs  []error

	inflight sync.WaitGroup
	running  atomic.Int64
	owed     atomic.Int64 // owed messages whose recovery has not ended
	restarts atomic.Int64
	counts   [7]atomic.Int64 // by outcome: done, rejected, error, left, duplicate, waiting, dropped
	hookErrs atomic.Int64    // hooks that failed
	lastErr  atomic.Value    // string
	health   health          // whether the store can be written
	durable  *durable        // nil: not durable
}

// Channel states reported by [Channel.Status].
const (
	StateStopped    = "stopped"
	StateStarting   = "starting"
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateStopping   = "stopping"
)

// ErrIDReused is wrapped by the Stop error of a message whose ID is stored
// already for a different request: both carry a [message.MetaRequestHash]
// and the hashes differ (a client reused an Idempotency-Key with another
// body). The message is not run and nothing is stored; the stored one is
// not shown.
var ErrIDReused = errors.New("message id reused with a different request")

// ErrNotBuilt is wrapped by the errors of the methods of a Channel that
// [New] did not make.
var ErrNotBuilt = errors.New("not built")

// errNotBuilt is the error of a method of c when New did not make c, else
// nil.
func (c *Channel) errNotBuilt() error {
	switch {
	case c == nil:
		return fmt.Errorf("channel: %w: a nil *Channel; make one with channel.New", ErrNotBuilt)
	case c.log == nil: // New always sets it
		return fmt.Errorf("channel: %w: a zero Channel; make one with channel.New", ErrNotBuilt)
	}
	return nil
}

// New returns a stopped channel. It checks the configuration.
func New(cfg Config) (*Channel, error) {
	if cfg.Name == "" {
		return nil, errors.New("channel: name is required")
	}
	if cfg.Flow == nil {
		f, err := flow.New(cfg.Name, flow.Step(PassStep, func(context.Context, *fc.Context) error { return nil })).Build()
		if err != nil {
			return nil, fmt.Errorf("channel %q: %w", cfg.Name, err)
		}
		cfg.Flow = f
	}
	for i, s := range cfg.Sources {
		if s == nil {
			return nil, fmt.Errorf("channel %q: source %d is nil", cfg.Name, i+1)
		}
	}
	c := &Channel{cfg: cfg, state: StateStopped, store: cfg.Store, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("channel", cfg.Name)
	if c.store == nil {
		c.store = store.NewMemory()
	}
	c.health.c = c
	if cfg.Durable {
		d, err := newDurable(c.store)
		if err != nil {
			return nil, fmt.Errorf("channel %q: durable: steps: %w", cfg.Name, err)
		}
		c.durable = d
	}
	c.store = &watched{Store: c.store, h: &c.health}
	c.restart = errors.Policy{Initial: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 30 * time.Second, MaxAttempts: 10}
	if cfg.Restart != nil {
		if err := cfg.Restart.Validate(); err != nil {
			return nil, fmt.Errorf("channel %q: restart policy: %w", cfg.Name, err)
		}
		c.restart = *cfg.Restart
	}
	if c.cfg.RetryAfter <= 0 {
		c.cfg.RetryAfter = 5 * time.Second
	}
	if c.cfg.MaxCrashes == 0 {
		c.cfg.MaxCrashes = DefaultMaxCrashes
	}
	if c.cfg.MaxInFlight == 0 {
		c.cfg.MaxInFlight = DefaultMaxInFlight
	}
	if c.cfg.MaxInFlight > 0 {
		c.slots = make(chan struct{}, c.cfg.MaxInFlight)
	}
	if c.cfg.MaxDeliveries < 0 {
		return nil, fmt.Errorf("channel %q: max deliveries must not be negative, got %d", cfg.Name, cfg.MaxDeliveries)
	}
	var err error
	if c.redact, err = redact.Parse(cfg.Redact); err != nil {
		return nil, fmt.Errorf("channel %q: %w", cfg.Name, err)
	}
	c.lastErr.Store("")
	return c, nil
}

// Name returns the channel's name ("" for a Channel New did not make).
func (c *Channel) Name() string {
	if c == nil {
		return ""
	}
	return c.cfg.Name
}

// Store returns the channel's message store (nil for a Channel New did not
// make).
func (c *Channel) Store() store.Store {
	if c == nil {
		return nil
	}
	return unwatched(c.store)
}

// Flow returns the channel's flow (nil for a Channel New did not make).
func (c *Channel) Flow() *flow.Flow {
	if c == nil {
		return nil
	}
	return c.cfg.Flow
}

// Start probes the store (see store.Prober; a store that cannot be
// written fails Start with [ErrStoreNotWritable] and the cause),
// initialises the flow's services, starts the sources, and returns:
// new messages are served at once. The messages a previous process left
// unfinished in the store (oldest first) are run again meanwhile, in the
// background, at most RecoverConcurrency (and half of MaxInFlight) at a
// time; [Status] counts those still owed in Recovering. A message whose
// runs keep crashing the process is set aside instead (see MaxCrashes).
// A source that fails later is logged and reported by [Channel.Status].
func (c *Channel) Start(ctx context.Context) error {
	if err := c.errNotBuilt(); err != nil {
		return err
	}
	if !c.transition(StateStarting, nil, StateStopped) {
		c.mu.Lock()
		st := c.state
		c.mu.Unlock()
		return fmt.Errorf("channel %q: start: already %s", c.cfg.Name, st)
	}
	hard, hardStop := context.WithCancel(context.WithoutCancel(ctx))
	c.mu.Lock()
	c.hard, c.hardStop = hard, hardStop
	c.mu.Unlock()

	fail := func(err error) error {
		err = fmt.Errorf("channel %q: start: %w", c.cfg.Name, err)
		c.hardStop()
		c.transition(StateStopped, err)
		return err
	}
	if err := c.probeStore(ctx); err != nil {
		return fail(err)
	}
	if err := c.cfg.Flow.Init(ctx); err != nil {
		return fail(err)
	}
	hooks := c.cfg.Hooks.all()
	for i, h := range hooks {
		if err := h.Init(ctx); err != nil {
			errs := []error{fmt.Errorf("hook %s: %w", h.Name(), err)}
			for _, done := range hooks[:i] {
				errs = append(errs, done.Close(ctx))
			}
			return fail(errors.Join(append(errs, c.cfg.Flow.Close(ctx))...))
		}
	}
	var owed []*store.Record
	if !c.cfg.DeferRecovery {
		var err error
		if owed, err = store.Recover(ctx, c.store); err != nil {
			errs := []error{err, c.cfg.Flow.Close(ctx)}
			for _, h := range hooks {
				errs = append(errs, h.Close(ctx))
			}
			return fail(errors.Join(errs...))
		}
	}

	intake, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	var wg sync.WaitGroup
	c.owed.Store(int64(len(owed)))
	c.mu.Lock()
	c.stopIn, c.srcDone, c.srcErrs, c.intake = stop, done, nil, intake
	c.mu.Unlock()
	// Running before the sources start: a source may deliver at once, and
	// a channel refuses deliveries while it is not running.
	c.transition(StateRunning, nil, StateStarting)
	if len(owed) > 0 {
		wg.Go(func() { c.recoverAll(intake, context.WithoutCancel(ctx), owed) })
	}
	if c.durable != nil {
		wg.Go(func() { c.timers(intake, context.WithoutCancel(ctx)) })
	}
	for _, src := range c.cfg.Sources {
		wg.Go(func() {
			if err := src.Run(intake, c); err != nil && intake.Err() == nil {
				c.log.Error("source failed", "source", src.Name(), "error", err)
				c.mu.Lock()
				c.srcErrs = append(c.srcErrs, fmt.Errorf("source %s: %w", src.Name(), err))
				c.mu.Unlock()
				c.lastErr.Store(err.Error())
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	c.log.Info("channel started", "sources", len(c.cfg.Sources), "owed", len(owed))
	return nil
}

// recoverAll runs the owed messages again, a few at a time, until they are
// all run or intake stops (the rest stay owed for the next start).
func (c *Channel) recoverAll(intake, ctx context.Context, owed []*store.Record) {
	workers := RecoverConcurrency
	if c.cfg.MaxInFlight > 0 {
		workers = max(1, min(workers, c.cfg.MaxInFlight/2))
	}
	next := make(chan *store.Record)
	var wg sync.WaitGroup
	for range min(workers, len(owed)) {
		wg.Go(func() {
			for rec := range next {
				c.recoverSlot(intake, ctx, rec)
				c.owed.Add(-1)
			}
		})
	}
	n := 0
feed:
	for _, rec := range owed {
		select {
		case next <- rec:
			n++
		case <-intake.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	c.owed.Store(0)
	c.log.Info("recovery finished", "owed", len(owed), "taken", n)
}

// recoverSlot runs one owed message in a slot of MaxInFlight.
func (c *Channel) recoverSlot(intake, ctx context.Context, rec *store.Record) {
	c.inflight.Add(1)
	defer c.inflight.Done()
	if c.slots != nil {
		select {
		case c.slots <- struct{}{}:
			defer func() { <-c.slots }()
		case <-intake.Done():
			return // stopping: still owed
		}
	}
	if intake.Err() != nil {
		return
	}
	c.recoverOne(intake, ctx, rec)
}

// Stop stops the channel gracefully: sources stop taking messages, the
// messages in flight finish, and the flow's services are closed. When ctx
// ends first, the runs still in flight are canceled (their messages stay
// owed, to run again on the next start) and Stop returns ctx's error after
// closing the services.
func (c *Channel) Stop(ctx context.Context) error {
	if err := c.errNotBuilt(); err != nil {
		return err
	}
	if !c.transition(StateStopping, nil, StateRunning) {
		c.mu.Lock()
		st := c.state
		c.mu.Unlock()
		if st == StateStopped {
			return nil
		}
		return fmt.Errorf("channel %q: stop: %s", c.cfg.Name, st)
	}
	c.mu.Lock()
	stop, done := c.stopIn, c.srcDone
	c.mu.Unlock()

	stop()
	var drainErr error
	drained := make(chan struct{})
	go func() {
		<-done
		c.inflight.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-ctx.Done():
		drainErr = fmt.Errorf("channel %q: stop: drain: %w", c.cfg.Name, ctx.Err())
		c.hardStop()
		<-drained
	}
	closeErr := errors.Join(c.cfg.Flow.Close(context.WithoutCancel(ctx)), c.closeSinks())
	for _, h := range c.cfg.Hooks.all() {
		if err := h.Close(context.WithoutCancel(ctx)); err != nil {
			closeErr = errors.Join(closeErr, fmt.Errorf("hook %s: %w", h.Name(), err))
		}
	}
	if closeErr != nil {
		closeErr = fmt.Errorf("channel %q: stop: %w", c.cfg.Name, closeErr)
	}
	err := errors.Join(drainErr, closeErr)
	c.mu.Lock()
	c.hardStop()
	c.mu.Unlock()
	c.transition(StateStopped, err)
	c.log.Info("channel stopped")
	return err
}

// Status is a snapshot of a channel's state and counters.
type Status struct {
	Name     string `json:"name"`      // the channel's name
	State    string `json:"state"`     // StateStopped, StateRunning, ...
	InFlight int64  `json:"in_flight"` // messages being processed
	// Recovering counts the owed messages a start found (left unfinished
	// by a previous process) whose run again has not ended yet, running
	// ones included; they run in the background while new messages are
	// served.
	Recovering int64 `json:"recovering"`
	Restarts   int64 `json:"restarts"` // service restarts after Fatal errors
	// Outcomes counts messages by what became of them: done, rejected,
	// error (the store states they ended in), left (not finished: to be
	// redelivered or run again at the next start), duplicate (a
	// finished or waiting message delivered again, answered from the
	// store), waiting (runs of a durable channel that parked) and
	// dropped (consumed silently by errors.Drop; stored as done). A
	// delivery refused because the channel was busy or not running
	// (ErrBusy, ErrStopped) counts as left.
	Outcomes map[string]int64 `json:"outcomes"`
	// HookErrors counts the hooks (Config.Hooks) that failed.
	HookErrors int64    `json:"hook_errors"`
	Sources    []string `json:"sources"`              // the sources' names
	LastError  string   `json:"last_error,omitempty"` // the text of the latest error
	// StoreError is the latest store write failure while the store cannot
	// be written (a full disk, a read-only database): the last write
	// failed, and no write or probe has succeeded since. Deliveries are
	// refused meanwhile (HTTP 503 with Retry-After). Empty while the
	// store is writable.
	StoreError string `json:"store_error,omitempty"`
}

var outcomeNames = [7]string{"done", "rejected", "error", "left", "duplicate", "waiting", "dropped"}

// Status returns the channel's state and counters. For a Channel New did
// not make it is a stopped channel with no counters, whose LastError says
// so.
func (c *Channel) Status() Status {
	if err := c.errNotBuilt(); err != nil {
		return Status{Name: c.Name(), State: StateStopped, LastError: err.Error()}
	}
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	s := Status{Name: c.cfg.Name, State: st, InFlight: c.running.Load(), Recovering: c.owed.Load(), Restarts: c.restarts.Load(),
		Outcomes: map[string]int64{}, LastError: c.lastErr.Load().(string), StoreError: c.health.error(), HookErrors: c.hookErrs.Load()}
	for i, n := range outcomeNames {
		s.Outcomes[n] = c.counts[i].Load()
	}
	for _, src := range c.cfg.Sources {
		s.Sources = append(s.Sources, src.Name())
	}
	return s
}

// Handle records m and runs the flow on it; it implements [Handler] for
// sources. A message whose ID is already stored and finished (done or
// rejected) is not run again: its stored outcome is returned (sources may
// deliver a message twice; a restart re-offers files).
//
// The channel must be running (Start; it may have no sources): a
// channel stopped, never started, starting or stopping refuses the
// message at once with an error wrapping [ErrStopped], records nothing
// and runs nothing (Settle Leave). A message Handle took before Stop
// began is finished by the graceful stop.
func (c *Channel) Handle(ctx context.Context, m *message.Message) Result {
	return c.accept(ctx, m, nil)
}

// Inject is Handle starting at the named step: the steps before it are
// skipped (see flow.From). Use it to resume a message at a step.
func (c *Channel) Inject(ctx context.Context, m *message.Message, step string) Result {
	return c.accept(ctx, m, []flow.RunOption{flow.From(step)})
}

// Replay runs the stored message with the given ID again, whatever its
// state (a dead letter included), and records the new outcome in its
// history. It works on a running channel and on a stopped one (`flowrun
// messages replay` replays without starting the channel's sources); a
// channel starting or stopping refuses it with [ErrStopped]. On a durable channel (Config.Durable) a finished message
// (done, rejected, error, dead) runs from the top: its journal is cleared
// first; an owed or waiting one resumes after its completed steps (see
// [Channel.Resume]).
func (c *Channel) Replay(ctx context.Context, id string) (Result, error) {
	return c.replay(ctx, id, "", false)
}

// Resume is Replay that resumes a message of a durable channel after the
// steps its journal holds, whatever its state: a message that failed at
// its fourth step runs from the fourth step, once the cause is fixed. On
// a channel that is not durable it is Replay.
func (c *Channel) Resume(ctx context.Context, id string) (Result, error) {
	return c.replay(ctx, id, "", true)
}

// ReplayFrom is Replay starting at the named step (see flow.From): the
// steps before it are skipped, and the run starts from the context the
// message's last run stored, so what those steps wrote is kept (a
// message never run starts from its payload). Use it to resume a message
// after the step that failed was fixed, without running again the steps
// that succeeded (a charge, a mail), on any channel (a durable one's
// journal is cleared first: the stored context stands for it). A key
// masked by the channel's redaction is stored masked and so is read
// masked.
func (c *Channel) ReplayFrom(ctx context.Context, id, step string) (Result, error) {
	if step == "" {
		return Result{}, fmt.Errorf("channel %q: replay %q: empty step name", c.cfg.Name, id)
	}
	if err := c.errNotBuilt(); err != nil {
		return Result{}, err
	}
	var names []string
	var walk func(n *flow.Node)
	walk = func(n *flow.Node) {
		if n == nil {
			return
		}
		names = append(names, n.Name)
		for _, ch := range n.Children {
			walk(ch)
		}
	}
	g := c.cfg.Flow.Graph()
	if g != nil {
		for _, ch := range g.Children {
			walk(ch)
		}
	}
	if !slices.Contains(names, step) {
		return Result{}, fmt.Errorf("channel %q: replay %q: flow %q has no step %q (steps: %s): %w",
			c.cfg.Name, id, c.cfg.Flow.Name(), step, strings.Join(names, ", "), ErrNoStep)
	}
	return c.replay(ctx, id, step, false)
}

// admitReplay admits a replay: on a running channel it counts in flight
// like a delivery (a graceful Stop waits for it); on a stopped one it
// runs by itself (flowrun messages replay: no sources, no recovery); a
// channel starting or stopping refuses it with ErrStopped.
func (c *Channel) admitReplay() (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case StateRunning, StateRestarting:
		c.inflight.Add(1)
		return c.inflight.Done, nil
	case StateStopped:
		return func() {}, nil
	}
	return nil, fmt.Errorf("channel %q: replay: %w (%s)", c.cfg.Name, ErrStopped, c.state)
}

// ErrNoStep is wrapped by the error of ReplayFrom given a step its flow
// does not have; the message is left as it was.
var ErrNoStep = errors.New("no such step")

func (c *Channel) replay(ctx context.Context, id, from string, resume bool) (Result, error) {
	if err := c.errNotBuilt(); err != nil {
		return Result{}, err
	}
	release, err := c.admitReplay()
	if err != nil {
		return Result{}, err
	}
	defer release()
	rec, err := c.store.Get(ctx, id)
	if err != nil {
		return Result{}, fmt.Errorf("channel %q: replay: %w", c.cfg.Name, err)
	}
	unlock, err := c.lock(ctx, rec.Message)
	if err != nil {
		return Result{}, fmt.Errorf("channel %q: replay %q: %w", c.cfg.Name, id, err)
	}
	defer unlock()
	if c.durable != nil && !resume {
		if rec, err = c.store.Get(ctx, id); err != nil {
			return Result{}, fmt.Errorf("channel %q: replay: %w", c.cfg.Name, err)
		}
		switch rec.State {
		case store.Done, store.Rejected, store.Error, store.Dead:
			if err := c.durable.j.ClearJournal(ctx, id); err != nil {
				return Result{}, fmt.Errorf("channel %q: replay: %w", c.cfg.Name, err)
			}
		default:
			if from != "" {
				if err := c.durable.j.ClearJournal(ctx, id); err != nil {
					return Result{}, fmt.Errorf("channel %q: replay: %w", c.cfg.Name, err)
				}
			}
		}
	}
	if from == "" {
		return c.run(ctx, rec.Message, nil, false, nil), nil
	}
	var base []byte
	if rec.Message.Context != nil {
		if base, err = json.Marshal(rec.Message.Context); err != nil {
			return Result{}, fmt.Errorf("channel %q: replay %q: stored context: %w", c.cfg.Name, id, err)
		}
	}
	return c.run(ctx, rec.Message, []flow.RunOption{flow.From(from)}, false, base), nil
}

func (c *Channel) accept(ctx context.Context, m *message.Message, opts []flow.RunOption) Result {
	if err := c.errNotBuilt(); err != nil {
		return Result{Settle: Fail, Outcome: errors.KindFailed, State: store.Error, Message: m, Err: err}
	}
	if m == nil {
		return Result{Settle: Fail, Outcome: errors.KindFailed, State: store.Error, Err: fmt.Errorf("channel %q: nil message", c.cfg.Name)}
	}
	if !c.admit() {
		return c.refused(m)
	}
	defer c.inflight.Done()
	if c.slots != nil {
		select {
		case c.slots <- struct{}{}:
		default:
			if ctx.Value(waitKey{}) == nil {
				return c.busy(m)
			}
			select {
			case c.slots <- struct{}{}:
			case <-ctx.Done():
				return c.left(m, ctx.Err())
			}
		}
		defer func() { <-c.slots }()
	}
	unlock, err := c.lock(ctx, m)
	if err != nil {
		return c.left(m, err)
	}
	defer unlock()
	begun := true
	if err := c.store.Begin(ctx, m); err != nil {
		if !errors.Is(err, store.ErrExists) {
			c.log.Error("store write failed", "id", m.ID, "error", err)
			return c.left(m, fmt.Errorf("channel %q: %w", c.cfg.Name, err))
		}
		begun = false
		rec, gerr := c.store.Get(ctx, m.ID)
		if gerr != nil {
			return c.left(m, fmt.Errorf("channel %q: %w", c.cfg.Name, gerr))
		}
		if h := m.Meta[message.MetaRequestHash]; h != "" && rec.Message != nil {
			if was := rec.Message.Meta[message.MetaRequestHash]; was != "" && was != h {
				c.counts[4].Add(1)
				return Result{Settle: Ack, Outcome: errors.KindStop, State: store.Rejected, Message: m,
					Err: errors.Stopf("%w", ErrIDReused)}
			}
		}
		if rec.State == store.Waiting {
			return c.waitingResult(rec)
		}
		if rec.State == store.Done || rec.State == store.Rejected {
			c.counts[4].Add(1)
			res := Result{Settle: Ack, Outcome: errors.KindOK, State: rec.State, Message: rec.Message}
			if rec.State == store.Rejected {
				res.Outcome, res.Err = errors.KindStop, errors.Stop(rejection(rec))
			} else if rec.Outcome == errors.KindDropped {
				res.Outcome, res.Err = errors.KindDropped, errors.Drop(rec.Reason)
			}
			return res
		}
		if SetAside(rec) {
			return c.setAsideResult(rec)
		}
		if n := store.CrashedRuns(rec); c.crashedTooOften(n) {
			return c.setAside(ctx, rec, n)
		}
		m = rec.Message // owed: run the stored message again
	}
	return c.run(ctx, m, opts, begun, nil)
}

// recoverOne runs again a message a previous process left owed, unless a
// source finished it meanwhile, or its runs keep crashing the process.
//
// The message's locks are waited for under intake; the run itself goes on
// under ctx, so that a graceful stop drains it like any other.
func (c *Channel) recoverOne(intake, ctx context.Context, owed *store.Record) {
	id := owed.Message.ID
	unlock, err := c.lock(intake, owed.Message)
	if err != nil {
		return // stopping: still owed
	}
	defer unlock()
	rec, err := c.store.Get(ctx, id)
	if err != nil {
		c.log.Error("recover message", "id", id, "error", err)
		return
	}
	if rec.State != store.Pending && rec.State != store.Processing {
		return // a source delivered and finished it meanwhile
	}
	if n := store.CrashedRuns(rec); c.crashedTooOften(n) {
		c.setAside(ctx, rec, n)
		return
	}
	res := c.run(ctx, rec.Message, nil, false, nil)
	c.log.Info("recovered message", "id", id, "state", res.State)
}

// crashedTooOften reports whether n crashed runs in a row set a message
// aside.
func (c *Channel) crashedTooOften(n int) bool {
	return c.cfg.MaxCrashes > 0 && n >= c.cfg.MaxCrashes
}

// setAside moves an owed message whose last n runs crashed to state dead,
// outcome fatal, and answers its delivery with a failure.
func (c *Channel) setAside(ctx context.Context, rec *store.Record, n int) Result {
	msg := fmt.Sprintf("gave up after %d crashed runs", n)
	if err := c.store.Transition(context.WithoutCancel(ctx), rec.Message.ID, store.Dead,
		store.Update{Outcome: errors.KindFatal, Err: msg}); err != nil {
		c.log.Error("store transition failed", "id", rec.Message.ID, "to", store.Dead, "error", err)
		return c.left(rec.Message, fmt.Errorf("channel %q: %w", c.cfg.Name, err))
	}
	rec.State, rec.Outcome, rec.Err = store.Dead, errors.KindFatal, msg
	c.log.Error("message set aside: its runs keep crashing the process; replay it by hand once fixed",
		"id", rec.Message.ID, "crashed_runs", n)
	return c.setAsideResult(rec)
}

// setAsideResult is the answer to a delivery of a message set aside.
func (c *Channel) setAsideResult(rec *store.Record) Result {
	c.counts[2].Add(1)
	err := fmt.Errorf("channel %q: %s: %w", c.cfg.Name, rec.Err, ErrSetAside)
	c.lastErr.Store(err.Error())
	res := Result{Settle: Fail, Outcome: errors.KindOf(err), State: rec.State, Message: rec.Message, Err: err, ErrorID: newErrorID()}
	c.log.Warn("delivery of a message set aside", "id", rec.Message.ID, "error_id", res.ErrorID)
	return res
}

// lock takes the per-ID lock (a message never runs twice at once) and the
// ordering lock when configured.
func (c *Channel) lock(ctx context.Context, m *message.Message) (func(), error) {
	var key string
	if c.cfg.OrderKey != nil {
		key = c.cfg.OrderKey(m)
	}
	if key != "" {
		if err := c.order.lock(ctx, key); err != nil {
			return nil, err
		}
	}
	if err := c.ids.lock(ctx, m.ID); err != nil {
		if key != "" {
			c.order.unlock(key)
		}
		return nil, err
	}
	return func() {
		c.ids.unlock(m.ID)
		if key != "" {
			c.order.unlock(key)
		}
	}, nil
}

// admit counts a delivery in flight if the channel is running (or
// restarting after a Fatal), and reports whether it did. The check and
// the count are made under the lock Stop changes the state under, so
// that a delivery is either counted before Stop waits for those in
// flight, or refused.
func (c *Channel) admit() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != StateRunning && c.state != StateRestarting {
		return false
	}
	c.inflight.Add(1)
	return true
}

// refused leaves a message delivered to a channel that is not running:
// nothing is recorded nor run.
func (c *Channel) refused(m *message.Message) Result {
	c.mu.Lock()
	st := c.state
	c.mu.Unlock()
	c.counts[3].Add(1)
	err := errors.Retry(fmt.Errorf("channel %q: %w (%s)", c.cfg.Name, ErrStopped, st))
	return Result{Settle: Leave, Outcome: errors.KindRetry, Message: m, Err: err, RetryAfter: c.cfg.RetryAfter}
}

// busy leaves a message the channel has no slot for (MaxInFlight): it is
// not recorded; its source delivers it again later.
func (c *Channel) busy(m *message.Message) Result {
	c.counts[3].Add(1)
	err := errors.RetryAfter(fmt.Errorf("channel %q: %w", c.cfg.Name, ErrBusy), BusyRetryAfter)
	return Result{Settle: Leave, Outcome: errors.KindRetry, Message: m, Err: err, RetryAfter: BusyRetryAfter}
}

func (c *Channel) left(m *message.Message, err error) Result {
	c.counts[3].Add(1)
	c.lastErr.Store(err.Error())
	return Result{Settle: Leave, Outcome: errors.KindOf(err), State: store.Processing, Message: m, Err: err, RetryAfter: c.cfg.RetryAfter}
}

// run runs a stored message through the flow under the supervisor and
// records the outcome.
//
// begun says the store already has the message in Processing (a new
// message recorded with Begin); else run records that transition. base,
// when not nil, is the JSON of the context to start from instead of the
// payload's (ReplayFrom).
func (c *Channel) run(ctx context.Context, m *message.Message, opts []flow.RunOption, begun bool, base []byte) Result {
	return c.runMessage(ctx, m, opts, begun, begun, base)
}

// runMessage is run; fresh says the message was stored by this delivery
// (Begin), so it has no journal yet.
func (c *Channel) runMessage(ctx context.Context, m *message.Message, opts []flow.RunOption, begun, fresh bool, base []byte) Result {
	c.running.Add(1)
	defer c.running.Add(-1)
	ctx = withRun(ctx, c.cfg.Name, m.ID)
	if c.hard != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(c.hard, cancel)
		defer stop()
	}
	if !begun {
		if err := c.store.Transition(ctx, m.ID, store.Processing, store.Update{}); err != nil {
			return c.left(m, fmt.Errorf("channel %q: %w", c.cfg.Name, err))
		}
	}
	var dj *runJournal
	if c.durable != nil && fresh {
		dj = &runJournal{c: c, id: m.ID}
		opts = append(opts[:len(opts):len(opts)], flow.WithJournal(dj))
	} else if c.durable != nil {
		var err error
		if dj, err = c.prepareDurable(ctx, m); err != nil {
			if ce, ok := errors.AsType[*flow.ChangedError](err); ok {
				return c.changed(ctx, m, ce)
			}
			return c.left(m, err)
		}
		opts = append(opts[:len(opts):len(opts)], flow.WithJournal(dj))
	}
	var (
		out *fc.Context
		tr  *flow.Trace
		err error
	)
	if !c.cfg.NoTrace {
		tr = traces.Get().(*flow.Trace)
		defer traces.Put(tr)
	}
	var traceID string
	endRun := func(error) {}
	if c.cfg.Observer != nil {
		ctx, traceID, endRun = c.cfg.Observer.BeginRun(ctx, c.cfg.Name, c.cfg.Flow.Name(), m)
	}
	ctx = redact.WithPaths(ctx, c.redact)
	for restarts := 0; ; restarts++ {
		if dj != nil && restarts > 0 {
			if err = dj.reload(ctx); err != nil {
				break
			}
		}
		c.gate.RLock()
		gen := c.gen
		if base != nil {
			out, err = storedContext(m, base)
		} else {
			out, err = contextOf(m)
		}
		if err == nil {
			runOpts := opts
			if !c.cfg.NoTrace {
				runOpts = append(runOpts[:len(runOpts):len(runOpts)], flow.WithTrace(tr))
			}
			err = c.cfg.Flow.RunContext(ctx, out, runOpts...)
		}
		c.gate.RUnlock()
		if errors.KindOf(err) != errors.KindFatal || ctx.Err() != nil {
			break
		}
		c.log.Error("fatal error: restarting services", "id", m.ID, "error", err)
		if restarts >= c.restart.MaxAttempts && c.restart.MaxAttempts > 0 {
			err = fmt.Errorf("gave up after %d restarts: %w", restarts, err)
			break
		}
		if rerr := c.restartServices(ctx, gen, err); rerr != nil {
			err = errors.Join(err, rerr)
			break
		}
	}
	if err == nil && len(c.cfg.Sinks) > 0 {
		err = c.sendSinks(ctx, m, out)
	}
	endRun(err)

	res := Result{Err: err}
	// The outcome goes on a copy of the message; payload and meta are never
	// written, so they are shared. The run's context is finished with: its
	// map becomes the message's context (the store keeps its own copy). The
	// trace is encoded into a recycled buffer, which the store copies.
	mc := *m
	m = &mc
	if m.Context = out.View(); m.Context == nil {
		m.Context = map[string]any{}
	}
	m.Trace = nil
	stored, secrets := c.redact.Map(m.Context)
	if len(secrets) > 0 && tr != nil {
		tr.Err, tr.Reason = secrets.Text(tr.Err), secrets.Text(tr.Reason)
		for i := range tr.Steps {
			tr.Steps[i].Err = secrets.Text(tr.Steps[i].Err)
		}
	}
	var trace []byte
	if tr != nil {
		tr.TraceID = traceID
		buf := traceBufs.Get().(*[]byte)
		defer traceBufs.Put(buf)
		trace = tr.AppendJSON((*buf)[:0])
		*buf = trace
	}
	res.Message = m
	var st store.State
	kind := errors.KindOf(err)
	if dj != nil {
		if pe, ok := errors.AsType[*flow.ParkError](err); ok {
			return c.park(ctx, m, dj, pe, store.Update{Context: m.Context, Trace: trace})
		}
		if kind != errors.KindOK && kind != errors.KindStop && kind != errors.KindDropped {
			// What the run completed is resumed by the next one.
			if ferr := dj.flush(ctx); ferr != nil {
				c.log.Error("journal write failed", "id", m.ID, "error", ferr)
			}
		}
	}
	switch {
	case kind == errors.KindOK:
		res.Settle, st = Ack, store.Done
	case kind == errors.KindStop:
		res.Settle, st = Ack, store.Rejected
	case kind == errors.KindDropped:
		// Consumed silently: finished, never delivered again.
		res.Settle, st = Ack, store.Done
	case kind == errors.KindCanceled || kind == errors.KindFatal:
		// Not the message's fault: it stays owed (processing) and runs
		// again on the next start or redelivery.
		// It goes back to pending with the outcome, so that this run is
		// not counted as a crash (store.CrashedRuns).
		res.Settle, res.State, res.RetryAfter = Leave, store.Pending, c.cfg.RetryAfter
		res.Outcome = kind
		c.counts[3].Add(1)
		msg := secrets.Text(err.Error())
		c.lastErr.Store(msg)
		c.log.Warn("message left unfinished", "id", m.ID, "error", msg)
		if terr := c.store.Transition(context.WithoutCancel(ctx), m.ID, store.Pending,
			store.Update{Outcome: kind, Err: msg}); terr != nil {
			c.log.Error("store transition failed", "id", m.ID, "to", store.Pending, "error", terr)
			res.State = store.Processing
		}
		return res
	case kind == errors.KindRetry || kind == errors.KindRetryExhausted:
		res.Settle, st = Nack, store.Error
		res.RetryAfter = c.cfg.RetryAfter
		if d, ok := errors.RetryAfterHint(err); ok {
			res.RetryAfter = d
		}
		if c.cfg.MaxDeliveries > 0 {
			if rec, gerr := c.store.Get(ctx, m.ID); gerr == nil && rec.Attempts >= c.cfg.MaxDeliveries {
				res.Settle, res.RetryAfter, st = Fail, 0, store.Dead // dead-lettered
				err = fmt.Errorf("dead-lettered after %d deliveries: %w", rec.Attempts, err)
				res.Err = err
			}
		}
	default:
		res.Settle, st = Fail, store.Error
	}
	res.State = st
	u := store.Update{Outcome: kind, Context: stored, Trace: trace}
	if kind == errors.KindStop {
		if se, ok := errors.AsType[*errors.StopError](err); ok {
			u.Reason = secrets.Text(se.Reason)
		}
	}
	if kind == errors.KindDropped {
		if de, ok := errors.AsType[*errors.DropError](err); ok {
			u.Reason = secrets.Text(de.Reason)
		}
	}
	if err != nil {
		u.Err = secrets.Text(err.Error())
		if kind != errors.KindDropped {
			c.lastErr.Store(u.Err)
		}
		if res.Settle != Ack {
			res.ErrorID = newErrorID()
			c.log.Error("message failed", "id", m.ID, "error_id", res.ErrorID, "error", u.Err)
		}
	}
	terr := c.store.Transition(context.WithoutCancel(ctx), m.ID, st, u)
	if terr != nil && errors.Is(terr, store.ErrInvalid) {
		return c.unstorable(ctx, res, u, terr)
	}
	if terr != nil {
		c.log.Error("store transition failed", "id", m.ID, "to", st, "error", terr)
		res.Err = errors.Join(res.Err, terr)
		res.Settle, res.State = Leave, store.Processing
		c.counts[3].Add(1)
	} else {
		if kind == errors.KindDropped {
			c.counts[6].Add(1)
		} else {
			c.counts[stateCount(st)].Add(1)
		}
		c.runHooks(ctx, m, m.Context, kind, st, u, secrets)
	}
	res.Outcome = errors.KindOf(res.Err)
	return res
}

// stateCount is the index in counts of a finished state.
func stateCount(st store.State) int {
	switch st {
	case store.Done:
		return 0
	case store.Rejected:
		return 1
	}
	return 2
}

// unstorable ends a run whose result the store refused (a context holding
// a value JSON cannot encode, such as +Inf or NaN): the message goes to
// state error with the reason, without the context (and without the
// trace if that is refused too), and fails, so that nothing stays
// processing after its delivery was answered. A flow that computes such
// a value is at fault rather than its input, which was valid JSON: the
// failure is an error to fix and replay, not a rejection.
func (c *Channel) unstorable(ctx context.Context, res Result, u store.Update, cause error) Result {
	id := res.Message.ID
	err := fmt.Errorf("channel %q: the result cannot be stored: %w", c.cfg.Name, cause)
	if res.Err != nil && errors.KindOf(res.Err) != errors.KindStop {
		err = fmt.Errorf("%w (the run ended: %v)", err, res.Err)
	}
	fu := store.Update{Outcome: errors.KindFailed, Err: err.Error(), Trace: u.Trace}
	terr := c.store.Transition(context.WithoutCancel(ctx), id, store.Error, fu)
	if terr != nil && errors.Is(terr, store.ErrInvalid) {
		fu.Trace = nil
		terr = c.store.Transition(context.WithoutCancel(ctx), id, store.Error, fu)
	}
	res.Err, res.RetryAfter = err, 0
	if res.ErrorID == "" {
		res.ErrorID = newErrorID()
	}
	c.lastErr.Store(err.Error())
	if terr != nil {
		c.log.Error("store transition failed", "id", id, "to", store.Error, "error", terr)
		res.Err = errors.Join(err, terr)
		res.Settle, res.State, res.Outcome = Leave, store.Processing, errors.KindOf(res.Err)
		c.counts[3].Add(1)
		return res
	}
	c.log.Error("message failed", "id", id, "error_id", res.ErrorID, "error", err)
	res.Settle, res.State, res.Outcome = Fail, store.Error, errors.KindFailed
	c.counts[2].Add(1)
	c.runHooks(ctx, res.Message, map[string]any{}, errors.KindFailed, store.Error, fu, nil)
	return res
}

// traces recycles the traces of runs (and the storage of their steps), and
// traceBufs their encodings.
var (
	traces    = sync.Pool{New: func() any { return new(flow.Trace) }}
	traceBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}
)

// restartServices closes and re-initialises the flow's services, once per
// generation: concurrent runs that hit the same Fatal share one restart.
func (c *Channel) restartServices(ctx context.Context, gen uint64, cause error) error {
	c.gate.Lock()
	defer c.gate.Unlock()
	if c.gen != gen {
		return nil // another run restarted the services already
	}
	c.transition(StateRestarting, cause, StateRunning)
	var err error
	defer func() { c.transition(StateRunning, err, StateRestarting) }()
	_, err = c.restart.Do(ctx, func(ctx context.Context, attempt int) error {
		c.restarts.Add(1)
		if err := c.cfg.Flow.Close(ctx); err != nil {
			c.log.Warn("close before restart failed", "error", err)
		}
		if err := c.cfg.Flow.Init(ctx); err != nil {
			c.log.Error("restart failed", "attempt", attempt, "error", err)
			return errors.Retry(err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restart services: %w", err)
	}
	c.gen++
	c.log.Info("services restarted")
	return nil
}

// contextOf builds a run's context from a message: a JSON object payload
// gives the context's keys; any other payload is put under "body" (as
// text). The message's meta is under "meta", with the message ID as
// meta.id: the key to make a flow's effects idempotent.
func contextOf(m *message.Message) (*fc.Context, error) {
	var c *fc.Context
	if len(m.Payload) > 0 && m.Payload[0] == '{' {
		var err error
		if c, err = fc.FromJSON(m.Payload); err != nil {
			return fc.New(), errors.Stopf("payload: %v", err)
		}
	} else {
		c = fc.New()
		if len(m.Payload) > 0 {
			c.Set("body", string(m.Payload))
		}
	}
	meta := make(map[string]any, len(m.Meta)+1)
	for k, v := range m.Meta {
		meta[k] = v
	}
	meta["id"] = m.ID
	c.Set("meta", meta)
	return c, nil
}

// storedContext returns a fresh context from base, a stored context as
// JSON, with the message's meta.
func storedContext(m *message.Message, base []byte) (*fc.Context, error) {
	c, err := fc.FromJSON(base)
	if err != nil {
		return fc.New(), errors.Stopf("stored context: %v", err)
	}
	meta := make(map[string]any, len(m.Meta)+1)
	for k, v := range m.Meta {
		meta[k] = v
	}
	meta["id"] = m.ID
	c.Set("meta", meta)
	return c, nil
}

// rejection returns the reason a stored message was rejected with, so a
// duplicate delivery is answered like the first one: the Reason the store
// recorded as data with the run's outcome, traced or not. A record
// rejected before stores kept reasons has none.
func rejection(rec *store.Record) string { return rec.Reason }

func newErrorID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

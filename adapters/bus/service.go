package bus

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// Service states reported by [ServiceStatus].
const (
	StateStopped    = "stopped"
	StateStarting   = "starting"
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateStopping   = "stopping"
)

// envelope is one message in a mailbox.
type envelope struct {
	id       string
	from     string
	action   string
	body     map[string]any
	meta     map[string]string // from a source
	ctx      context.Context   // the requester's; nil for a submit
	reply    chan reply        // nil for a submit
	done     func(error)       // a transport's: called once the run ended
	recorded bool              // in the store (pending or processing)
	pooled   bool              // from envelopes: put back once run
	act      *actionInfo       // set by deliver
	trace    *flow.Trace       // the run's, for a recorded message whose action is a flow
}

// actionInfo is an action's service, and the meta of a message from
// outside the bus but for its id, to clone for each message.
type actionInfo struct {
	svc  flow.Service
	meta map[string]any
}

type reply struct {
	out map[string]any
	err error
}

// paddedInt is an atomic counter alone on its cache line.
type paddedInt struct {
	atomic.Int64
	_ [56]byte
}

// service is a declared service and its running state.
type service struct {
	b       *Bus
	def     Service
	log     *slog.Logger
	mailbox chan *envelope
	self    *Self                  // for OnStart, OnStop and Go
	runSelf *Self                  // for runs: in its own worker
	name    any                    // the name, boxed once for meta
	acts    map[string]*actionInfo // the actions, looked up once per message

	life sync.Mutex // serializes start and stop

	// gate: submitters hold it shared while they queue a message; stop
	// holds it exclusively to close intake. Submitters write it: it is
	// kept off the cache lines the worker writes.
	_        [64]byte
	gate     sync.RWMutex
	_        [64]byte
	open     bool
	disabled bool
	stopping chan struct{} // closed when a stop begins

	state atomic.Value // string

	// Set by start, used by stop, under life.
	quit      chan struct{} // closed: drain the mailbox and exit
	done      chan struct{} // closed when the worker exited
	hard      context.CancelFunc
	srcCancel context.CancelFunc
	srcWG     sync.WaitGroup

	// Owned by the worker while it runs, by start and stop otherwise.
	held      []*envelope     // runs a stop canceled, to run first at the next start
	owed      []*store.Record // recovered from the store, not yet run
	recovered bool
	up        bool // actions initialised and OnStart called
	crashes   int  // crashes in a row
	recorder  store.Store
	ids       []byte // the worker's: room for the ids it makes (nextID)

	bgMu     sync.Mutex
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup

	// in counts messages submitted (queued, held or recovered), out those
	// run to their end: in minus out are pending. Apart, on cache lines of
	// their own: submitters write in, the worker out.
	in                                            paddedInt
	out                                           paddedInt
	processed, failed, rejected, restarts, panics atomic.Int64 // the worker's
	lastErr                                       atomic.Value // string
	_                                             [64]byte
}

func newService(b *Bus, def Service) *service {
	s := &service{b: b, def: def, mailbox: make(chan *envelope, def.Mailbox), recorder: def.Store}
	s.log = slog.New(&levelHandler{h: b.log.Handler(), level: &b.level}).With("service", def.Name)
	s.self = &Self{s: s}
	s.runSelf = &Self{s: s, inRun: true}
	s.name = def.Name
	s.acts = map[string]*actionInfo{}
	for a, svc := range def.Actions {
		s.acts[a] = &actionInfo{svc: svc, meta: map[string]any{"id": "", "from": "", "destination": def.Name, "action": a}}
	}
	s.state.Store(StateStopped)
	s.lastErr.Store("")
	return s
}

// accepting reports whether the service takes messages.
func (s *service) accepting() bool {
	s.gate.RLock()
	defer s.gate.RUnlock()
	return s.open
}

func (s *service) setDisabled(d bool) {
	s.gate.Lock()
	s.disabled = d
	s.gate.Unlock()
}

func (s *service) isDisabled() bool {
	s.gate.RLock()
	defer s.gate.RUnlock()
	return s.disabled
}

// deliver queues e, recording it first with a store.
func (s *service) deliver(ctx context.Context, e *envelope) error {
	if e.act = s.acts[e.action]; e.act == nil {
		return fmt.Errorf("bus: submit to %q action %q: %w: %s", s.def.Name, e.action, ErrUnknownAction, actionList(s.def.Actions))
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	if !s.open {
		if s.disabled {
			return fmt.Errorf("bus: submit to %q action %q: %w", s.def.Name, e.action, ErrDisabled)
		}
		return fmt.Errorf("bus: submit to %q action %q: %w", s.def.Name, e.action, ErrStopped)
	}
	full := s.def.WhenFull == Fail || (e.from == s.def.Name && s.inOwnRun(ctx))
	if e.id == "" && s.recorder != nil {
		e.id = s.b.newID() // recorded under it; else the worker names it (run)
	}
	if s.recorder != nil {
		if full && len(s.mailbox) == cap(s.mailbox) {
			return s.fullError(e)
		}
		if err := s.record(ctx, e); err != nil {
			return fmt.Errorf("bus: submit to %q action %q: %w", s.def.Name, e.action, err)
		}
	}
	s.in.Add(1)
	select {
	case s.mailbox <- e:
		return nil
	default:
	}
	if full {
		s.in.Add(-1)
		s.unrecord(ctx, e, ErrMailboxFull)
		return s.fullError(e)
	}
	select {
	case s.mailbox <- e:
		return nil
	case <-ctx.Done():
		s.in.Add(-1)
		err := fmt.Errorf("bus: submit to %q action %q: mailbox full: %w", s.def.Name, e.action, ctx.Err())
		s.unrecord(ctx, e, err)
		return err
	case <-s.stopping:
		s.in.Add(-1)
		err := fmt.Errorf("bus: submit to %q action %q: %w", s.def.Name, e.action, ErrStopped)
		s.unrecord(ctx, e, err)
		return err
	}
}

func (s *service) fullError(e *envelope) error {
	return fmt.Errorf("bus: submit to %q action %q: %w (%d messages)", s.def.Name, e.action, ErrMailboxFull, cap(s.mailbox))
}

// inOwnRun reports whether ctx is a run of this service's worker: a
// submit from there to a full mailbox of its own would wait for itself.
func (s *service) inOwnRun(ctx context.Context) bool {
	x, _ := ctx.Value(selfKey{}).(*Self)
	return x == s.runSelf
}

// start starts the worker, then the sources.
func (s *service) start(ctx context.Context) error {
	s.life.Lock()
	defer s.life.Unlock()
	if st := s.state.Load().(string); st != StateStopped {
		return fmt.Errorf("bus: start %q: already %s", s.def.Name, st)
	}
	s.state.Store(StateStarting)
	if s.recorder != nil && !s.recovered {
		owed, err := s.recover(ctx)
		if err != nil {
			s.state.Store(StateStopped)
			return fmt.Errorf("bus: start %q: %w", s.def.Name, err)
		}
		s.owed, s.recovered = owed, true
		s.in.Add(int64(len(owed)))
	}
	base := s.b.baseContext()
	work, hard := context.WithCancel(base)
	s.hard, s.quit, s.done = hard, make(chan struct{}), make(chan struct{})
	s.gate.Lock()
	s.open, s.disabled, s.stopping = true, false, make(chan struct{})
	s.gate.Unlock()
	owed := len(s.owed)
	ready := make(chan error, 1)
	go s.work(work, ready)
	if err := <-ready; err != nil {
		s.gate.Lock()
		s.open = false
		close(s.stopping)
		s.gate.Unlock()
		hard()
		<-s.done
		s.state.Store(StateStopped)
		return fmt.Errorf("bus: start %q: %w", s.def.Name, err)
	}
	s.state.Store(StateRunning)
	src, cancel := context.WithCancel(base)
	s.srcCancel = cancel
	h := sourceHandler{s: s}
	for _, source := range s.def.Sources {
		s.srcWG.Go(func() {
			if err := source.Run(src, h); err != nil && src.Err() == nil {
				s.fail("source failed", err, "source", source.Name())
			}
		})
	}
	s.log.Info("service started", "owed", owed)
	return nil
}

// stop stops the sources and intake, drains the mailbox until ctx ends
// and stops the worker. disable marks the service disabled by the state.
func (s *service) stop(ctx context.Context, disable bool) error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.state.Load().(string) == StateStopped {
		if disable {
			s.setDisabled(true)
		}
		return nil
	}
	s.state.Store(StateStopping)
	s.srcCancel()
	s.gate.RLock()
	close(s.stopping) // submitters waiting for room give up
	s.gate.RUnlock()
	s.srcWG.Wait()
	s.gate.Lock()
	s.open, s.disabled = false, disable
	s.gate.Unlock()
	close(s.quit)
	var err error
	select {
	case <-s.done:
	case <-ctx.Done():
		s.hard()
		<-s.done
		err = fmt.Errorf("bus: stop %q: drain: %w", s.def.Name, ctx.Err())
	}
	s.hard()
	s.failLeft()
	s.state.Store(StateStopped)
	s.log.Info("service stopped", "queued", len(s.held))
	return err
}

// failLeft answers the requests a stop left in the mailbox (or held)
// with ErrStopped, rather than let them wait for a next start; the
// submits left move to held, to run first at the next start.
func (s *service) failLeft() {
	n := 0
	keep := s.held[:0]
	for _, e := range s.held {
		if e.reply != nil {
			e.reply <- reply{err: fmt.Errorf("bus: %q action %q: %w before it ran", s.def.Name, e.action, ErrStopped)}
			s.out.Add(1)
			n++
		} else {
			keep = append(keep, e)
		}
	}
	s.held = keep
	for {
		select {
		case e := <-s.mailbox:
			if e.reply != nil {
				e.reply <- reply{err: fmt.Errorf("bus: %q action %q: %w before it ran", s.def.Name, e.action, ErrStopped)}
				n++
				if !e.recorded {
					s.out.Add(1)
					continue
				}
				e.reply, e.ctx = nil, nil // recorded: it runs at a next start, with no one waiting
			}
			s.held = append(s.held, e)
		default:
			if n > 0 || len(s.held) > 0 {
				s.log.Warn("service stopped with messages not run", "requests_failed", n, "left", len(s.held))
			}
			return
		}
	}
}

// work is the service's goroutine: it brings the service up, runs the
// held and owed messages, then the mailbox, until quit (after draining)
// or the hard stop.
func (s *service) work(ctx context.Context, ready chan<- error) {
	defer close(s.done)
	ctx = context.WithValue(ctx, selfKey{}, s.runSelf)
	if err := s.bringUp(ctx); err != nil {
		ready <- err
		return
	}
	ready <- nil
	defer func() {
		if s.up {
			s.bringDown(context.WithoutCancel(ctx))
		}
	}()
	for len(s.held) > 0 {
		if ctx.Err() != nil {
			return
		}
		e := s.held[0]
		s.held = s.held[1:]
		if !s.handle(ctx, e) {
			return
		}
	}
	s.held = nil
	for len(s.owed) > 0 {
		if ctx.Err() != nil {
			return
		}
		rec := s.owed[0]
		s.owed = s.owed[1:]
		e, ok := s.fromRecord(ctx, rec)
		if !ok {
			s.out.Add(1)
			continue
		}
		if !s.handle(ctx, e) {
			return
		}
	}
	s.owed = nil
	hard := ctx.Done()
	for {
		select { // a hard stop leaves the rest queued
		case <-hard:
			return
		default:
		}
		select { // the common case, cheaper than the select below
		case e := <-s.mailbox:
			if !s.handle(ctx, e) {
				return
			}
			continue
		default:
		}
		select {
		case e := <-s.mailbox:
			if !s.handle(ctx, e) {
				return
			}
		case <-s.quit:
			for ctx.Err() == nil {
				select {
				case e := <-s.mailbox:
					if !s.handle(ctx, e) {
						return
					}
				default:
					return
				}
			}
			return
		case <-ctx.Done():
			return
		}
	}
}

// handle runs one message under supervision and reports whether the
// worker goes on (false: a stop interrupted a restart).
func (s *service) handle(ctx context.Context, e *envelope) bool {
	defer s.out.Add(1)
	if e.ctx != nil && e.ctx.Err() != nil {
		// The requester gave up before the run: it does not run.
		s.settle(ctx, e, nil, fmt.Errorf("bus: %q action %q: not run: the requester gave up: %w", s.def.Name, e.action, e.ctx.Err()))
		return true
	}
	if e.recorded {
		if err := s.recorder.Transition(ctx, e.id, store.Processing, store.Update{}); err != nil {
			s.fail("store transition failed", err, "id", e.id)
		}
	}
	if e.act == nil { // recovered or held: looked up here
		e.act = s.acts[e.action]
	}
	action := e.act.svc
	for restarts := 0; ; restarts++ {
		c, err := s.run(ctx, e, action)
		kind := errors.KindOf(err)
		switch {
		case kind == errors.KindPanic:
			s.panics.Add(1)
			s.settle(ctx, e, c, err)
			e.finished(err)
			return s.restart(ctx, err)
		case kind == errors.KindFatal && ctx.Err() == nil:
			if max := cmp.Or(s.policy().MaxAttempts, DefaultMaxRestarts); restarts >= max {
				err = fmt.Errorf("gave up after %d restarts: %w", restarts, err)
				s.settle(ctx, e, c, err)
				e.finished(err)
				return true
			}
			if !s.restart(ctx, err) {
				s.leave(ctx, e, err)
				return false
			}
			continue
		case kind == errors.KindCanceled && ctx.Err() != nil && (e.ctx == nil || e.ctx.Err() == nil):
			// A stop canceled the run: not the message's fault.
			s.leave(ctx, e, err)
			return true
		}
		s.crashes = 0
		s.settle(ctx, e, c, err)
		if e.done != nil {
			e.finished(err)
		}
		if e.pooled {
			*e = envelope{}
			envelopes.Put(e)
		}
		return true
	}
}

// finished tells a transport that e ran to its outcome.
func (e *envelope) finished(err error) {
	if e.done != nil {
		done := e.done
		e.done = nil
		done(err)
	}
}

// envelopes recycles the envelopes of submits that ran to their end.
var envelopes = sync.Pool{New: func() any { return new(envelope) }}

// run runs the action on a context made from the message.
func (s *service) run(ctx context.Context, e *envelope, action flow.Service) (c *fc.Context, err error) {
	if e.ctx != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(e.ctx, cancel)
		defer stop()
	}
	c = fc.FromMap(e.body)
	var meta map[string]any
	if len(e.meta) == 0 {
		meta = maps.Clone(e.act.meta) // cheaper than making and filling one
	} else {
		meta = make(map[string]any, 4+len(e.meta))
		for k, v := range e.meta {
			meta[k] = v
		}
		meta["from"], meta["destination"], meta["action"] = "", s.name, e.action
	}
	if e.id == "" {
		e.id = s.nextID()
	}
	meta["id"] = e.id
	if e.from != "" {
		meta["from"] = e.from
	}
	c.Set("meta", meta)
	defer func() {
		if r := recover(); r != nil {
			err = errors.Recovered(r)
		}
	}()
	if f, ok := action.(*flow.Flow); ok && e.recorded {
		// a durable message keeps its run's trace, as a channel's does
		if e.trace == nil {
			e.trace = new(flow.Trace)
		}
		err = f.RunContext(ctx, c, flow.WithTrace(e.trace))
		return c, err
	}
	err = action.Call(ctx, c)
	return c, err
}

// settle records the outcome of e and answers its requester.
func (s *service) settle(ctx context.Context, e *envelope, c *fc.Context, err error) {
	kind := errors.KindOf(err)
	switch kind {
	case errors.KindOK:
		s.processed.Add(1)
	case errors.KindStop:
		s.processed.Add(1)
		s.rejected.Add(1)
	default:
		s.processed.Add(1)
		s.failed.Add(1)
		s.fail("message failed", err, "id", e.id, "action", e.action, "outcome", kind)
	}
	if e.recorded {
		s.finish(ctx, e, c, err)
	}
	if e.reply == nil {
		return
	}
	if err != nil {
		e.reply <- reply{err: fmt.Errorf("bus: %q action %q: %w", s.def.Name, e.action, err)}
		return
	}
	out := c.Map()
	delete(out, "meta")
	e.reply <- reply{out: out}
}

// leave keeps a message a stop interrupted: it is held to run first at
// the next start of the service (a durable one also goes back to pending,
// so that the next process runs it if this one ends first); a request is
// answered with the error instead.
func (s *service) leave(ctx context.Context, e *envelope, err error) {
	if e.recorded {
		if terr := s.recorder.Transition(context.WithoutCancel(ctx), e.id, store.Pending,
			store.Update{Outcome: errors.KindOf(err), Err: err.Error()}); terr != nil {
			s.fail("store transition failed", terr, "id", e.id)
		}
	}
	if e.reply != nil {
		e.reply <- reply{err: fmt.Errorf("bus: %q action %q: %w", s.def.Name, e.action, err)}
		return
	}
	s.held = append(s.held, e)
	s.in.Add(1) // still to run
}

// restart brings the service down and up again after a crash, waiting the
// backoff first; false: a stop came first (the service stays down).
func (s *service) restart(ctx context.Context, cause error) bool {
	s.restarts.Add(1)
	s.crashes++
	s.state.Store(StateRestarting)
	if s.up {
		s.bringDown(context.WithoutCancel(ctx))
	}
	for {
		wait := s.backoff(s.crashes)
		s.log.Error("service crashed: restarting", "error", cause, "crashes", s.crashes, "wait", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		case <-s.quit:
			t.Stop()
			return false
		}
		err := s.bringUp(ctx)
		if err == nil {
			s.state.Store(StateRunning)
			s.log.Info("service restarted", "crashes", s.crashes)
			return true
		}
		cause = err
		s.crashes++
		s.restarts.Add(1)
	}
}

// backoff is the wait before the nth restart in a row.
func (s *service) backoff(n int) time.Duration {
	p := s.policy()
	initial, mult, maxWait := p.Initial, p.Multiplier, p.MaxInterval
	if initial <= 0 {
		initial = errors.DefaultInitial
	}
	if mult < 1 {
		mult = errors.DefaultMultiplier
	}
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	d := float64(initial) * math.Pow(mult, float64(n-1))
	if d > float64(maxWait) || math.IsInf(d, 0) {
		return maxWait
	}
	return time.Duration(d)
}

// policy is the service's restart policy.
func (s *service) policy() errors.Policy {
	if s.def.Restart != nil {
		return *s.def.Restart
	}
	return s.b.restart
}

// bringUp initialises the actions and calls OnStart.
func (s *service) bringUp(ctx context.Context) error {
	var inited []flow.Initializer
	for _, a := range s.actions() {
		in, ok := a.(flow.Initializer)
		if !ok {
			continue
		}
		if err := in.Init(ctx); err != nil {
			for _, done := range inited {
				if c, ok := done.(flow.Closer); ok {
					_ = c.Close(context.WithoutCancel(ctx))
				}
			}
			return fmt.Errorf("init action: %w", err)
		}
		inited = append(inited, in)
	}
	bg, cancel := context.WithCancel(context.WithValue(s.b.baseContext(), selfKey{}, s.self))
	s.bgMu.Lock()
	s.bgCtx, s.bgCancel = bg, cancel
	s.bgMu.Unlock()
	if s.def.OnStart != nil {
		if err := s.callHook(bg, s.def.OnStart); err != nil {
			s.stopBackground()
			s.closeActions(context.WithoutCancel(ctx))
			return fmt.Errorf("start: %w", err)
		}
	}
	s.up = true
	return nil
}

// bringDown stops the service's own work, calls OnStop and closes the
// actions.
func (s *service) bringDown(ctx context.Context) {
	s.up = false
	s.stopBackground()
	if s.def.OnStop != nil {
		if err := s.callHook(context.WithValue(ctx, selfKey{}, s.self), s.def.OnStop); err != nil {
			s.fail("stop failed", err)
		}
	}
	s.closeActions(ctx)
}

// callHook calls OnStart or OnStop, a panic being an error.
func (s *service) callHook(ctx context.Context, fn func(context.Context, *Self) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.Recovered(r)
		}
	}()
	return fn(ctx, s.self)
}

func (s *service) stopBackground() {
	s.bgMu.Lock()
	cancel := s.bgCancel
	s.bgMu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.bgWG.Wait()
}

func (s *service) closeActions(ctx context.Context) {
	for _, a := range s.actions() {
		if c, ok := a.(flow.Closer); ok {
			if err := c.Close(ctx); err != nil {
				s.fail("close action failed", err)
			}
		}
	}
}

// actions returns the distinct services of the actions, in a stable
// order: a flow used by two actions is initialised and closed once.
func (s *service) actions() []flow.Service {
	var out []flow.Service
	for _, name := range sortedKeys(s.def.Actions) {
		a := s.def.Actions[name]
		dup := false
		for _, o := range out {
			if sameService(o, a) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

// fail logs an error and keeps its text as the last error.
func (s *service) fail(msg string, err error, args ...any) {
	s.lastErr.Store(err.Error())
	s.log.Error(msg, append(args, "error", err)...)
}

func (s *service) status() ServiceStatus {
	s.gate.RLock()
	disabled := s.disabled
	s.gate.RUnlock()
	return ServiceStatus{Name: s.def.Name, Internal: s.def.Internal, State: s.state.Load().(string), Disabled: disabled,
		Queued: len(s.mailbox), Pending: s.in.Load() - s.out.Load(), Capacity: cap(s.mailbox), Processed: s.processed.Load(), Failed: s.failed.Load(),
		Rejected: s.rejected.Load(), Restarts: s.restarts.Load(), Panics: s.panics.Load(), LastError: s.lastErr.Load().(string)}
}

package production

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/internal/pollsrc"
)

// comp is a declared component and its running state.
type comp struct {
	p     *Production
	def   Component
	svc   flow.Service
	self  *Self
	log   *slog.Logger
	attrs []slog.Attr   // component and kind, for logging.Handler
	pool  chan struct{} // nil: no bound

	// gate: senders hold it shared while they register a request; stop
	// holds it exclusively to close intake.
	gate     sync.RWMutex
	open     bool
	inflight sync.WaitGroup

	up  bool // initialised (processes and operations), under p's Start/Stop
	ch  *channel.Channel
	own store.Store // the memory store made for a service without one

	running, processed, failed, rejected atomic.Int64
}

func newComp(p *Production, c Component) *comp {
	x := &comp{p: p, def: c, svc: c.Service}
	x.log = p.log.With("component", c.Name, "kind", c.Kind.String())
	x.attrs = []slog.Attr{slog.String("component", c.Name), slog.String("kind", c.Kind.String())}
	x.self = &Self{x: x}
	if c.Pool > 0 {
		x.pool = make(chan struct{}, c.Pool)
	}
	return x
}

// start initialises a process or an operation, or makes and starts a
// business service's channel.
func (x *comp) start(ctx context.Context) error {
	if x.def.Kind == Service {
		return x.startService(ctx)
	}
	if in, ok := x.svc.(flow.Initializer); ok {
		if err := in.Init(withSelf(ctx, x)); err != nil {
			return fmt.Errorf("%s %q: init: %w", x.def.Kind, x.def.Name, err)
		}
	}
	x.up = true
	x.gate.Lock()
	x.open = true
	x.gate.Unlock()
	x.log.Info("component started")
	return nil
}

// stop closes intake, waits for the requests in flight (until ctx ends)
// and closes the implementation once.
func (x *comp) stop(ctx context.Context) error {
	if x.def.Kind == Service {
		if x.ch == nil {
			return nil
		}
		err := x.ch.Stop(ctx)
		x.log.Info("component stopped")
		if err != nil {
			return fmt.Errorf("service %q: stop: %w", x.def.Name, err)
		}
		return nil
	}
	x.gate.Lock()
	x.open = false
	x.gate.Unlock()
	done := make(chan struct{})
	go func() { x.inflight.Wait(); close(done) }()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("%s %q: stop: requests still running: %w", x.def.Kind, x.def.Name, ctx.Err()))
	}
	if x.up {
		x.up = false
		if cl, ok := x.svc.(flow.Closer); ok {
			if err := cl.Close(withSelf(context.WithoutCancel(ctx), x)); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: close: %w", x.def.Kind, x.def.Name, err))
			}
		}
	}
	x.log.Info("component stopped")
	return errors.Join(errs...)
}

// makeChannel makes the business service's channel: it opens nothing.
func (x *comp) makeChannel() error {
	f, ok := x.svc.(*flow.Flow)
	if !ok {
		var err error
		f, err = flow.New(x.def.Name, x.svc).Use(x.p.opts.Middleware...).Build()
		if err != nil {
			return fmt.Errorf("service %q: %w", x.def.Name, err)
		}
	}
	if x.def.Durable {
		if _, ok := x.svc.(*flow.Flow); !ok {
			return fmt.Errorf("service %q: durable runs need a *flow.Flow implementation (its steps are journaled)", x.def.Name)
		}
	}
	st := x.def.Store
	if st == nil {
		if x.own == nil {
			x.own = store.NewMemory()
		}
		st = x.own
	}
	var sources []channel.Source
	for _, src := range x.def.Sources {
		sources = append(sources, ownSource{Source: src, x: x})
	}
	if pl := x.def.Poll; pl != nil {
		src, err := pollsrc.New(x.def.Name+" poll", pl.Every, x.onPoll, pollsrc.WithLogger(x.log))
		if err != nil {
			return fmt.Errorf("service %q: poll: %w", x.def.Name, err)
		}
		sources = append(sources, src)
	}
	ch, err := channel.New(channel.Config{Name: x.def.Name, Flow: f, Sources: sources, Store: st,
		Logger: x.log, Observer: observer{x: x, next: x.p.opts.Observer}, Durable: x.def.Durable,
		MaxInFlight: x.def.Pool})
	if err != nil {
		return fmt.Errorf("service %q: %w", x.def.Name, err)
	}
	x.ch = ch
	return nil
}

// startService starts the business service's channel: it initialises the
// flow once, then runs the sources.
func (x *comp) startService(ctx context.Context) error {
	if err := x.ch.Start(withSelf(ctx, x)); err != nil { // its flow's Init finds the service
		return fmt.Errorf("service %q: %w", x.def.Name, err)
	}
	x.log.Info("component started", "sources", len(x.ch.Status().Sources))
	return nil
}

// onPoll calls OnPoll in a run of the service and turns what it returns
// into messages for the channel.
func (x *comp) onPoll(ctx context.Context) ([]*message.Message, error) {
	ctx, r := newRun(ctx, x)
	msgs, err := x.def.Poll.OnPoll(ctx)
	r.settle(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*message.Message, 0, len(msgs))
	for _, m := range msgs {
		msg, err := message.NewJSON(m, nil)
		if err != nil {
			return out, fmt.Errorf("poll: a message cannot be encoded: %w", err)
		}
		out = append(out, msg)
	}
	return out, nil
}

// ownSource runs a source of a business service with the service's Self
// in its context: a poll function given to poll.New can send as the
// service (production.From).
type ownSource struct {
	channel.Source
	x *comp
}

func (o ownSource) Run(ctx context.Context, h channel.Handler) error {
	return o.Source.Run(withSelf(ctx, o.x), h)
}

// observer puts the service's run in the context of each run of its
// channel, so that its steps send as the service.
type observer struct {
	x    *comp
	next channel.RunObserver
}

func (o observer) BeginRun(ctx context.Context, ch, fl string, m *message.Message) (context.Context, string, func(error)) {
	var trace string
	var end func(error)
	if o.next != nil {
		ctx, trace, end = o.next.BeginRun(ctx, ch, fl, m)
	}
	ctx, r := newRun(ctx, o.x)
	return ctx, trace, func(err error) {
		r.settle(ctx)
		if end != nil {
			end(err)
		}
	}
}

// enter registers a request to the component, waiting for room in its
// pool; leave ends it.
func (x *comp) enter(ctx context.Context) error {
	x.gate.RLock()
	if !x.open {
		x.gate.RUnlock()
		return fmt.Errorf("production: %s %q: %w", x.def.Kind, x.def.Name, ErrStopped)
	}
	x.inflight.Add(1)
	x.gate.RUnlock()
	if x.pool != nil {
		select {
		case x.pool <- struct{}{}:
		case <-ctx.Done():
			x.inflight.Done()
			return fmt.Errorf("production: %s %q: waiting for room in its pool of %d: %w", x.def.Kind, x.def.Name, cap(x.pool), ctx.Err())
		}
	}
	x.running.Add(1)
	return nil
}

func (x *comp) leave(err error) {
	x.running.Add(-1)
	x.processed.Add(1)
	switch errors.KindOf(err) {
	case errors.KindOK:
	case errors.KindStop:
		x.rejected.Add(1)
	default:
		x.failed.Add(1)
	}
	if x.pool != nil {
		<-x.pool
	}
	x.inflight.Done()
}

// call runs the component's implementation on req and returns its output
// context. The caller has entered.
func (x *comp) call(ctx context.Context, req map[string]any) (out map[string]any, err error) {
	c := fc.FromMap(req)
	settings := x.def.Settings != nil && x.isFlow()
	if settings {
		c.Set("settings", x.def.Settings)
	}
	ctx, r := newRun(ctx, x)
	defer func() {
		if v := recover(); v != nil {
			err = errors.Recovered(v)
		}
		r.settle(ctx)
	}()
	if err = x.svc.Call(ctx, c); err != nil {
		return nil, err
	}
	out = c.Map()
	if settings {
		delete(out, "settings") // the component's, not the response's
	}
	return out, nil
}

// isFlow reports whether the implementation is a YAML or Go flow, whose
// runs find the settings under "settings".
func (x *comp) isFlow() bool {
	_, ok := x.svc.(*flow.Flow)
	return ok
}

func (x *comp) status() ComponentStatus {
	st := ComponentStatus{Name: x.def.Name, Kind: x.def.Kind.String(), State: channel.StateStopped}
	if x.def.Kind == Service {
		if x.ch != nil {
			cs := x.ch.Status()
			st.State, st.Running = cs.State, cs.InFlight
			for _, n := range cs.Outcomes {
				st.Processed += n
			}
			st.Processed -= cs.Outcomes["left"] + cs.Outcomes["duplicate"] + cs.Outcomes["waiting"]
			st.Failed, st.Rejected = cs.Outcomes["error"], cs.Outcomes["rejected"]
		}
		return st
	}
	x.gate.RLock()
	if x.open {
		st.State = channel.StateRunning
	}
	x.gate.RUnlock()
	st.Running, st.Processed, st.Failed, st.Rejected = x.running.Load(), x.processed.Load(), x.failed.Load(), x.rejected.Load()
	return st
}

package bus

import (
	"context"
	"log/slog"
)

type selfKey struct{}

// Self is a running service's handle on its bus: what microservicebus's
// BaseService gives a service (SubmitMessage, SubmitAction, Debug). An
// action finds it with [From]; OnStart and OnStop are given it.
type Self struct {
	s     *service
	inRun bool // the Self of runs in the service's own worker
}

// From returns the Self of the service whose action, OnStart, OnStop or
// Go function runs with ctx, or nil outside a bus service.
func From(ctx context.Context) *Self {
	x, _ := ctx.Value(selfKey{}).(*Self)
	return x
}

// Name returns the service's name.
func (x *Self) Name() string { return x.s.def.Name }

// Bus returns the service's bus.
func (x *Self) Bus() *Bus { return x.s.b }

// Logger returns the service's logger: records carry service=NAME, and
// debug records pass while the bus state's Debug is set.
func (x *Self) Logger() *slog.Logger { return x.s.log }

// Debug logs at debug level: shown while the bus state's Debug is set.
func (x *Self) Debug(msg string, args ...any) { x.s.log.Debug(msg, args...) }

// State returns the bus's desired state.
func (x *Self) State() State { return x.s.b.State() }

// Submit is [Bus.Submit] from this service (the message's meta.from is its
// name). From an action of the service to the service itself, a full
// mailbox fails at once with ErrMailboxFull instead of waiting: the
// service would wait for itself.
func (x *Self) Submit(ctx context.Context, destination, action string, body map[string]any) error {
	return x.s.b.submit(ctx, x.s.def.Name, destination, action, body, nil)
}

// SubmitMessage submits body to the Process action of the service that
// talks to the outside world (Options.Com, "com" by default), as
// microservicebus's SubmitMessage does.
func (x *Self) SubmitMessage(ctx context.Context, body map[string]any) error {
	return x.Submit(ctx, x.s.b.opts.Com, Process, body)
}

// Request is [Bus.Request] from this service.
func (x *Self) Request(ctx context.Context, destination, action string, body map[string]any) (map[string]any, error) {
	return x.s.b.request(ctx, x.s.def.Name, destination, action, body)
}

// Go runs fn in a goroutine that belongs to the service: its context is
// canceled when the service stops or restarts, which waits for fn to
// return. Start a service's own work (an interval producing readings)
// with it from OnStart. Called while the service is down, it does
// nothing.
func (x *Self) Go(fn func(ctx context.Context)) {
	s := x.s
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.bgCtx == nil || s.bgCtx.Err() != nil {
		return
	}
	ctx := s.bgCtx
	s.bgWG.Go(func() { fn(ctx) })
}

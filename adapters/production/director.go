package production

import (
	"context"
	"fmt"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/errors"
)

// Director reaches the business services of a production from other code
// (an HTTP handler, a test, a CLI), as IoP's Director does:
//
//	bs, err := prod.Director().Service("Python.MyBusinessService")
//	resp, err := bs.ProcessInput(ctx, map[string]any{"request_string": "hi"})
type Director struct{ p *Production }

// Director returns the production's director.
func (p *Production) Director() *Director { return p.director }

// Service returns the named business service: ErrUnknownTarget when
// there is none, an error naming the component's kind when it is a
// process or an operation (send to those).
func (d *Director) Service(name string) (*BusinessService, error) {
	d.p.mu.Lock()
	x := d.p.comps[name]
	d.p.mu.Unlock()
	if x == nil {
		return nil, fmt.Errorf("production: director: business service %q: %w", name, ErrUnknownTarget)
	}
	if x.def.Kind != Service {
		return nil, fmt.Errorf("production: director: %q is a %s, not a business service: send to it", name, x.def.Kind)
	}
	return &BusinessService{x: x}, nil
}

// BusinessService is a handle on a business service (Director.Service).
type BusinessService struct{ x *comp }

// Name returns the service's name.
func (b *BusinessService) Name() string { return b.x.def.Name }

// ProcessInput runs msg through the service as if one of its sources had
// delivered it (IoP's on_process_input): the message is recorded in the
// service's store and its implementation runs; it returns the run's
// output context. A rejection is the Stop error (errors.As finds its
// *errors.StopError); ErrStopped when the service does not run.
func (b *BusinessService) ProcessInput(ctx context.Context, msg map[string]any) (map[string]any, error) {
	res, err := b.Handle(ctx, msg)
	if err != nil {
		return nil, err
	}
	if res.Err != nil {
		return nil, fmt.Errorf("production: service %q: %w", b.x.def.Name, res.Err)
	}
	if res.Settle != channel.Ack {
		return nil, fmt.Errorf("production: service %q: not processed (%s, %s)", b.x.def.Name, res.Settle, res.Outcome)
	}
	var out map[string]any
	if res.Message != nil {
		out = res.Message.Context
	}
	return out, nil
}

// Handle is ProcessInput returning the channel's whole Result (its
// settle, outcome, stored state and message).
func (b *BusinessService) Handle(ctx context.Context, msg map[string]any) (channel.Result, error) {
	ch := b.x.ch
	if ch == nil || ch.Status().State != channel.StateRunning {
		return channel.Result{}, fmt.Errorf("production: service %q: %w", b.x.def.Name, ErrStopped)
	}
	m, err := message.NewJSON(msg, nil)
	if err != nil {
		return channel.Result{}, fmt.Errorf("production: service %q: %w", b.x.def.Name, errors.Stopf("the message cannot be encoded: %v", err))
	}
	return ch.Handle(ctx, m), nil
}

// Channel returns the service's channel (nil before the production's
// first Start): its store, status, replay.
func (b *BusinessService) Channel() *channel.Channel { return b.x.ch }

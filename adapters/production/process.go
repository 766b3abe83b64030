package production

import (
	"context"
	"fmt"

	fc "github.com/svcflow/svcflow/context"
)

// ProcessOf is a business process written in Go whose instances keep a
// state of type S between their callbacks, as IoP's BusinessProcess keeps
// its attributes between on_message, on_response and on_complete. It is
// a flow.Service: give it as a Component's Service.
//
// For each request the production makes an [Instance] (its Request, an
// empty Response and a zero State) and calls OnMessage, which sends with
// the instance's SendSync, SendAsync and SendMulti. Then, while async
// calls are pending, OnResponse is called with each one's [Result] as it
// ends (in the order they end, one at a time: the state needs no lock;
// OnResponse may send more async calls). Then OnComplete. The process's
// response is its request with the entries of Response set on it.
//
// An error from a callback ends the instance with that error (the async
// calls still out are waited for and their responses dropped). The
// state lives in memory for the request's run: it does not survive a
// restart of the process (see the package doc on durability).
type ProcessOf[S any] struct {
	// ServiceName is its name as a flow.Service (the component's,
	// typically).
	ServiceName string
	// OnInit is called once when the component starts (IoP's on_init);
	// OnTearDown once when it stops (on_tear_down). Both optional.
	OnInit     func(ctx context.Context) error
	OnTearDown func(ctx context.Context) error
	// OnMessage handles the request (required).
	OnMessage func(ctx context.Context, in *Instance[S]) error
	// OnResponse receives each async call's result, its completion key in
	// r.Key (optional: without it the results are dropped).
	OnResponse func(ctx context.Context, in *Instance[S], r Result) error
	// OnComplete is called once every async call ended (optional).
	OnComplete func(ctx context.Context, in *Instance[S]) error
}

// Instance is one request's run of a [ProcessOf]: its request, the
// response it builds and its state.
type Instance[S any] struct {
	// Request is the process's request (its input context).
	Request map[string]any
	// Response entries are set on the process's output context.
	Response map[string]any
	// State is kept between the callbacks of this instance.
	State S

	self *Self
}

// Self returns the component running the instance.
func (in *Instance[S]) Self() *Self { return in.self }

// SendSync sends req to target and waits for its response (Self.SendSync).
func (in *Instance[S]) SendSync(ctx context.Context, target string, req map[string]any) (map[string]any, error) {
	return in.self.SendSync(ctx, target, req)
}

// SendAsync sends req to target with a completion key; its Result goes to
// OnResponse (Self.SendAsync).
func (in *Instance[S]) SendAsync(ctx context.Context, target string, req map[string]any, completionKey string) error {
	return in.self.SendAsync(ctx, target, req, completionKey)
}

// SendMulti runs the calls concurrently and returns their results in
// order (Self.SendMulti).
func (in *Instance[S]) SendMulti(ctx context.Context, calls ...Call) []Result {
	return in.self.SendMulti(ctx, calls...)
}

// Name implements flow.Service.
func (p *ProcessOf[S]) Name() string { return p.ServiceName }

// Init implements flow.Initializer: OnInit.
func (p *ProcessOf[S]) Init(ctx context.Context) error {
	if p.OnInit != nil {
		return p.OnInit(ctx)
	}
	return nil
}

// Close implements flow.Closer: OnTearDown.
func (p *ProcessOf[S]) Close(ctx context.Context) error {
	if p.OnTearDown != nil {
		return p.OnTearDown(ctx)
	}
	return nil
}

// Call implements flow.Service: one instance, from OnMessage to
// OnComplete. It must run in a component's run (production.From(ctx)).
func (p *ProcessOf[S]) Call(ctx context.Context, c *fc.Context) error {
	self := From(ctx)
	if self == nil {
		return fmt.Errorf("process %q: %w", p.ServiceName, ErrNotInRun)
	}
	if p.OnMessage == nil {
		return fmt.Errorf("process %q: no OnMessage", p.ServiceName)
	}
	in := &Instance[S]{Request: c.Map(), Response: map[string]any{}, self: self}
	if err := p.OnMessage(ctx, in); err != nil {
		return err
	}
	for {
		r, ok := self.Next(ctx)
		if !ok {
			break
		}
		if r.Key == "" && r.Target == "" && r.Err != nil {
			return r.Err // ctx ended while waiting
		}
		if p.OnResponse != nil {
			if err := p.OnResponse(ctx, in, r); err != nil {
				return err
			}
		}
	}
	if p.OnComplete != nil {
		if err := p.OnComplete(ctx, in); err != nil {
			return err
		}
	}
	for k, v := range in.Response {
		c.Set(k, v)
	}
	return nil
}

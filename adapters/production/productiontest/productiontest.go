// Package productiontest runs a production in memory for tests: it
// captures every send (who sent what to which target, the mode and
// completion key, the response and status), substitutes components with
// stand-ins, and stops the production when the test ends.
//
//	h := productiontest.Start(t, prod,
//		productiontest.Respond("Python.MyBusinessOperation", func(req map[string]any) (map[string]any, error) {
//			return map[string]any{"my_string": "stub"}, nil
//		}))
//	out, err := h.ProcessInput("Python.MyBusinessService", map[string]any{"request_string": "hi"})
//	sends := h.SendsTo("Python.MyBusinessOperation")
//
// Polling business services poll on ordinary timers: run the test in a
// testing/synctest bubble (synctest.Test) and time.Sleep moves the fake
// clock, so a poll every hour is tested at once. Start the harness inside
// the bubble; the production stops in the bubble's cleanup.
package productiontest

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/production"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// Harness is a started production whose sends are captured. It is safe
// for concurrent use.
type Harness struct {
	// Production is the running production.
	Production *production.Production

	t     testing.TB
	mu    sync.Mutex
	sends []production.Send
	subs  map[string]flow.Service
}

// Option configures Start.
type Option func(*Harness)

// Substitute replaces the implementation of the named component with svc
// (see Production.Substitute): a stand-in for an operation that calls a
// real system.
func Substitute(name string, svc flow.Service) Option {
	return func(h *Harness) { h.subs[name] = svc }
}

// Respond substitutes the named component with a function of its
// request: its response's entries are set on the output context; an
// error fails the request (errors.Stop rejects it).
func Respond(name string, fn func(req map[string]any) (map[string]any, error)) Option {
	return Substitute(name, flow.Step(name, func(ctx context.Context, c *fc.Context) error {
		out, err := fn(c.Map())
		if err != nil {
			return err
		}
		for k, v := range out {
			c.Set(k, v)
		}
		return nil
	}))
}

// Start substitutes components, starts capturing sends and starts p; the
// production stops when the test ends. A failure to start fails the
// test.
func Start(t testing.TB, p *production.Production, opts ...Option) *Harness {
	t.Helper()
	h := &Harness{Production: p, t: t, subs: map[string]flow.Service{}}
	for _, o := range opts {
		o(h)
	}
	for _, name := range slices.Sorted(maps.Keys(h.subs)) {
		if err := p.Substitute(name, h.subs[name]); err != nil {
			t.Fatalf("productiontest: %v", err)
		}
	}
	if err := p.Observe(h.capture); err != nil {
		t.Fatalf("productiontest: %v", err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatalf("productiontest: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(context.Background()); err != nil {
			t.Errorf("productiontest: stop: %v", err)
		}
	})
	return h
}

// FromConfig builds the production of cfg's production: section with
// memory stores (business services' stores as the file names them) and
// starts it as Start does.
func FromConfig(t testing.TB, cfg *config.Config, opts ...Option) *Harness {
	t.Helper()
	built, err := production.FromConfig(cfg, production.ConfigOptions{Open: true})
	if err != nil {
		t.Fatalf("productiontest: %v", err)
	}
	if built == nil {
		t.Fatalf("productiontest: the configuration declares no production")
	}
	t.Cleanup(func() { _ = built.Close() })
	return Start(t, built.Production, opts...)
}

func (h *Harness) capture(s production.Send) {
	h.mu.Lock()
	h.sends = append(h.sends, s)
	h.mu.Unlock()
}

// Sends returns the sends captured so far, in the order they ended (a
// process's call ends before the send that reached the process).
func (h *Harness) Sends() []production.Send {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.sends)
}

// SendsTo returns the captured sends that reached the named component.
func (h *Harness) SendsTo(component string) []production.Send {
	var out []production.Send
	for _, s := range h.Sends() {
		if s.Component == component {
			out = append(out, s)
		}
	}
	return out
}

// Reset forgets the sends captured so far.
func (h *Harness) Reset() {
	h.mu.Lock()
	h.sends = nil
	h.mu.Unlock()
}

// SendSync sends req to target from outside the production
// (Production.SendSync).
func (h *Harness) SendSync(target string, req map[string]any) (map[string]any, error) {
	return h.Production.SendSync(context.Background(), target, req)
}

// ProcessInput runs msg through the named business service
// (Director.Service(name).ProcessInput).
func (h *Harness) ProcessInput(service string, msg map[string]any) (map[string]any, error) {
	bs, err := h.Production.Director().Service(service)
	if err != nil {
		return nil, err
	}
	return bs.ProcessInput(context.Background(), msg)
}

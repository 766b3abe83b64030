package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/bus"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// hub connects the buses of one test as a broker connects processes: a
// Transport that hands messages to the Receiver of the bus that has the
// destination.
type hub struct {
	mu    sync.Mutex
	procs map[string]bus.Receiver
	all   []bus.Receiver
}

type pipe struct {
	h    *hub
	self bus.Receiver
}

func (p *pipe) Start(ctx context.Context, local []string, r bus.Receiver) error {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	if p.h.procs == nil {
		p.h.procs = map[string]bus.Receiver{}
	}
	for _, name := range local {
		p.h.procs[name] = r
	}
	p.self = r
	p.h.all = append(p.h.all, r)
	return nil
}

func (p *pipe) route(m *bus.Message) (bus.Receiver, error) {
	p.h.mu.Lock()
	defer p.h.mu.Unlock()
	r := p.h.procs[m.Destination]
	if r == nil {
		return nil, fmt.Errorf("no process has %q: %w", m.Destination, bus.ErrUnknownDestination)
	}
	return r, nil
}

func (p *pipe) Submit(ctx context.Context, m *bus.Message) error {
	if m.Destination == bus.Broadcast {
		p.h.mu.Lock()
		all := append([]bus.Receiver(nil), p.h.all...)
		p.h.mu.Unlock()
		var errs []error
		for _, r := range all {
			if r != p.self {
				_, err := r.Receive(ctx, m, false)
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	r, err := p.route(m)
	if err != nil {
		return err
	}
	_, err = r.Receive(ctx, m, false)
	return err
}

func (p *pipe) Request(ctx context.Context, m *bus.Message) (map[string]any, error) {
	r, err := p.route(m)
	if err != nil {
		return nil, err
	}
	return r.Receive(ctx, m, true)
}

func (p *pipe) Stop(ctx context.Context) error { return nil }

// TestTransportCarriesSubmitsRequestsAndBroadcasts: two buses, services
// split between them, joined by a Transport.
func TestTransportCarriesSubmitsRequestsAndBroadcasts(t *testing.T) {
	h := &hub{}
	pings := map[string]*recorder{"a": {}, "b": {}}
	gotB := &recorder{}
	ask := flow.Step("ask", func(ctx context.Context, c *fc.Context) error {
		out, err := bus.From(ctx).Request(ctx, "b", "Double", map[string]any{"n": 21})
		if err != nil {
			return err
		}
		c.Set("answer", out["twice"])
		return bus.From(ctx).Submit(ctx, "b", bus.Process, map[string]any{"note": "from a"})
	})
	double := flow.Step("double", func(ctx context.Context, c *fc.Context) error {
		n, _ := c.Get("n")
		c.Set("twice", n.(int)*2)
		return nil
	})
	reject := flow.Step("reject", func(ctx context.Context, c *fc.Context) error { return errors.Stop("not here") })
	a := newBus(t, bus.Options{Transport: &pipe{h: h}},
		bus.Service{Name: "a", Actions: bus.Actions{"Ask": ask, "Ping": pings["a"].action("ping")}})
	b := newBus(t, bus.Options{Transport: &pipe{h: h}},
		bus.Service{Name: "b", Actions: bus.Actions{"Double": double, bus.Process: gotB.action("p"), "Ping": pings["b"].action("ping"), "Reject": reject}})

	out, err := a.Request(t.Context(), "a", "Ask", nil)
	require.NoError(t, err)
	assert.Equal(t, 42, out["answer"], "a request to a service of the other bus")
	_, err = a.Request(t.Context(), "b", "Reject", nil)
	se, ok := errors.AsType[*errors.StopError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, "not here", se.Reason)
	require.NoError(t, a.Submit(t.Context(), bus.Broadcast, "Ping", map[string]any{"k": 1}))
	err = a.Submit(t.Context(), "nowhere", bus.Process, nil)
	require.ErrorIs(t, err, bus.ErrUnknownDestination)

	stop(t, a)
	stop(t, b)
	require.Len(t, gotB.all(), 1)
	assert.Equal(t, "a", gotB.all()[0]["meta"].(map[string]any)["from"], "the sender's name crosses the transport")
	assert.Len(t, pings["a"].all(), 1, "broadcast: once in each process")
	assert.Len(t, pings["b"].all(), 1)
}

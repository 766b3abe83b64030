package nats_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/bus"
	snats "github.com/svcflow/svcflow/adapters/nats"
	"github.com/svcflow/svcflow/adapters/serve"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// seen records the runs of an action by message id.
type seen struct {
	mu   sync.Mutex
	runs map[string]int
	from map[string]string
}

func newSeen() *seen { return &seen{runs: map[string]int{}, from: map[string]string{}} }

func (s *seen) action(name string) flow.Service {
	return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
		meta, _ := c.Get("meta")
		m := meta.(map[string]any)
		s.mu.Lock()
		defer s.mu.Unlock()
		id := m["id"].(string)
		s.runs[id]++
		s.from[id], _ = m["from"].(string)
		return nil
	})
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.runs)
}

func (s *seen) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.runs {
		n += r
	}
	return n
}

func transportSpec(url string) snats.TransportSpec {
	return snats.TransportSpec{URL: []string{url}, AckWait: 2 * time.Second}
}

func startBus(t *testing.T, url string, svcs ...bus.Service) *bus.Bus {
	t.Helper()
	tr, err := snats.NewTransport(transportSpec(url), "", quiet)
	require.NoError(t, err)
	b := bus.New(bus.Options{Logger: quiet, Transport: tr})
	for _, s := range svcs {
		require.NoError(t, b.Add(s))
	}
	require.NoError(t, b.Start(t.Context()))
	return b
}

// TestTransportAcrossBuses: two buses (as two processes) on one real
// nats-server, services split between them: Submit, Request, a Stop's
// reason, an unknown action and destination, and a broadcast that runs
// once in every service of both.
func TestTransportAcrossBuses(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	defer stopServer(srv)
	url := srv.ClientURL()

	gotB, pingA, pingB, pingC := newSeen(), newSeen(), newSeen(), newSeen()
	double := flow.Step("double", func(ctx context.Context, c *fc.Context) error {
		n, _ := c.Get("n")
		c.Set("twice", n.(float64)*2)
		return nil
	})
	reject := flow.Step("reject", func(ctx context.Context, c *fc.Context) error { return errors.Stop("not here") })
	ask := flow.Step("ask", func(ctx context.Context, c *fc.Context) error {
		out, err := bus.From(ctx).Request(ctx, "b", "Double", map[string]any{"n": 21})
		if err != nil {
			return err
		}
		c.Set("answer", out["twice"])
		return bus.From(ctx).Submit(ctx, "b", bus.Process, map[string]any{"note": "from a"})
	})
	b := startBus(t, url,
		bus.Service{Name: "b", Actions: bus.Actions{"Double": double, bus.Process: gotB.action("p"), "Ping": pingB.action("ping"), "Reject": reject}},
		bus.Service{Name: "c", Actions: bus.Actions{"Ping": pingC.action("ping")}})
	a := startBus(t, url, bus.Service{Name: "a", Actions: bus.Actions{"Ask": ask, "Ping": pingA.action("ping")}})

	out, err := a.Request(t.Context(), "a", "Ask", nil)
	require.NoError(t, err)
	assert.Equal(t, 42.0, out["answer"], "a request to a service of the other process")

	_, err = a.Request(t.Context(), "b", "Reject", nil)
	se, ok := errors.AsType[*errors.StopError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, "not here", se.Reason)
	assert.Equal(t, errors.KindStop, errors.KindOf(err))

	_, err = a.Request(t.Context(), "b", "Nope", nil)
	require.ErrorIs(t, err, bus.ErrUnknownAction)
	_, err = a.Request(t.Context(), "nowhere", "Nope", nil)
	require.ErrorIs(t, err, bus.ErrUnknownDestination)
	require.ErrorIs(t, a.Submit(t.Context(), "nowhere", bus.Process, nil), bus.ErrUnknownDestination)

	require.NoError(t, a.Submit(t.Context(), bus.Broadcast, "Ping", map[string]any{"k": 1}))
	require.NoError(t, b.Submit(t.Context(), bus.Broadcast, "Ping", map[string]any{"k": 2}))
	require.Eventually(t, func() bool {
		return gotB.count() == 1 && pingA.count() == 2 && pingB.count() == 2 && pingC.count() == 2
	}, 10*time.Second, 5*time.Millisecond)

	require.NoError(t, a.Stop(t.Context()))
	require.NoError(t, b.Stop(t.Context()))
	assert.Equal(t, 2, pingA.total(), "a broadcast runs once in each service")
	assert.Equal(t, 2, pingB.total())
	assert.Equal(t, 2, pingC.total())
	for id, from := range gotB.from {
		assert.Equal(t, "a", from, "the sender crosses processes (%s)", id)
	}
}

// TestTransportKeepsSubmitsWhileDown: messages submitted while the
// receiving bus is stopped wait in the stream and run once it starts
// again, each once, with the sender's id.
func TestTransportKeepsSubmitsWhileDown(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	defer stopServer(srv)
	url := srv.ClientURL()
	got := newSeen()
	svc := bus.Service{Name: "b", Actions: bus.Actions{bus.Process: got.action("p")}}
	b := startBus(t, url, svc)
	require.NoError(t, b.Stop(t.Context()))

	a := startBus(t, url, bus.Service{Name: "a", Actions: bus.Actions{bus.Process: flow.Step("x", func(context.Context, *fc.Context) error { return nil })}})
	defer func() { require.NoError(t, a.Stop(context.Background())) }()
	for i := range 50 {
		require.NoError(t, a.Submit(t.Context(), "b", bus.Process, map[string]any{"i": i}))
	}
	b = startBus(t, url, svc)
	require.Eventually(t, func() bool { return got.count() == 50 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, b.Stop(t.Context()))
	assert.Equal(t, 50, got.total(), "each once")
}

// TestTransportValidate: validate reports the bus transport's spec errors
// at file:line:col.
func TestTransportValidate(t *testing.T) {
	cfg := load(t, `version: 1
flows:
  work:
    steps: [{set: {x: "1"}}]
services:
  svc:
    actions: {Process: work}
bus:
  transport:
    nats: {url: "localhost:4222", stream: "S.V", ack_wait: soon}
`)
	err := serve.Check(cfg, serve.Options{DataDir: t.TempDir()})
	require.Error(t, err)
	for _, want := range []string{
		`serve.yaml:10:60: bus: transport: nats: ack_wait: expected a duration such as 250ms or 2s, got "soon"`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	cfg = load(t, `version: 1
flows:
  work:
    steps: [{set: {x: "1"}}]
services:
  svc:
    actions: {Process: work}
bus:
  transport:
    nats: {url: "localhost:4222", stream: "S.V"}
`)
	err = serve.Check(cfg, serve.Options{DataDir: t.TempDir()})
	require.Error(t, err)
	t.Log(err)
	assert.Contains(t, err.Error(), `serve.yaml:10:5: bus: transport: nats: url:`)
	assert.Contains(t, err.Error(), `url: "localhost:4222" is not a NATS URL`)
	assert.Contains(t, err.Error(), `stream: "S.V": a stream name`)
	cfg = load(t, `version: 1
flows:
  work:
    steps: [{set: {x: "1"}}]
services:
  svc:
    actions: {Process: work}
bus:
  transport:
    kafka: {}
`)
	err = serve.Check(cfg, serve.Options{DataDir: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `serve.yaml:10:5: bus: transport: unknown transport "kafka"`)
}

package nats

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
)

// SourceComponent is the nats source component: a durable pull consumer
// of a JetStream stream (see [Source] and [Spec]).
var SourceComponent = component.Source("nats", "a JetStream stream's messages through a durable pull consumer shared by every worker; ack on done or Stop, nak with delay on retry, dead letter after max_deliver",
	func(env component.Env, s Spec) (channel.Source, error) {
		src, err := NewSource(env.Name, s, env.DataDir, env.Logger)
		if err != nil {
			return nil, err
		}
		// serve opens the nats sources' endpoints before the channels start
		// (a bad URL or a differing stream fails the start), reports their
		// connections in /readyz and their counters in /metrics.
		srv, err := env.Server("nats", func() (component.Server, error) { return &group{}, nil })
		if err != nil {
			return nil, err
		}
		g, ok := srv.(*group)
		if !ok {
			return nil, fmt.Errorf("nats: the server key is taken by a %T", srv)
		}
		if err := g.add(src); err != nil {
			return nil, err
		}
		return src, nil
	})

func init() { component.Register(SourceComponent, Publish, SinkComponent) }

// group is the nats sources of one configuration, as one component.Server
// that serve opens before the channels start and closes after they stop.
type group struct {
	mu      sync.Mutex
	sources []*Source
}

func (g *group) add(src *Source) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, o := range g.sources {
		if o.name == src.name && o.spec.Stream == src.spec.Stream && o.spec.Consumer == src.spec.Consumer {
			return fmt.Errorf("channel %q takes stream %s with consumer %s twice", src.name, src.spec.Stream, src.spec.Consumer)
		}
	}
	g.sources = append(g.sources, src)
	return nil
}

func (g *group) all() []*Source {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.sources)
}

// Listen opens every source's endpoint: it starts the embedded server or
// connects, and makes or checks streams and consumers.
func (g *group) Listen() error {
	var errs []error
	for _, s := range g.all() {
		if err := s.ep.Listen(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Addr returns the URLs connected to, one per source.
func (g *group) Addr() string {
	var out []string
	for _, s := range g.all() {
		if a := s.ep.Addr(); a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return strings.Join(out, ",")
}

// Serve keeps the endpoints open until ctx ends.
func (g *group) Serve(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range g.all() {
		wg.Go(func() { _ = s.ep.Serve(ctx) })
	}
	wg.Wait()
	return nil
}

// Ready reports whether every source is connected.
func (g *group) Ready() bool {
	for _, s := range g.all() {
		if !s.ep.Ready() {
			return false
		}
	}
	return true
}

// WaitReady returns once every source is connected, or with ctx's error.
func (g *group) WaitReady(ctx context.Context) error {
	for _, s := range g.all() {
		if err := s.ep.WaitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

// WritePrometheus writes the sources' counters (serve's /metrics calls
// it): svcflow_nats_messages_total{channel,stream,consumer,event} for
// the events delivered, redelivered, acked, nacked, terminated and left;
// svcflow_nats_connected; svcflow_nats_consumer_pending and
// svcflow_nats_consumer_ack_pending, asked of the server.
func (g *group) WritePrometheus(w io.Writer) error {
	return WritePrometheus(w, g.all()...)
}

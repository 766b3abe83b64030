package serve

import (
	"context"

	"github.com/svcflow/svcflow/adapters/bus"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/flow"
)

// buildBus builds the bus of the configuration's services: (nil when it
// declares none), with the flows measured and the sources sharing the
// channels' servers.
func (s *Server) buildBus(cfg *config.Config, open bool) (*bus.Built, error) {
	if len(cfg.Services()) == 0 {
		return nil, nil
	}
	return bus.FromConfig(cfg, bus.ConfigOptions{
		Options:    bus.Options{Logger: s.log},
		Env:        component.Env{Logger: s.log, DataDir: s.opts.DataDir, Servers: s.servers},
		Middleware: []flow.Middleware{flow.Measure(s.metrics)},
		Open:       open,
	})
}

// Bus returns the bus running the configuration's services, or nil when
// it declares none.
func (s *Server) Bus() *bus.Bus {
	if s.bus == nil {
		return nil
	}
	return s.bus.Bus
}

// startBus starts the services before the channels, so that the flows of
// both find them running.
func (s *Server) startBus(ctx context.Context) error {
	if s.bus == nil {
		return nil
	}
	return s.bus.Bus.Start(ctx)
}

// stopBus stops the services after the channels.
func (s *Server) stopBus(ctx context.Context) error {
	if s.bus == nil {
		return nil
	}
	return s.bus.Bus.Stop(ctx)
}

// busNotReady names the services that should run and do not ("service
// NAME"): a custom service the bus state disabled is not one of them;
// and "bus transport" until the transport to other processes started.
func (s *Server) busNotReady() []string {
	if s.bus == nil {
		return nil
	}
	var out []string
	if !s.bus.Bus.TransportReady() {
		out = append(out, "bus transport")
	}
	for _, st := range s.bus.Bus.Status() {
		if !st.Disabled && st.State != bus.StateRunning {
			out = append(out, "service "+st.Name)
		}
	}
	return out
}

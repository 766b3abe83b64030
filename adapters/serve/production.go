package serve

import (
	"context"
	"strings"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/production"
	"github.com/svcflow/svcflow/flow"
)

// buildProduction builds the production of the configuration's
// production: section (nil when it declares none), with the flows
// measured, the business services' sources sharing the channels' servers
// and their stores by default where a channel's would be.
func (s *Server) buildProduction(cfg *config.Config, open bool) (*production.Built, error) {
	if len(cfg.Production()) == 0 {
		return nil, nil
	}
	def := strings.NewReplacer("{data}", s.opts.DataDir, "{channel}", "{name}").Replace(s.opts.DefaultStore)
	return production.FromConfig(cfg, production.ConfigOptions{
		Options:      production.Options{Logger: s.log, Observer: s.opts.Observer},
		Env:          component.Env{Logger: s.log, DataDir: s.opts.DataDir, Servers: s.sourceServers(), Existing: s.opts.ExistingStores},
		Middleware:   append([]flow.Middleware{flow.Measure(s.metrics)}, s.opts.Middleware...),
		DefaultStore: def,
		Open:         open,
	})
}

// Production returns the production of the configuration's production:
// section, or nil when it declares none.
func (s *Server) Production() *production.Production {
	s.reload.chMu.RLock() // an apply may replace it
	defer s.reload.chMu.RUnlock()
	if s.production == nil {
		return nil
	}
	return s.production.Production
}

// startProduction starts the production before the channels (and after
// the bus), so that the flows of both find its components running.
func (s *Server) startProduction(ctx context.Context) error {
	if s.production == nil {
		return nil
	}
	return s.production.Production.Start(ctx)
}

// stopProduction stops the production after the channels.
func (s *Server) stopProduction(ctx context.Context) error {
	if s.production == nil {
		return nil
	}
	return s.production.Production.Stop(ctx)
}

// productionChannels are the channels of the business services.
func (s *Server) productionChannels() []*channel.Channel {
	s.reload.chMu.RLock() // an apply may replace it
	defer s.reload.chMu.RUnlock()
	if s.production == nil {
		return nil
	}
	return s.production.Production.Channels()
}

// productionNotReady names the components that should run and do not
// ("component NAME").
func (s *Server) productionNotReady() []string {
	s.reload.chMu.RLock() // an apply may replace it
	defer s.reload.chMu.RUnlock()
	if s.production == nil {
		return nil
	}
	var out []string
	for _, st := range s.production.Production.Status() {
		if st.State != channel.StateRunning {
			out = append(out, "component "+st.Name)
		}
	}
	return out
}

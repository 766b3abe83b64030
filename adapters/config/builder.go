package config

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// Builder returns a builder of a new instance of the named flow, for a
// caller that adds to it before building (middleware with Use, a tap error
// hook): the channels of `flowrun serve` build their flows this way, one
// instance per channel.
//
// The instance's services are its own: each call makes every built-in step
// anew, builds a new instance of every flow it calls (`call:`), and calls
// the factory of every `use:` step of a registered factory again. The flow
// built from it (build it once: flows built from one builder share its
// services) owns them: whoever calls its Init calls its Close, and closing
// it, or restarting its services after a Fatal error, touches no other
// instance. The one exception is a service registered as a ready instance
// ([Registry.Register]) that has a lifecycle, which cannot be made anew:
// each `use:` step of it in each instance holds a reference to it, and the
// service's Init runs on the Init of a reference when no other reference is
// initialised, and its Close on the Close of the last initialised
// reference. Closing an instance therefore leaves such a service open for
// the others, and restarting one does not restart it while another
// instance holds it.
//
// [Config.Flow] returns the instance the configuration made when it was
// loaded; it is not shared with any instance built from Builder.
func (c *Config) Builder(name string) (*flow.Builder, bool) {
	def, ok := c.flows[name]
	if !ok {
		return nil, false
	}
	return def.builder(nil), true
}

// A stepDef is a parsed step as the loader keeps it: make makes a new
// instance of the step's service, with services of its own, each time it
// is called (see [Config.Builder]). A flow's instance is the services its
// step definitions make; nothing is shared between two instances but what
// the definitions hold that never changes (compiled expressions and
// templates, settings), and ready services registered with a lifecycle,
// reference counted (see owner).
type stepDef struct {
	name string // the name of the service make returns
	make func() flow.Service
}

// A maker makes services from step definitions.
type maker func(steps []stepDef) []flow.Service

// makeAll makes a new instance of each step.
func makeAll(steps []stepDef) []flow.Service {
	out := make([]flow.Service, len(steps))
	for i, s := range steps {
		out[i] = s.make()
	}
	return out
}

// namesOnly stands in for steps with services that only have their names.
func namesOnly(steps []stepDef) []flow.Service {
	out := make([]flow.Service, len(steps))
	for i, s := range steps {
		out[i] = flow.Step(s.name, nil)
	}
	return out
}

// combined returns the definition of a combinator that build makes from
// the services mk makes of its steps. Its name is the combinator's, made
// over stand-ins of its steps (a combinator's name depends on its settings
// and on the names of its steps only).
func combined(build func(mk maker) flow.Service) stepDef {
	return stepDef{name: build(namesOnly).Name(), make: func() flow.Service { return build(makeAll) }}
}

// spareService holds the service a factory made when its step was parsed
// (to check its arguments and contract), for the first instance to take.
type spareService struct {
	mu  sync.Mutex
	svc flow.Service
}

func (s *spareService) take() flow.Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc := s.svc
	s.svc = nil
	return svc
}

// brokenStep stands in for a step whose service could not be made: its
// flow does not build, and reports err for the step.
func brokenStep(name string, err error) flow.Service { return &broken{name: name, err: err} }

type broken struct {
	name string
	err  error
}

func (b *broken) Name() string { return b.name }

// Prepare makes the error a build error of the step.
func (b *broken) Prepare(map[string]reflect.Type) (flow.Service, error) { return nil, b.err }

func (b *broken) Init(context.Context) error { return b.err }

func (b *broken) Call(context.Context, *fc.Context) error { return b.err }

// instance returns a call step named step running a new instance of the
// called flow. While that flow is not built (it is missing, or the loader
// has not built it yet), the step stands in for it as loader.check says,
// for the flow caller.
func (t *callTarget) instance(step string, caller *flowDef) flow.Service {
	if t.f == nil {
		return &callService{name: step, target: t, caller: caller}
	}
	f, err := t.def.builder(nil).Build()
	if err != nil {
		return brokenStep(step, fmt.Errorf("call %q: %w", t.name, err))
	}
	return &callService{name: step, target: t, f: f}
}

package config

import (
	"context"
	"fmt"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// callTarget is a flow of the configuration that call steps run: its
// definition, and the instance the configuration owns once it is built,
// before the flows that call it.
type callTarget struct {
	name  string
	def   *flowDef // nil while no flow of the name is declared
	input []fc.KeyInfo
	f     *flow.Flow
}

// callService runs its own instance of another flow on the caller's
// context; the instance's lifecycle is the step's.
type callService struct {
	name   string
	f      *flow.Flow // nil: a stand-in for a missing flow (see loader.check)
	target *callTarget
	caller *flowDef // the flow holding a stand-in
}

func (s *callService) Name() string { return s.name }

func (s *callService) Call(ctx context.Context, c *fc.Context) error {
	if s.f == nil {
		return fmt.Errorf("call %q: flow not built", s.target.name)
	}
	return s.f.RunContext(ctx, c)
}

// Contract is the called flow's. A stand-in for a missing flow (unknown,
// broken, or in a loop of calls) needs its declared input and provides,
// untyped, every key the calling flow reads (see loader.check).
func (s *callService) Contract() flow.Contract {
	if s.f == nil {
		return flow.Contract{Needs: s.target.input, Provides: s.caller.openKeys()}
	}
	return s.f.Contract()
}

// Init implements flow.Initializer for the called flow's services.
func (s *callService) Init(ctx context.Context) error {
	if s.f == nil {
		return nil
	}
	return s.f.Init(ctx)
}

// Close implements flow.Closer for the called flow's services.
func (s *callService) Close(ctx context.Context) error {
	if s.f == nil {
		return nil
	}
	return s.f.Close(ctx)
}

// Wait waits for the taps of the called flow.
func (s *callService) Wait(ctx context.Context) error {
	if s.f == nil {
		return nil
	}
	return s.f.Wait(ctx)
}

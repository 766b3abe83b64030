package steps

import (
	"context"
	"fmt"
	"time"

	"github.com/svcflow/svcflow/adapters/component"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// SleepSpec is the spec of a sleep step: a wait that ends early, with the
// run's error, when the run is canceled.
//
//	sleep: 100ms
type SleepSpec struct {
	Duration time.Duration `yaml:"duration" spec:"required,scalar" doc:"how long to wait"`
}

// StepName is "sleep(100ms)".
func (s SleepSpec) StepName() string { return "sleep(" + s.Duration.String() + ")" }

func newSleep(env component.Env, s SleepSpec) (flow.Service, error) {
	if s.Duration <= 0 {
		return nil, component.FieldErrorf("duration", "expected a positive duration, got %s", s.Duration)
	}
	sl := &sleepService{name: env.Name, d: s.Duration}
	if s.Duration > ParkAfter {
		return parkingSleep{sl}, nil
	}
	return sl, nil
}

// sleepService waits, ending early when the run is canceled.
type sleepService struct {
	name string
	d    time.Duration
}

func (s *sleepService) Name() string { return s.name }

func (s *sleepService) Call(ctx context.Context, _ *fc.Context) error {
	t := time.NewTimer(s.d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sleep: %w", ctx.Err())
	}
}

package steps

import (
	"context"
	"fmt"
	"reflect"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/branch"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// StopSpec is the spec of a stop step: the run ends with a Stop error
// (rejected, never retried) when the condition holds; without one, always.
//
//	stop: {if: "len(items) == 0", reason: "no items"}
//	stop: "not for us"          # the reason alone: always stops
//
// The step needs the keys its condition and reason read.
type StopSpec struct {
	If     component.Cond     `yaml:"if" doc:"the condition (an expression); without it the step always stops"`
	Reason component.Template `yaml:"reason" spec:"scalar" doc:"the reason, a template over the context (default: stopped: CONDITION)"`
}

// StepName is "stop(REASON)" for a reason without placeholders, else
// "stop". It never holds the condition's source, so that the name, which
// labels the step's metrics, stays short and stable (a flow with several
// such steps numbers them: "stop", "stop#2").
func (s StopSpec) StepName() string {
	if r := s.Reason.Source(); r != "" && s.Reason.Constant() {
		return "stop(" + shortName(r) + ")"
	}
	return "stop"
}

func newStop(env component.Env, s StopSpec) (flow.Service, error) {
	reason := s.Reason
	if reason.IsZero() {
		reason = component.Text("stopped")
		if !s.If.IsZero() {
			reason = component.Text("stopped: " + s.If.Source())
		}
	}
	reads := append(s.If.Keys(), reason.Keys()...)
	return &stopService{name: env.Name, src: s.If, cond: s.If.Parsed(), reason: reason, contract: flow.Contract{Needs: needsOf(reads)}}, nil
}

// stopService ends the run with a Stop error when its condition holds.
type stopService struct {
	name     string
	src      component.Cond
	cond     *branch.Expr // nil: always
	reason   component.Template
	contract flow.Contract
}

func (s *stopService) Name() string            { return s.name }
func (s *stopService) Contract() flow.Contract { return s.contract }

func (s *stopService) Call(_ context.Context, c *fc.Context) error {
	if s.cond != nil {
		env := c.View()
		ok, err := s.cond.EvalBool(env)
		if err != nil {
			return s.cond.DataError("stop condition", env, err)
		}
		if !ok {
			return nil
		}
	}
	reason, err := s.reason.Execute(c.View())
	if err != nil {
		return fmt.Errorf("stop reason: %w", err)
	}
	return errors.Stop(reason)
}

// Prepare compiles the condition against the Go types of the keys known
// where the step sits, so a type mistake is a build error.
func (s *stopService) Prepare(known map[string]reflect.Type) (flow.Service, error) {
	if s.cond == nil {
		return s, nil
	}
	e, err := s.src.Compile(known)
	if err != nil {
		return nil, fmt.Errorf("stop condition: %w", err)
	}
	out := *s
	out.cond = e
	return &out, nil
}

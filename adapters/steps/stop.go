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
	return newEnd(env.Name, "stop", "stopped", s.If, s.Reason, errors.Stop), nil
}

// newEnd makes the service of a step that ends the run on purpose when its
// condition holds (a stop or a drop step): verb names it in errors, past
// is the default reason, end makes the error from the reason.
func newEnd(name, verb, past string, cond component.Cond, reason component.Template, end func(string) error) *endService {
	if reason.IsZero() {
		reason = component.Text(past)
		if !cond.IsZero() {
			reason = component.Text(past + ": " + cond.Source())
		}
	}
	reads := append(cond.Keys(), reason.Keys()...)
	return &endService{name: name, verb: verb, src: cond, cond: cond.Parsed(), reason: reason, end: end,
		contract: flow.Contract{Needs: needsOf(reads)}}
}

// endService ends the run with the error end makes (a Stop, a Drop) when
// its condition holds.
type endService struct {
	name     string
	verb     string // "stop", "drop": in errors
	src      component.Cond
	cond     *branch.Expr // nil: always
	reason   component.Template
	end      func(reason string) error
	contract flow.Contract
}

func (s *endService) Name() string            { return s.name }
func (s *endService) Contract() flow.Contract { return s.contract }

func (s *endService) Call(_ context.Context, c *fc.Context) error {
	if s.cond != nil {
		env := c.View()
		ok, err := s.cond.EvalBool(env)
		if err != nil {
			return s.cond.DataError(s.verb+" condition", env, err)
		}
		if !ok {
			return nil
		}
	}
	reason, err := s.reason.Execute(c.View())
	if err != nil {
		return fmt.Errorf("%s reason: %w", s.verb, err)
	}
	return s.end(reason)
}

// Prepare compiles the condition against the Go types of the keys known
// where the step sits, so a type mistake is a build error.
func (s *endService) Prepare(known map[string]reflect.Type) (flow.Service, error) {
	if s.cond == nil {
		return s, nil
	}
	e, err := s.src.Compile(known)
	if err != nil {
		return nil, fmt.Errorf("%s condition: %w", s.verb, err)
	}
	out := *s
	out.cond = e
	return &out, nil
}

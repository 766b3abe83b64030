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

// DropSpec is the spec of a drop step: the run ends with a Drop error
// (the message is consumed silently: a channel acks it and stores it as
// done with outcome dropped; inside an each: only that element is left
// out) when the condition holds; without one, always.
//
//	drop: {if: "type != 'order'", reason: "not an order"}
//	drop: "not for us"          # the reason alone: always drops
//
// The step needs the keys its condition and reason read.
type DropSpec struct {
	If     component.Cond     `yaml:"if" doc:"the condition (an expression); without it the step always drops"`
	Reason component.Template `yaml:"reason" spec:"scalar" doc:"the reason, a template over the context (default: dropped: CONDITION)"`
}

// StepName is "drop(REASON)" for a reason without placeholders, else
// "drop" (see StopSpec.StepName).
func (s DropSpec) StepName() string {
	if r := s.Reason.Source(); r != "" && s.Reason.Constant() {
		return "drop(" + shortName(r) + ")"
	}
	return "drop"
}

func newDrop(env component.Env, s DropSpec) (flow.Service, error) {
	reason := s.Reason
	if reason.IsZero() {
		reason = component.Text("dropped")
		if !s.If.IsZero() {
			reason = component.Text("dropped: " + s.If.Source())
		}
	}
	reads := append(s.If.Keys(), reason.Keys()...)
	return &dropService{name: env.Name, src: s.If, cond: s.If.Parsed(), reason: reason, contract: flow.Contract{Needs: needsOf(reads)}}, nil
}

// dropService ends the run with a Drop error when its condition holds.
type dropService struct {
	name     string
	src      component.Cond
	cond     *branch.Expr // nil: always
	reason   component.Template
	contract flow.Contract
}

func (s *dropService) Name() string            { return s.name }
func (s *dropService) Contract() flow.Contract { return s.contract }

func (s *dropService) Call(_ context.Context, c *fc.Context) error {
	if s.cond != nil {
		env := c.View()
		ok, err := s.cond.EvalBool(env)
		if err != nil {
			return s.cond.DataError("drop condition", env, err)
		}
		if !ok {
			return nil
		}
	}
	reason, err := s.reason.Execute(c.View())
	if err != nil {
		return fmt.Errorf("drop reason: %w", err)
	}
	return errors.Drop(reason)
}

// Prepare compiles the condition against the Go types of the keys known
// where the step sits, so a type mistake is a build error.
func (s *dropService) Prepare(known map[string]reflect.Type) (flow.Service, error) {
	if s.cond == nil {
		return s, nil
	}
	e, err := s.src.Compile(known)
	if err != nil {
		return nil, fmt.Errorf("drop condition: %w", err)
	}
	out := *s
	out.cond = e
	return &out, nil
}

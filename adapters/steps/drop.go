package steps

import (
	"github.com/svcflow/svcflow/adapters/component"
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
	return newEnd(env.Name, "drop", "dropped", s.If, s.Reason, errors.Drop), nil
}

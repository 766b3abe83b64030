package steps

import (
	"context"
	"fmt"

	"github.com/svcflow/svcflow/adapters/component"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// TemplateSpec is the spec of a template step: text/templates over the
// context rendered into keys, in the order written; each sees the keys
// rendered before it in the step.
//
//	template: {greeting: "Hello {{.name}}", raw: "{{json .name}}"}
//
// The step needs the keys its templates read (but those it rendered
// before), and provides the rendered keys as strings.
type TemplateSpec struct {
	Render component.Pairs[component.Template] `yaml:"render" spec:"inline,required" doc:"key: template, rendered in order"`
}

// StepName is "template(a,b)": the rendered keys.
func (s TemplateSpec) StepName() string { return "template(" + keysName(s.Render.Keys()) + ")" }

func newTemplate(env component.Env, s TemplateSpec) (flow.Service, error) {
	if len(s.Render) == 0 {
		return nil, fmt.Errorf("expected at least one key: template")
	}
	svc := &templateService{name: env.Name}
	for _, p := range s.Render {
		svc.renders = append(svc.renders, render{key: p.Key, t: p.Value})
		svc.contract.Provides = append(svc.contract.Provides, fc.Key[string](p.Key).Info())
	}
	svc.contract.Needs = pairsNeeds(s.Render)
	return svc, nil
}

type render struct {
	key string
	t   component.Template
}

// templateService renders templates into keys.
type templateService struct {
	name     string
	renders  []render
	contract flow.Contract
}

func (s *templateService) Name() string            { return s.name }
func (s *templateService) Contract() flow.Contract { return s.contract }

func (s *templateService) Call(_ context.Context, c *fc.Context) error {
	for _, r := range s.renders {
		out, err := r.t.Execute(c.View())
		if err != nil {
			return fmt.Errorf("template %q: %w", r.key, err)
		}
		c.Set(r.key, out)
	}
	return nil
}

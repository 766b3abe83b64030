package steps

import (
	"context"
	"fmt"
	"maps"
	"reflect"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/branch"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// SetSpec is the spec of a set step: keys assigned from expr-lang
// expressions, in the order written, each seeing the keys assigned before
// it in the step.
//
//	set: {subtotal: "sum(map(items, #.price * #.qty))", status: "'priced'"}
//
// The step needs the keys its expressions read (but those it assigned
// before), and provides the assigned keys, typed by what their
// expressions yield where the step sits.
type SetSpec struct {
	Assign component.Pairs[component.Expr] `yaml:"assign" spec:"inline,required" doc:"key: expression, evaluated in order"`
}

// StepName is "set(a,b)": the assigned keys.
func (s SetSpec) StepName() string { return "set(" + keysName(s.Assign.Keys()) + ")" }

func newSet(env component.Env, s SetSpec) (flow.Service, error) {
	if len(s.Assign) == 0 {
		return nil, fmt.Errorf("expected at least one key: expression")
	}
	svc := &setService{name: env.Name, assigns: make([]assign, 0, len(s.Assign))}
	for _, p := range s.Assign {
		if p.Value.IsZero() {
			return nil, component.FieldErrorf(p.Key, "expected an expression")
		}
		a := assign{key: p.Key, src: p.Value, expr: p.Value.Parsed()}
		a.konst, a.isConst = p.Value.Constant()
		svc.assigns = append(svc.assigns, a)
		svc.contract.Provides = append(svc.contract.Provides, fc.Any(p.Key))
	}
	svc.contract.Needs = pairsNeeds(s.Assign)
	return svc, nil
}

type assign struct {
	key     string
	src     component.Expr
	expr    *branch.Expr
	konst   any
	isConst bool
}

// setService assigns keys from compiled expressions, in order.
type setService struct {
	name     string
	assigns  []assign
	contract flow.Contract
}

func (s *setService) Name() string            { return s.name }
func (s *setService) Contract() flow.Contract { return s.contract }

func (s *setService) Call(_ context.Context, c *fc.Context) error {
	for i := range s.assigns {
		a := &s.assigns[i]
		if a.isConst {
			c.Set(a.key, a.konst)
			continue
		}
		env := c.View()
		v, err := a.expr.Eval(env)
		if err != nil {
			// The data does not fit the expression: a Stop naming the key.
			return a.expr.DataError(fmt.Sprintf("set %q", a.key), env, err)
		}
		c.Set(a.key, v)
	}
	return nil
}

// Prepare compiles the step's expressions against the Go types of the keys
// known where the step sits, so a type mistake is a build error, and gives
// each assigned key the type its expression yields (nil when only known at
// run time). An assignment sees the keys assigned before it in the step.
// Each expression remembers its compilation for the same known types, so
// the instances of a flow compile the step once.
func (s *setService) Prepare(known map[string]reflect.Type) (flow.Service, error) {
	schema := maps.Clone(known)
	if schema == nil {
		schema = map[string]reflect.Type{}
	}
	out := &setService{name: s.name, assigns: make([]assign, len(s.assigns)), contract: flow.Contract{Needs: s.contract.Needs}}
	for i, a := range s.assigns {
		var t reflect.Type
		if a.isConst {
			t = reflect.TypeOf(a.konst)
		} else {
			e, err := a.src.Compile(schema)
			if err != nil {
				return nil, fmt.Errorf("set %q: %w", a.key, err)
			}
			a.expr, t = e, e.Type()
		}
		out.assigns[i] = a
		schema[a.key] = t
		out.contract.Provides = append(out.contract.Provides, fc.KeyInfo{Name: a.key, Type: t})
	}
	return out, nil
}

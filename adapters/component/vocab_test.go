package component_test

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"text/template"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/branch"
	"github.com/svcflow/svcflow/flow"
)

func TestExpr(t *testing.T) {
	e, err := component.ParseExpr("subtotal * (1 - rate) + subtotal")
	require.NoError(t, err)
	assert.Equal(t, "subtotal * (1 - rate) + subtotal", e.Source())
	assert.ElementsMatch(t, []string{"subtotal", "rate"}, e.Keys())
	v, err := e.Parsed().Eval(map[string]any{"subtotal": 10.0, "rate": 0.5})
	require.NoError(t, err)
	assert.Equal(t, 15.0, v)
	_, isConst := e.Constant()
	assert.False(t, isConst)

	k, ok := component.MustParseExpr("'x'").Constant()
	assert.True(t, ok)
	assert.Equal(t, "x", k)

	_, err = component.ParseExpr("len(items")
	var be *branch.Error
	require.ErrorAs(t, err, &be, "a parse error has its position")
	assert.Equal(t, 1, be.Line)

	known := map[string]reflect.Type{"subtotal": reflect.TypeFor[float64](), "rate": reflect.TypeFor[string]()}
	_, err = e.Compile(known)
	assert.Error(t, err, "the types of the keys where the step sits")
	typed, err := e.Compile(map[string]reflect.Type{"subtotal": reflect.TypeFor[float64]()})
	require.NoError(t, err, "a key it reads that known lacks is of any type")
	again, err := e.Compile(map[string]reflect.Type{"subtotal": reflect.TypeFor[float64]()})
	require.NoError(t, err)
	assert.Same(t, typed, again, "the same known types compile once")

	var zero component.Expr
	assert.True(t, zero.IsZero())
	assert.Nil(t, zero.Keys())
	_, err = zero.Compile(nil)
	assert.ErrorIs(t, err, component.ErrInvalid)
}

func TestCond(t *testing.T) {
	_, err := component.ParseCond("1 + 1")
	assert.Error(t, err, "a condition yields a boolean")
	c, err := component.ParseCond("qty + 1")
	require.NoError(t, err, "unknown types: checked where the step sits")
	_, err = c.Compile(map[string]reflect.Type{"qty": reflect.TypeFor[int]()})
	assert.ErrorContains(t, err, "expected bool")
	ok, err := component.MustParseExpr("qty > 1").Parsed().EvalBool(map[string]any{"qty": 2})
	require.NoError(t, err)
	assert.True(t, ok)
}

func TestTemplate(t *testing.T) {
	funcs := template.FuncMap{"var": func(string) string { return "V" }, "upper": strings.ToUpper}
	tp, err := component.ParseTemplate(`{{var "api"}}/{{.id | upper}} {{$.id}} {{index . "note"}}{{range .items}}{{.sku}}{{end}}`, funcs)
	require.NoError(t, err)
	assert.Equal(t, []string{"id", "note", "items"}, tp.Keys(), "the top-level keys, not those under range")
	assert.Equal(t, []string{"api"}, tp.Vars())
	assert.False(t, tp.Constant())
	out, err := tp.Execute(map[string]any{"id": "a", "note": "!", "items": []any{map[string]any{"sku": "s"}}})
	require.NoError(t, err)
	assert.Equal(t, "V/A a !s", out)
	_, err = tp.Execute(map[string]any{})
	assert.Error(t, err, "a missing key is an error")

	txt, err := component.ParseTemplate("plain", nil)
	require.NoError(t, err)
	assert.True(t, txt.Constant())
	out, _ = component.Text("as is {{").Execute(nil)
	assert.Equal(t, "as is {{", out)

	_, err = component.ParseTemplate("order {{.id", nil)
	assert.EqualError(t, err, "bad template: line 1: unclosed action")
	_, err = component.ParseTemplate("{{nope .x}}", nil)
	assert.ErrorContains(t, err, `function "nope" not defined`)
}

func TestPairsAndFieldErrors(t *testing.T) {
	p := component.Pairs[int]{{"a", 1}, {"b", 2}}
	assert.Equal(t, []string{"a", "b"}, p.Keys())
	assert.True(t, component.IsPairs(reflect.TypeFor[component.Pairs[component.Expr]]()))
	assert.False(t, component.IsPairs(reflect.TypeFor[[]string]()))

	err := fmt.Errorf("http: %w", errors.Join(
		component.FieldErrorf("method", "expected GET"),
		errors.Join(errors.New("other"), &component.FieldError{Field: "allow_status.1", Err: errors.New("too big")})))
	fields, others := component.FieldErrors(err)
	require.Len(t, fields, 2)
	assert.Equal(t, "method: expected GET", fields[0].Error())
	assert.Equal(t, "allow_status.1", fields[1].Field)
	assert.Equal(t, []error{errors.New("other")}, others)
}

type namedSpec struct {
	Into string `yaml:"into"`
}

func (s namedSpec) StepName() string { return "named(" + s.Into + ")" }

func TestStepComponents(t *testing.T) {
	var gotClient *http.Client
	c := component.Step("named", "a step", func(env component.Env, s namedSpec) (flow.Service, error) {
		gotClient, _ = component.Value[*http.Client](env)
		return flow.Step(env.Name, nil), nil
	})
	assert.Equal(t, "named(x)", c.StepName(&namedSpec{Into: "x"}))
	assert.Equal(t, "named(x)", c.StepName(namedSpec{Into: "x"}))
	plain := component.Step("plain", "", func(env component.Env, s struct{}) (flow.Service, error) { return flow.Step(env.Name, nil), nil })
	assert.Equal(t, "plain", plain.StepName(&struct{}{}), "no StepName: the component's name")

	client := &http.Client{}
	env := component.Env{Name: "s1"}.WithValue(client)
	_, ok := component.Value[*http.Client](component.Env{})
	assert.False(t, ok)
	svc, err := c.BuildStep(env, &namedSpec{})
	require.NoError(t, err)
	assert.Equal(t, "s1", svc.Name())
	assert.Same(t, client, gotClient, "a value the environment provides, by type")
	_, err = pathSource("p").BuildStep(env, &pathSpec{Path: "x"})
	assert.ErrorIs(t, err, component.ErrInvalid, "not a step")

	assert.Empty(t, c.Restricted)
	r := c.Restrict("running commands")
	assert.Equal(t, "running commands", r.Restricted)
	assert.Empty(t, c.Restricted, "Restrict returns a copy")
}

func TestStepSpecTags(t *testing.T) {
	type inline struct {
		Set component.Pairs[component.Expr] `yaml:"set" spec:"inline,required" doc:"key: expression"`
	}
	type command struct {
		Argv   []component.Template `yaml:"argv" spec:"list"`
		Script component.Template   `yaml:"script" spec:"scalar"`
	}
	type spec struct {
		Level   string         `yaml:"level" enum:"debug,info"`
		Command command        `yaml:"command"`
		If      component.Cond `yaml:"if"`
		Keys    []component.Key
	}
	var reg component.Registry
	for _, c := range []component.Component{
		component.Step("inline", "", func(component.Env, inline) (flow.Service, error) { return nil, nil }),
		component.Step("tags", "", func(component.Env, spec) (flow.Service, error) { return nil, nil }),
	} {
		require.NoError(t, reg.Register(c))
	}
	fs := component.Fields(reflect.TypeFor[spec]())
	assert.Equal(t, []string{"debug", "info"}, fs[0].Enum)
	assert.Equal(t, "condition", component.TypeName(fs[2]))
	assert.Equal(t, "list of key", component.TypeName(fs[3]))
	lf, ok := component.ListField(reflect.TypeFor[command]())
	assert.True(t, ok)
	assert.Equal(t, "argv", lf.Name)
	inl, ok := component.InlineField(reflect.TypeFor[inline]())
	assert.True(t, ok)
	assert.Equal(t, "map of expression (in order)", component.TypeName(inl))

	s := component.Schema(reflect.TypeFor[inline](), &reg)
	assert.Equal(t, float64(1), float64(s["minProperties"].(int)), "an inline required field: at least one entry")
	assert.Equal(t, "object", s["type"])
	s = component.Schema(reflect.TypeFor[spec](), &reg)
	props := s["anyOf"].([]any)[0].(map[string]any)["properties"].(map[string]any)
	assert.Equal(t, []any{"debug", "info"}, props["level"].(map[string]any)["enum"])
	assert.Len(t, props["command"].(map[string]any)["anyOf"], 4, "a mapping, the list, the scalar, or null")

	for name, c := range map[string]component.Component{
		"inline and more": component.Step("x", "", func(component.Env, struct {
			A component.Pairs[string] `spec:"inline"`
			B string
		}) (flow.Service, error) {
			return nil, nil
		}),
		"inline not a map": component.Step("x", "", func(component.Env, struct {
			A []string `spec:"inline"`
		}) (flow.Service, error) {
			return nil, nil
		}),
		"list not a slice": component.Step("x", "", func(component.Env, struct {
			A string `spec:"list"`
		}) (flow.Service, error) {
			return nil, nil
		}),
		"enum on an int": component.Step("x", "", func(component.Env, struct {
			A int `enum:"1,2"`
		}) (flow.Service, error) {
			return nil, nil
		}),
	} {
		assert.ErrorIs(t, reg.Register(c), component.ErrInvalid, name)
	}
}

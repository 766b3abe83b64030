package config_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/steps"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// greetSpec is the spec of a step component these tests add: nothing in
// the module knows it.
type greetSpec struct {
	Who   component.Template `yaml:"who" spec:"required,scalar" doc:"whom to greet, a template"`
	Into  component.Key      `yaml:"into" default:"greeting" doc:"the key the greeting goes into"`
	Punct string             `yaml:"punct" default:"!" doc:"one punctuation mark"`
}

func (s greetSpec) StepName() string { return "greet(" + string(s.Into) + ")" }

var greetClient *http.Client // what the last greet step was built with

var greet = component.Step("greet", "greet someone", func(env component.Env, s greetSpec) (flow.Service, error) {
	if len([]rune(s.Punct)) != 1 {
		return nil, component.FieldErrorf("punct", "expected one character, got %q", s.Punct)
	}
	greetClient, _ = component.Value[*http.Client](env)
	var needs []fc.Info
	for _, k := range s.Who.Keys() {
		needs = append(needs, fc.Any(k))
	}
	return flow.Step(env.Name, func(_ context.Context, c *fc.Context) error {
		who, err := s.Who.Execute(c.View())
		if err != nil {
			return err
		}
		c.Set(string(s.Into), "hello "+who+s.Punct)
		return nil
	}, flow.Needs(needs...), flow.Provides(fc.Key[string](string(s.Into)))), nil
})

// slowSpec has a timeout field: the step's own timeout, which the
// loader applies.
type slowSpec struct {
	Timeout time.Duration `yaml:"timeout" default:"1h" doc:"bound on the wait"`
}

var slow = component.Step("slow", "wait until the step's deadline", func(env component.Env, s slowSpec) (flow.Service, error) {
	return flow.Step(env.Name, func(ctx context.Context, _ *fc.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}), nil
})

func stepComponents(t *testing.T, more ...component.Component) *component.Registry {
	t.Helper()
	reg, err := component.NewRegistry(append(steps.All(), more...)...)
	require.NoError(t, err)
	return reg
}

// TestStepComponentFromATestPackage: a step component registered outside
// the module's packages is a step kind of YAML flows: it loads, checks,
// runs, names its steps, and is in the catalog and the schema.
func TestStepComponentFromATestPackage(t *testing.T) {
	comps := stepComponents(t, greet)
	client := &http.Client{}
	reg := config.NewRegistry(config.WithHTTPClient(client))
	cfg := load(t, `
flows:
  f:
    input: [name]
    steps:
      - greet: "{{.name}}"
      - greet: {who: "{{.greeting}}", into: twice, punct: "?"}
      - set: {n: "len(twice)"}
`, config.WithComponents(comps), config.WithRegistry(reg))
	out, err := run(t, cfg, "f", map[string]any{"name": "ada"})
	require.NoError(t, err)
	assert.Equal(t, "hello ada!", out["greeting"])
	assert.Equal(t, "hello hello ada!?", out["twice"])
	assert.Equal(t, 17, out["n"])
	assert.Same(t, client, greetClient, "the registry's client, through the Env")
	f, _ := cfg.Flow("f")
	var names []string
	for _, n := range f.Graph().Children {
		names = append(names, n.Name)
	}
	assert.Equal(t, []string{"greet(greeting)", "greet(twice)", "set(n)"}, names, "named by the spec")

	msg := loadErr(t, `
flows:
  f:
    input: [name]
    steps:
      - greet: {who: "{{.name}}", punct: "!!"}
      - greet: {who: "{{.name}}", pnuct: "."}
  g:
    input: [name]
    steps:
      - greet: "to {{.nobody}}"
`, config.WithComponents(comps))
	assert.Equal(t, strings.Join([]string{
		`test.yaml:6:42: greet: punct: expected one character, got "!!"`,
		`test.yaml:7:35: greet: unknown key "pnuct": expected one of who, into, punct (did you mean "punct"?)`,
		`test.yaml:11:16: flow "g": step "greet(greeting)": key "nobody": needed but not provided: declare it in the flow's Input or have an earlier step provide it on every path`,
	}, "\n"), msg, "a FieldError at its field; a need at the template reading it")

	var infos []config.ServiceInfo
	for _, si := range config.NewRegistry().ServicesIn(comps) {
		if si.Name == "greet" {
			infos = append(infos, si)
		}
	}
	require.Len(t, infos, 1)
	assert.True(t, infos[0].Builtin)
	assert.Equal(t, "greet someone", infos[0].Doc)
	require.Len(t, infos[0].Fields, 3)
	assert.Equal(t, "punct", infos[0].Fields[2].Name)

	schema := config.Schema(config.SchemaOptions{Components: comps})
	step := schema["$defs"].(map[string]any)["step"].(map[string]any)["anyOf"].([]any)[1].(map[string]any)
	assert.Contains(t, step["properties"], "greet")
}

// TestRestrictedStepComponent: a restricted component is refused unless
// allowed, with how to allow it, at the step's kind.
func TestRestrictedStepComponent(t *testing.T) {
	comps := stepComponents(t, greet.Restrict("greeting people"))
	src := "flows:\n  f:\n    steps:\n      - greet: you\n"
	assert.Equal(t, `test.yaml:4:9: greet: greeting people is disabled: enable it with flowrun --allow-greet (config.Allow("greet") in Go)`,
		loadErr(t, src, config.WithComponents(comps)))
	cfg := load(t, src, config.WithComponents(comps), config.WithRegistry(config.NewRegistry(config.Allow("greet"))))
	out, err := run(t, cfg, "f", nil)
	require.NoError(t, err)
	assert.Equal(t, "hello you!", out["greeting"])
	for _, si := range config.NewRegistry().ServicesIn(comps) {
		if si.Name == "greet" {
			assert.Equal(t, "off unless enabled (flowrun --allow-greet)", si.Disabled)
		}
	}
}

// TestSpecModifiers: a spec's timeout and retry are the step's own,
// applied by the loader, default included; the step's keys conflict
// with them.
func TestSpecModifiers(t *testing.T) {
	comps := stepComponents(t, slow)
	cfg := load(t, "flows:\n  f:\n    steps:\n      - slow: {timeout: 5ms}\n", config.WithComponents(comps))
	_, err := run(t, cfg, "f", nil)
	assert.ErrorIs(t, err, flow.ErrTimeout, "the spec's timeout")

	cfg = load(t, "flows:\n  f:\n    steps:\n      - slow:\n        timeout: 5ms\n", config.WithComponents(comps))
	_, err = run(t, cfg, "f", nil)
	assert.ErrorIs(t, err, flow.ErrTimeout, "the step's timeout, in place of the spec's default")

	msg := loadErr(t, "flows:\n  f:\n    steps:\n      - slow: {timeout: 5ms}\n        timeout: 1s\n", config.WithComponents(comps))
	assert.Equal(t, "test.yaml:5:9: step: timeout: set in slow already (line 4); keep one", msg)
	msg = loadErr(t, `
flows:
  f:
    steps:
      - http:
          url: http://localhost/x
          retry:
            max_attempts: 2
        retry: {max_attempts: 3}
`)
	assert.Equal(t, "test.yaml:9:9: step: retry: set in http already (line 7); keep one", msg)
}

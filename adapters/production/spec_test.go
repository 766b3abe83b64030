package production_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/logging"
	"github.com/svcflow/svcflow/adapters/production"
	_ "github.com/svcflow/svcflow/adapters/steps" // set, stop
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// GreeterSettings are the typed settings of the greeter step component.
type GreeterSettings struct {
	Greeting string `yaml:"greeting" spec:"required" doc:"what to say"`
	Times    int    `yaml:"times" default:"1" doc:"how many times"`
}

var greeterInits, greeterCloses atomic.Int64

// greeter is a Go operation with a lifecycle.
type greeter struct{ s GreeterSettings }

func (g *greeter) Name() string { return "greeter" }
func (g *greeter) Init(context.Context) error {
	greeterInits.Add(1)
	return nil
}
func (g *greeter) Close(context.Context) error {
	greeterCloses.Add(1)
	return nil
}
func (g *greeter) Call(ctx context.Context, c *fc.Context) error {
	s, err := production.SettingsOf[GreeterSettings](ctx)
	if err != nil {
		return err
	}
	c.Set("said", strings.Repeat(s.Greeting+" ", s.Times))
	return nil
}

func init() {
	component.Register(component.Step("test_greeter", "a Go operation with typed settings (tests)",
		func(env component.Env, s GreeterSettings) (flow.Service, error) {
			if s.Times > 3 {
				return nil, component.FieldErrorf("times", "at most 3, got %d", s.Times)
			}
			return &greeter{s: s}, nil
		}))
}

func load(t *testing.T, src string, reg *config.Registry) *config.Config {
	t.Helper()
	if reg == nil {
		reg = config.NewRegistry()
	}
	cfg, err := config.LoadSources([]config.Source{{Name: "prod.yaml", Data: []byte(src)}}, config.WithRegistry(reg))
	require.NoError(t, err)
	return cfg
}

const prodYAML = `version: 1
flows:
  process:
    input: [who]
    steps:
      - send: {target: Greeter, body: who, into: greeted}
      - send: {target: Greeter, body: who, async: again}
      - send: {target: Factory, async: made}
      - complete: responses
      - send_multi: [{target: Greeter, body: who}, {target: Python.Refuse}, Factory]
  refuse:
    steps: [{stop: {if: "true", reason: "refused"}}]
  intake:
    input: [name]
    steps:
      - set: {who: "{name: name}"}
      - send: {target: Python.Process, into: answer}
production:
  Python.Greeter:
    kind: operation
    use: test_greeter
    settings: {greeting: hello, times: 2}
  Python.Factory:
    kind: operation
    use: made
    settings: {suffix: "!"}
  Python.Refuse: {kind: operation, flow: refuse}
  Python.Process:
    kind: process
    flow: process
    targets: {Greeter: Python.Greeter, Factory: Python.Factory}
  Python.Intake:
    kind: service
    flow: intake
`

func TestFromConfig(t *testing.T) {
	ctx := context.Background()
	reg := config.NewRegistry()
	require.NoError(t, reg.RegisterFactory("made", "a factory operation", func(name string, args config.Args) (flow.Service, error) {
		var a struct {
			Suffix string `json:"suffix"`
		}
		if err := args.Decode(&a); err != nil {
			return nil, err
		}
		return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
			c.Set("made", "made"+a.Suffix)
			return nil
		}), nil
	}))
	cfg := load(t, prodYAML, reg)
	_, err := production.FromConfig(cfg, production.ConfigOptions{})
	require.NoError(t, err, "checks")
	built, err := production.FromConfig(cfg, production.ConfigOptions{Name: "Demo", Open: true, Options: production.Options{Logger: quiet}})
	require.NoError(t, err)
	defer built.Close()
	p := built.Production
	assert.Equal(t, "Demo", p.Name())
	assert.Equal(t, []string{"Python.Greeter", "Python.Factory", "Python.Refuse", "Python.Process", "Python.Intake"}, p.Components())
	c, ok := p.Component("Python.Greeter")
	require.True(t, ok)
	assert.Equal(t, GreeterSettings{Greeting: "hello", Times: 2}, c.Settings, "typed settings, decoded with the spec decoder")

	inits := greeterInits.Load()
	require.NoError(t, p.Start(ctx))
	bs, err := p.Director().Service("Python.Intake")
	require.NoError(t, err)
	for range 3 {
		out, err := bs.ProcessInput(ctx, map[string]any{"name": "ada"})
		require.NoError(t, err)
		answer := out["answer"].(map[string]any)
		assert.Equal(t, "hello hello ", answer["greeted"].(map[string]any)["said"])
		responses := answer["responses"].(map[string]any)
		assert.Equal(t, "ok", responses["again"].(map[string]any)["status"])
		assert.Equal(t, "made!", responses["made"].(map[string]any)["response"].(map[string]any)["made"])
		results := answer["results"].([]any)
		require.Len(t, results, 3)
		assert.Equal(t, []any{"ok", "stop", "ok"}, []any{results[0].(map[string]any)["status"], results[1].(map[string]any)["status"], results[2].(map[string]any)["status"]})
		assert.Equal(t, "Python.Factory", results[2].(map[string]any)["component"])
		assert.Equal(t, "refused", results[1].(map[string]any)["reason"])
		assert.NotContains(t, answer, production.AsyncKey, "complete deletes the record of async calls")
	}
	require.NoError(t, p.Stop(ctx))
	assert.Equal(t, inits+1, greeterInits.Load(), "Init once")
	assert.Equal(t, inits+1, greeterCloses.Load(), "Close once")
}

func TestFromConfigErrors(t *testing.T) {
	cfg := load(t, `version: 1
flows:
  f:
    steps: [{set: {x: "1"}}]
production:
  A:
    kind: operation
    use: test_greeter
    settings: {greting: hi}
  B:
    kind: gadget
    flow: f
  C:
    kind: process
    flow: nope
    targets: {Out: Z, In: D}
  D:
    kind: service
    flow: f
    pool: -1
  E:
    kind: operation
    flow: f
    use: test_greeter
    from: {cron: "@every 1s"}
  F:
    kind: operation
  G:
    kind: operation
    use: test_greeter
    settings: {greeting: hi, times: 9}
  H:
    kind: process
    flow: f
    targets: {Out: Z, In: D}
`, nil)
	_, err := production.FromConfig(cfg, production.ConfigOptions{})
	var errs config.Errors
	require.True(t, errors.As(err, &errs), "%v", err)
	text := err.Error()
	for _, want := range []string{
		`prod.yaml:9:16: component "A": settings: unknown key "greting": expected greeting or times (did you mean "greeting"?)`,
		`prod.yaml:11:11: component "B": kind: expected service, process or operation, got "gadget"`,
		`prod.yaml:15:11: component "C": unknown flow "nope": expected f`,
		`prod.yaml:20:11: component "D": pool: expected an integer from 0`,
		`prod.yaml:24:10: component "E": flow: and use: both given: a component has one implementation`,
		`prod.yaml:25:11: component "E": from: only a business service (kind: service) has one`,
		`prod.yaml:27:5: component "F": expected flow: (a flow of the configuration) or use: (a registered Go service)`,
		`prod.yaml:31:37: component "G": use: test_greeter: settings: times: at most 3, got 9`,
		`prod.yaml:35:20: component "H": target Out: unknown component "Z": expected one of`,
		`prod.yaml:35:27: component "H": target In: "D" is a business service: a business service is not a target (reach it with the Director)`,
	} {
		assert.Contains(t, text, want)
	}
}

// A send step outside a production component fails with a clear error.
func TestStepsOutsideProduction(t *testing.T) {
	cfg := load(t, `version: 1
flows:
  f:
    steps: [{send: somewhere}]
`, nil)
	f, ok := cfg.Flow("f")
	require.True(t, ok)
	_, err := f.Run(context.Background(), map[string]any{})
	assert.ErrorIs(t, err, production.ErrNotInProduction)
}

// A YAML log step in a component's flow logs with the component's
// attributes under logging.Handler (as flowrun logs).
func TestYAMLLogStepTaggedWithComponent(t *testing.T) {
	var logged sync.Map
	logger := slog.New(logging.Handler(&captureHandler{seen: &logged}))
	cfg := load(t, `version: 1
flows:
  op:
    steps: [{log: {message: on_message}}]
production:
  Python.Op: {kind: operation, flow: op}
`, config.NewRegistry(config.WithLogger(logger)))
	h, err := production.FromConfig(cfg, production.ConfigOptions{Open: true, Options: production.Options{Logger: quiet}})
	require.NoError(t, err)
	defer h.Close()
	ctx := context.Background()
	require.NoError(t, h.Production.Start(ctx))
	defer h.Production.Stop(ctx)
	_, err = h.Production.SendSync(ctx, "Python.Op", map[string]any{"n": 1})
	require.NoError(t, err)
	v, ok := logged.Load("on_message")
	require.True(t, ok)
	assert.Contains(t, v, "component=Python.Op kind=operation")
}

// A send to a target the production does not have is refused when the
// production starts, naming the component and the step.
func TestUnknownSendTargetRefusedAtStart(t *testing.T) {
	const src = `version: 1
flows:
  op:
    steps: [{set: {x: "1"}}]
  bp:
    steps: [{send: Operaton}]
  bs:
    steps: [{send_multi: [Python.Op, Python.In]}]
production:
  Python.Op: {kind: operation, flow: op}
  Python.BP: {kind: process, flow: bp, targets: {Operation: Python.Op}}
  Python.In: {kind: service, flow: bs}
`
	cfg := load(t, src, nil)
	built, err := production.FromConfig(cfg, production.ConfigOptions{Open: true, Options: production.Options{Logger: quiet}})
	require.NoError(t, err)
	defer built.Close()
	err = built.Production.Start(context.Background())
	require.ErrorIs(t, err, production.ErrUnknownTarget)
	assert.Contains(t, err.Error(), `process "Python.BP": init: flow "bp": step "send(Operaton)"`)
	assert.Contains(t, err.Error(), `expected one of Python.Op, Python.BP`)
	assert.False(t, built.Production.Running())

	cfg = load(t, strings.Replace(src, "send: Operaton", "send: Operation", 1), nil)
	built2, err := production.FromConfig(cfg, production.ConfigOptions{Open: true, Options: production.Options{Logger: quiet}})
	require.NoError(t, err)
	defer built2.Close()
	err = built2.Production.Start(context.Background())
	require.ErrorIs(t, err, production.ErrNotTarget, "the service sends to a business service")
	assert.Contains(t, err.Error(), `service "Python.In"`)
}

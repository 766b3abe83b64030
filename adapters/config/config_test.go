package config_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/config"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// load loads one YAML source named test.yaml.
func load(t *testing.T, src string, opts ...config.Option) *config.Config {
	t.Helper()
	cfg, err := config.LoadSources([]config.Source{{Name: "test.yaml", Data: []byte(src)}}, opts...)
	require.NoError(t, err)
	return cfg
}

// loadErr loads a source that must fail and returns its error text.
func loadErr(t *testing.T, src string, opts ...config.Option) string {
	t.Helper()
	_, err := config.LoadSources([]config.Source{{Name: "test.yaml", Data: []byte(src)}}, opts...)
	require.Error(t, err)
	return err.Error()
}

// run runs the named flow and returns its output as a map.
func run(t *testing.T, cfg *config.Config, name string, in map[string]any) (map[string]any, error) {
	t.Helper()
	f, ok := cfg.Flow(name)
	require.True(t, ok, "flow %q", name)
	out, err := f.Run(context.Background(), in)
	require.NoError(t, f.Close(context.Background()))
	return out.Map(), err
}

func TestSetAndCombinators(t *testing.T) {
	cfg := load(t, `
version: 1
flows:
  f:
    input: [items, tier, n]
    steps:
      - set: {count: "len(items)", double: "count * 2", konst: 7, label: "'x'"}
      - fork:
          on: tier
          cases:
            gold: [{set: {rate: 0.2}}]
            "3": [{set: {rate: 0.3}}]
          default: [{set: {rate: 0}}]
      - when: {if: "count > 1", steps: [{set: {many: "true"}}]}
      - unless: {if: "count > 1", steps: [{set: {few: "true"}}]}
      - all:
          steps: [{set: {a: "1"}}, {set: {b: "2"}}]
          limit: 1
      - then: [{set: {c: "a + b"}}]
      - each:
          over: items
          as: it
          index: i
          concurrency: 2
          collect: {from: sq, into: squares}
          steps: [{set: {sq: "it * it + i * 0"}}]
      - until: {if: "n >= 3", max_loops: 10, steps: [{set: {n: "n + 1"}}]}
      - first:
          - {if: "count > 10", steps: [{set: {size: "'big'"}}]}
          - {if: "true", steps: [{set: {size: "'small'"}}]}
      - tap: {log: {message: "tapped {{.count}}", level: debug}}
`)
	out, err := run(t, cfg, "f", map[string]any{"items": []any{1.0, 2.0, 3.0}, "tier": "gold", "n": 0})
	require.NoError(t, err)
	assert.Equal(t, 3, out["count"])
	assert.Equal(t, 6, out["double"], "later assignments see earlier ones")
	assert.Equal(t, 7, out["konst"])
	assert.Equal(t, "x", out["label"])
	assert.Equal(t, 0.2, out["rate"])
	assert.Equal(t, true, out["many"])
	assert.NotContains(t, out, "few")
	assert.Equal(t, 3, out["c"])
	assert.Equal(t, []any{1.0, 4.0, 9.0}, out["squares"])
	assert.NotContains(t, out, "it", "iteration keys stay in the iteration")
	assert.Equal(t, 3, out["n"])
	assert.Equal(t, "small", out["size"])

	out, err = run(t, cfg, "f", map[string]any{"items": []any{}, "tier": 3, "n": 5})
	require.NoError(t, err)
	assert.Equal(t, 0.3, out["rate"], "case values match the string form of the key")
	assert.Equal(t, true, out["few"])
	assert.Equal(t, 6, out["n"], "until runs its steps at least once")
}

func TestSagaCompensatesInReverse(t *testing.T) {
	reg := config.NewRegistry()
	reg.MustRegister(flow.Step("charge", func(context.Context, *fc.Context) error {
		return errors.Stop("card declined")
	}), "always declines")
	cfg := load(t, `
version: 1
flows:
  f:
    input: [id]
    steps:
      - saga:
          steps:
            - name: reserve
              set: {reserved: "true"}
              compensate:
                - set: {undo: "'reserve'", reserved: "false"}
            - name: hold
              set: {held: "true"}
              compensate: {set: {undo2: "'hold ' + id"}}
            - charge
          compensation_timeout: 5s
`, config.WithRegistry(reg))
	out, err := run(t, cfg, "f", map[string]any{"id": "A"})
	require.Error(t, err)
	assert.True(t, errors.IsStop(err))
	assert.Equal(t, "reserve", out["undo"])
	assert.Equal(t, false, out["reserved"])
	assert.Equal(t, "hold A", out["undo2"])
}

func TestRetryAndTimeout(t *testing.T) {
	var calls atomic.Int32
	reg := config.NewRegistry()
	reg.MustRegister(flow.Step("flaky", func(context.Context, *fc.Context) error {
		if calls.Add(1) < 3 {
			return errors.Retry(fmt.Errorf("busy"))
		}
		return nil
	}), "fails twice")
	reg.MustRegister(flow.Step("slow", func(ctx context.Context, _ *fc.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}), "waits for its deadline")
	cfg := load(t, `
version: 1
flows:
  flaky:
    retry: {max_attempts: 1}
    steps:
      - use: flaky
        retry: {max_attempts: 5, initial: 1ms, max: 2ms, multiplier: 1.5}
  slow:
    steps:
      - use: slow
        timeout: 5ms
        retry: {max_attempts: 2, initial: 1ms}
`, config.WithRegistry(reg))
	_, err := run(t, cfg, "flaky", nil)
	require.NoError(t, err)
	assert.Equal(t, int32(3), calls.Load())

	_, err = run(t, cfg, "slow", nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, flow.ErrTimeout)
	assert.ErrorIs(t, err, errors.ErrExhausted)
}

func TestStopTemplateSleepCall(t *testing.T) {
	cfg := load(t, `
version: 1
vars: {greeting: Hello}
flows:
  main:
    input: [name, {name: qty, type: int, default: 1}]
    steps:
      - stop: {if: "name == ''", reason: "no name for order {{.qty}}"}
      - template: {msg: '{{var "greeting"}}, {{.name | upper}} x{{.qty}}', raw: "{{json .name}}"}
      - sleep: 1ms
      - call: tail
  tail:
    input: [msg]
    steps:
      - set: {len: "len(msg)"}
      - stop: "always"
`)
	f, _ := cfg.Flow("main")
	assert.Equal(t, []fc.KeyInfo{fc.Any("name"), {Name: "qty", Type: reflect.TypeFor[int](), Optional: true}}, cfg.Input("main"))
	out, err := f.Run(context.Background(), map[string]any{"name": "ada"})
	require.Error(t, err)
	assert.True(t, errors.IsStop(err))
	assert.Contains(t, err.Error(), `step "call(tail)"`)
	assert.Equal(t, "Hello, ADA x1", out.Map()["msg"])
	assert.Equal(t, `"ada"`, out.Map()["raw"])
	assert.Equal(t, 13, out.Map()["len"])

	_, err = f.Run(context.Background(), map[string]any{"name": "", "qty": 4.0})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "stop: no name for order 4", "JSON numbers convert to the typed input")
}

func TestHTTP(t *testing.T) {
	var flaky atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/customers/c1":
			assert.Equal(t, "Bearer tok", r.Header.Get("Authorization"))
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"tier": "gold"}`)
		case "/customers/missing":
			http.Error(w, "no such customer", http.StatusNotFound)
		case "/customers/bad":
			http.Error(w, "bad id", http.StatusBadRequest)
		case "/customers/flaky":
			if flaky.Add(1) == 1 {
				w.Header().Set("Retry-After", "0")
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, `{"tier": "silver"}`)
		case "/orders":
			assert.Equal(t, http.MethodPost, r.Method)
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
			var b strings.Builder
			_, _ = fmt.Fprint(&b, r.ContentLength)
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, "created")
		case "/down":
			http.Error(w, "down", http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	cfg := load(t, `
version: 1
vars: {api: http://placeholder}
flows:
  get:
    input: [id]
    steps:
      - name: fetch
        http:
          url: '{{var "api"}}/customers/{{pathescape .id}}'
          headers: {Authorization: "Bearer tok"}
          into: customer
          status_into: status
          allow_status: [404]
          retry: {max_attempts: 3, initial: 1ms}
  post:
    input: [order]
    steps:
      - http: {method: post, url: '{{var "api"}}/orders', body: order, into: answer}
  down:
    steps:
      - http: {url: '{{var "api"}}/down', retry: {max_attempts: 2, initial: 1ms}}
`, config.WithSet("vars.api="+srv.URL))
	out, err := run(t, cfg, "get", map[string]any{"id": "c1"})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"tier": "gold"}, out["customer"])
	assert.Equal(t, 200, out["status"])

	out, err = run(t, cfg, "get", map[string]any{"id": "missing"})
	require.NoError(t, err, "an allowed status is not an error")
	assert.Equal(t, "no such customer\n", out["customer"])
	assert.Equal(t, 404, out["status"])

	_, err = run(t, cfg, "get", map[string]any{"id": "bad"})
	assert.True(t, errors.IsStop(err), "4xx stops: %v", err)
	assert.Contains(t, err.Error(), "400 Bad Request")

	out, err = run(t, cfg, "get", map[string]any{"id": "flaky"})
	require.NoError(t, err, "a 503 is retried")
	assert.Equal(t, map[string]any{"tier": "silver"}, out["customer"])

	out, err = run(t, cfg, "post", map[string]any{"order": map[string]any{"id": 1}})
	require.NoError(t, err)
	assert.Equal(t, "created", out["answer"])

	_, err = run(t, cfg, "down", nil)
	assert.True(t, errors.IsRetry(err), "5xx until exhausted is a retry error: %v", err)
	assert.ErrorIs(t, err, errors.ErrExhausted)
}

func TestHTTPTimeoutIsRetried(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	cfg := load(t, `
version: 1
vars: {api: x}
flows:
  f:
    steps:
      - http: {url: '{{var "api"}}/slow', timeout: 10ms, retry: {max_attempts: 2, initial: 1ms}}
`, config.WithSet("vars.api="+srv.URL))
	_, err := run(t, cfg, "f", nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, flow.ErrTimeout)
	assert.True(t, errors.IsRetry(err))
}

func TestShell(t *testing.T) {
	src := `
version: 1
flows:
  f:
    input: [text]
    steps:
      - shell: {command: [cat], stdin: text, into: echoed}
      - shell: {command: 'printf "{\"n\": %s}" {{.text}}', into: parsed, json: true}
`
	assert.Contains(t, loadErr(t, src), "test.yaml:7:9: shell: running commands is disabled: enable it with flowrun --allow-shell")
	cfg := load(t, src, config.WithRegistry(config.NewRegistry(config.AllowShell())))
	out, err := run(t, cfg, "f", map[string]any{"text": "42"})
	require.NoError(t, err)
	assert.Equal(t, "42", out["echoed"])
	assert.Equal(t, map[string]any{"n": 42.0}, out["parsed"])
}

type geoArgs struct {
	Precision int `json:"precision"`
}

func TestRegistry(t *testing.T) {
	reg := testRegistry()
	assert.ErrorContains(t, reg.Register(flow.Step("subtotal", nil), ""), "already registered")
	assert.ErrorContains(t, reg.Register(flow.Step("set", nil), ""), "built-in")
	require.NoError(t, reg.RegisterType("items", reflect.TypeFor[[]Item]()))
	require.NoError(t, reg.RegisterFactory("round", "round total", func(name string, args config.Args) (flow.Service, error) {
		var a geoArgs
		if err := args.Decode(&a); err != nil {
			return nil, err
		}
		return flow.Step(name, func(_ context.Context, c *fc.Context) error {
			c.Set("rounded", a.Precision)
			return nil
		}, flow.Provides(fc.Key[int]("rounded"))), nil
	}))
	cfg := load(t, `
version: 1
flows:
  f:
    input: [{name: items, type: items}]
    steps:
      - subtotal
      - {use: round, with: {precision: 2}}
      - {use: round, name: again, with: {precision: 3}}
`, config.WithRegistry(reg))
	out, err := run(t, cfg, "f", map[string]any{"items": []any{map[string]any{"price": 2.0, "qty": 3.0}}})
	require.NoError(t, err)
	assert.Equal(t, 6.0, out["subtotal"])
	assert.Equal(t, 3, out["rounded"])

	msg := loadErr(t, `
version: 1
flows:
  f:
    steps:
      - {use: round, with: {precison: 2}}
`, config.WithRegistry(reg))
	assert.Contains(t, msg, `test.yaml:6:28: use round: arguments: json: unknown field "precison"`)

	var names []string
	for _, s := range reg.Services() {
		names = append(names, s.Name)
		if s.Name == "subtotal" {
			assert.Equal(t, "items", s.Needs[0].Name)
			assert.Equal(t, reflect.TypeFor[[]Item](), s.Needs[0].Type)
			assert.Equal(t, "subtotal", s.Provides[0].Name)
		}
		if s.Name == "shell" {
			assert.NotEmpty(t, s.Disabled)
		}
	}
	assert.Equal(t, []string{"call", "chunk", "defaults", "drop", "filter", "flatten", "group_by", "http", "key_by", "log", "map", "merge", "omit", "pick", "reject", "rename", "set", "shell", "sleep", "sort_by", "stop", "sum_by", "template", "uniq_by", "wait", "round", "subtotal"}, names)
}

func TestGeneratedNamesAndGraph(t *testing.T) {
	cfg := load(t, `
version: 1
flows:
  f:
    input: [x]
    steps:
      - set: {y: "x"}
      - set: {y: "x + 1"}
      - name: set(y)#2
        log: taken explicitly
      - stop: {if: "y > 100"}
      - stop: {if: "y < 0", reason: "y < 0: negative"}
      - stop: {if: "y == 7", reason: "y is {{.y}}"}
`)
	f, _ := cfg.Flow("f")
	var names []string
	for _, n := range f.Graph().Children {
		names = append(names, n.Name)
	}
	// A stop step is named by a constant reason, never by its condition's
	// source (the name labels its metrics).
	assert.Equal(t, []string{"set(y)", "set(y)#3", "set(y)#2", "stop", "stop(y < 0: negative)", "stop#2"}, names)
	assert.Contains(t, f.Graph().DOT(), "stop(y &lt; 0: negative)")
}

func TestSetOverridesAndVars(t *testing.T) {
	src := `
version: 1
vars: {unit: EUR}
flows:
  f:
    input: [x]
    retry: {max_attempts: 2}
    steps:
      - template: {label: '{{.x}} {{var "unit"}}'}
`
	cfg := load(t, src, config.WithSet("vars.unit=USD", "flows.f.retry.max_attempts=4", "vars.extra={a: 1}"))
	out, err := run(t, cfg, "f", map[string]any{"x": 3})
	require.NoError(t, err)
	assert.Equal(t, "3 USD", out["label"])
	assert.Equal(t, map[string]any{"unit": "USD", "extra": map[string]any{"a": 1.0}}, cfg.Vars())

	assert.Contains(t, loadErr(t, src, config.WithSet("nope.x=1")), `--set nope.x=1: top level: unknown key "nope"`, "a created path is still checked, and reported at the flag")
	assert.Contains(t, loadErr(t, src, config.WithSet("novalue")), `--set: expected path=value`)

	noVars := strings.Replace(src, "vars: {unit: EUR}\n", "", 1)
	cfg = load(t, noVars, config.WithSet("vars.unit=GBP"))
	out, err = run(t, cfg, "f", map[string]any{"x": 1})
	require.NoError(t, err)
	assert.Equal(t, "1 GBP", out["label"], "--set creates a missing section")
	got := loadErr(t, src, config.WithSet("vars.unit=USD", "flows.f.retry.max_attempts=lots"))
	assert.Equal(t, `--set flows.f.retry.max_attempts=lots: flow "f": retry: max_attempts: expected an integer, got "lots"`, got,
		"a problem in an override names the flag, not a position in the file")
	got = loadErr(t, src, config.WithSet("flows.f.retry={max_attempts: 2, bogus: 1}"))
	assert.Equal(t, `--set flows.f.retry={max_attempts: 2, bogus: 1}: flow "f": retry: unknown key "bogus": expected one of initial, multiplier, max, max_interval, max_attempts, max_elapsed, jitter, retry_all`, got)
}

func TestSeveralFilesAndChannels(t *testing.T) {
	cfg, err := config.LoadSources([]config.Source{
		{Name: "a.yaml", Data: []byte("version: 1\nflows:\n  a:\n    input: [x]\n    steps: [{call: b}]\nchannels:\n  a_http:\n    from: {http: {path: /a}}\n    flow: a\n")},
		{Name: "b.yaml", Data: []byte("flows:\n  b:\n    input: [x]\n    sample: {x: 1}\n    steps: [{set: {y: \"x * 2\"}}]\n")},
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, cfg.Flows())
	assert.Equal(t, []string{"a.yaml", "b.yaml"}, cfg.Files())
	sample, ok := cfg.Sample("b")
	assert.True(t, ok)
	out, err := run(t, cfg, "a", sample)
	require.NoError(t, err)
	assert.Equal(t, 2.0, out["y"])

	chs := cfg.Channels()
	require.Len(t, chs, 1)
	assert.Equal(t, "a_http", chs[0].Name)
	assert.Equal(t, "a.yaml:7:3: channel a_http: no such source", chs[0].Error("channel %s: no such source", chs[0].Name).Error())

	_, err = config.LoadSources([]config.Source{
		{Name: "a.yaml", Data: []byte("flows:\n  a:\n    steps: [{sleep: 1s}]\n")},
		{Name: "b.yaml", Data: []byte("flows:\n  a:\n    steps: [{sleep: 1s}]\n")},
	})
	require.Error(t, err)
	assert.Equal(t, `b.yaml:2:3: flow "a" is declared twice (first at a.yaml:2)`, err.Error())
}

func TestCases(t *testing.T) {
	cfg := load(t, `
version: 1
flows:
  f:
    input: [x]
    steps:
      - stop: {if: "x < 0", reason: negative}
      - name: double
        set: {y: "x * 2", nested: "{'a': x, 'b': [x]}"}
      - name: label
        template: {label: "got {{.y}}"}
tests:
  - flow: f
    stubs: {label: {output: {label: stubbed}}}
    cases:
      - {name: ok, input: {x: 2}, want: {y: 4, label: stubbed, nested: {a: 2}}}
      - {name: wrong value, input: {x: 2}, want: {y: 5, nested: {b: [3]}, absent: 1}}
      - {name: stop, input: {x: -1}, error: stop, error_contains: negative}
      - {name: want stop, input: {x: 1}, error: stop}
      - {name: wrong kind, input: {x: -1}, error: retry}
      - {name: unexpected, input: {x: -1}}
      - {name: through, input: {x: 1}, through: double, want: {y: 2}}
      - name: stubbed error
        input: {x: 1}
        stubs: {double: {error: fatal, message: db gone}}
        error: fatal
        error_contains: db gone
      - name: stubbed step
        input: {x: 1}
        stubs: {double: {set: {y: "100"}}}
        want: {y: 100}
`)
	suites := cfg.Tests()
	require.Len(t, suites, 1)
	got := map[string][]string{}
	for _, tc := range suites[0].Cases {
		got[tc.Name] = tc.Run(context.Background()).Failures
	}
	assert.Empty(t, got["ok"])
	assert.Equal(t, []string{
		`test.yaml:17:75: key "absent": want 1, but the output has no such key`,
		`test.yaml:17:57: key "nested": want {"b":[3]}, got {"a":2,"b":[2]}`,
		`test.yaml:17:51: key "y": want 5, got 4`,
	}, got["wrong value"])
	assert.Empty(t, got["stop"])
	assert.Equal(t, []string{`test.yaml:19:49: want error stop, got none`}, got["want stop"])
	require.Len(t, got["wrong kind"], 1)
	assert.Contains(t, got["wrong kind"][0], `test.yaml:20:51: want error retry, got stop:`)
	require.Len(t, got["unexpected"], 1)
	assert.Contains(t, got["unexpected"][0], `test.yaml:21:9: unexpected error (stop):`)
	assert.Empty(t, got["through"])
	assert.Empty(t, got["stubbed error"])
	assert.Empty(t, got["stubbed step"])
}

func TestErrorsCollectAcrossFlows(t *testing.T) {
	msg := loadErr(t, `
version: 1
flows:
  a:
    input: [x]
    steps:
      - set: {y: "z"}
  b:
    input: [x]
    steps:
      - sleep: 1
      - call: a
`)
	assert.Equal(t, `test.yaml:7:19: flow "a": step "set(y)": key "z": needed but not provided: declare it in the flow's Input or have an earlier step provide it on every path
test.yaml:11:16: sleep: expected a duration such as 250ms or 2s, got "1" (a number needs a unit: ms, s, m, h)`, msg)
}

func TestAliasesAreBounded(t *testing.T) {
	// A recursive alias must not hang or blow the stack.
	msg := loadErr(t, `
version: 1
flows:
  f:
    steps: &s
      - then: *s
`)
	assert.Contains(t, msg, "nested too deeply")
	// A billion-laughs style expansion is cut by the step budget.
	src := "version: 1\nflows:\n  f:\n    steps:\n      - &a {set: {x: \"1\"}}\n"
	prev := "a"
	for i := range 12 {
		name := fmt.Sprintf("l%d", i)
		src += fmt.Sprintf("      - &%s {then: [*%s, *%s, *%s, *%s]}\n", name, prev, prev, prev, prev)
		prev = name
	}
	_, err := config.LoadSources([]config.Source{{Name: "t.yaml", Data: []byte(src)}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "too many steps")
}

// set and stop compile their expressions against the types of the keys
// known where they sit: type mistakes and disagreements with Go services
// are load errors, not run-time surprises.
func TestExpressionTypesAreCheckedAtLoad(t *testing.T) {
	half := flow.Func("half", func(ctx context.Context, in struct{ Total float64 }) (struct{ Half float64 }, error) {
		return struct{ Half float64 }{in.Total / 2}, nil
	})
	reg := config.NewRegistry()
	require.NoError(t, reg.Register(half, "halves total"))

	msg := loadErr(t, `
version: 1
flows:
  f:
    input: [{name: qty, type: int}]
    steps:
      - set: {total: "'free'"}
      - use: half
`, config.WithRegistry(reg))
	assert.Contains(t, msg, `key "total": needed as float64, but step "set(total)" provides string`)

	msg = loadErr(t, `
version: 1
flows:
  f:
    input: [{name: qty, type: int}]
    steps:
      - set: {label: "'n=' + string(qty)"}
      - stop: {if: "label > 3", reason: "never"}
`)
	assert.Contains(t, msg, `stop condition`)

	// An int is read as a float: assigned counts feed float inputs.
	cfg := load(t, `
version: 1
flows:
  f:
    input: [{name: qty, type: int}]
    steps:
      - set: {total: "qty * 3"}
      - use: half
`, config.WithRegistry(reg))
	out, err := run(t, cfg, "f", map[string]any{"qty": 3})
	require.NoError(t, err)
	assert.Equal(t, 4.5, out["half"])
}

// A step written with only a modifier (compensate:, retry:, ...) is told
// that the modifier goes beside a step's kind.
func TestModifierWithoutAStepKind(t *testing.T) {
	msg := loadErr(t, `version: 1
flows:
  f:
    steps:
      - saga:
          - set: {a: "1"}
      - compensate: {set: {b: "2"}}
`)
	assert.Contains(t, msg, "test.yaml:7:9: step: expected a step kind")
	assert.Contains(t, msg, "(compensate: belongs to a step: write it beside the step's kind, as in {use: charge, compensate: ...})")
}

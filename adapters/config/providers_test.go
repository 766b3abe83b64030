package config_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/provide"
)

// Counter is what the counter provider component provides.
type Counter struct {
	Start int
	n     atomic.Int64
	name  string
}

type counterSpec struct {
	Start int `yaml:"start" doc:"the first number"`
}

var counterOpened atomic.Int64

var counterComponent = component.Provider("counter", "numbers in order", func(env component.Env, s counterSpec) (any, error) {
	if s.Start > 1000 {
		return nil, component.FieldErrorf("start", "at most 1000")
	}
	return provide.Define[*Counter](func() *Counter {
		counterOpened.Add(1)
		return &Counter{Start: s.Start, name: env.Name}
	})
})

// next is a Go service taking the unnamed Counter; ticket a named one.
var next = flow.Func("next", func(ctx context.Context, in struct {
	C *Counter `provide:""`
}) (struct{ N int }, error) {
	return struct{ N int }{in.C.Start + int(in.C.n.Add(1))}, nil
})

var ticket = flow.Func("ticket", func(ctx context.Context, in struct {
	C *Counter `provide:"tickets"`
}) (struct{ Ticket string }, error) {
	return struct{ Ticket string }{in.C.name}, nil
})

func providerConfig(t *testing.T) (*component.Registry, *config.Registry) {
	comps := stepComponents(t, counterComponent)
	reg := config.NewRegistry()
	require.NoError(t, reg.Register(next, "the next number"))
	require.NoError(t, reg.Register(ticket, "a ticket"))
	return comps, reg
}

// TestProvidersSection: the providers: section makes each entry's value,
// under its name, and as the unnamed one of its type when it is the only
// one; `use:` steps of Go Funcs receive them.
func TestProvidersSection(t *testing.T) {
	comps, reg := providerConfig(t)
	before := counterOpened.Load()
	cfg := load(t, `
providers:
  tickets: {counter: {start: 100}}
flows:
  f:
    steps:
      - use: next
      - use: ticket
`, config.WithComponents(comps), config.WithRegistry(reg))
	assert.Equal(t, before, counterOpened.Load(), "loading constructs nothing")
	f, _ := cfg.Flow("f")
	out, err := f.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, 101, out.View()["n"])
	assert.Equal(t, "tickets", out.View()["ticket"])
	out, err = f.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, 102, out.View()["n"], "a singleton, shared by the runs")
	assert.Equal(t, before+1, counterOpened.Load())
	require.NoError(t, cfg.Providers().Close(context.Background()))

	for _, si := range reg.ServicesIn(comps) {
		if si.Name == "ticket" {
			require.Len(t, si.Given, 1, "the catalog says what it is given")
			assert.Equal(t, `*config_test.Counter (named "tickets")`, si.Given[0].String())
		}
	}
}

func TestProvidersSectionErrors(t *testing.T) {
	comps, reg := providerConfig(t)
	msg := loadErr(t, `
providers:
  a: {counter: {start: 1}}
  b: {counter: {start: 2000}}
  c: {countr: {}}
flows:
  f:
    steps:
      - use: ticket
`, config.WithComponents(comps), config.WithRegistry(reg))
	assert.Equal(t, strings.Join([]string{
		`test.yaml:4:24: provider "b": counter: start: at most 1000`,
		`test.yaml:5:7: provider "c": unknown provider "countr": expected counter (did you mean "counter"?)`,
		`test.yaml:9:9: flow "f": step "ticket": field C: provided *config_test.Counter (named "tickets"): no provider`,
	}, "\n"), msg)

	msg = loadErr(t, `
providers:
  a: {counter: {}}
  b: {counter: {}}
flows:
  f:
    steps:
      - use: next
`, config.WithComponents(comps), config.WithRegistry(reg))
	assert.Contains(t, msg, `step "next": field C: provided *config_test.Counter: no provider`, "two of a type: neither is the unnamed one")
}

// TestCompensateUnderASagaAtAnyDepth: YAML compensations sit anywhere
// under a saga, and run only for what ran.
func TestCompensateUnderASagaAtAnyDepth(t *testing.T) {
	cfg := load(t, `
flows:
  f:
    input: [big]
    steps:
      - saga:
          - set: {a: "1"}
            compensate: {set: {undo_a: "true"}}
          - when:
              if: big
              steps:
                - set: {b: "2"}
                  compensate: {set: {undo_b: "true"}}
          - stop: {if: "true", reason: "no"}
`)
	f, _ := cfg.Flow("f")
	out, err := f.Run(t.Context(), map[string]any{"big": true})
	require.Error(t, err)
	assert.Equal(t, true, out.View()["undo_a"])
	assert.Equal(t, true, out.View()["undo_b"])
	out, err = f.Run(t.Context(), map[string]any{"big": false})
	require.Error(t, err)
	assert.Equal(t, true, out.View()["undo_a"])
	assert.NotContains(t, out.View(), "undo_b", "skipped: not undone")
}

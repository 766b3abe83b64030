package config_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/flow"
)

const shapesYAML = `
flows:
  lookup:
    input: [id]
    steps:
      - name: fetch
        set: {tier: "'gold'", since: "2019"}
        passthrough: true
        store_output_as: customer
      - name: normalize
        set: {id: "upper(id)"}
        store_input_as: raw
      - set: {note: "customer.tier + ' ' + raw.id"}
  orders:
    input: [total]
    steps:
      - when:
          if: "total == 0"
          divert: true
          steps: [{name: free, set: {note: "'free'"}}]
      - name: charge
        set: {note: "'charged'", charged: "total"}
      - name: ship
        set: {shipped: "true"}
tests:
  - flow: lookup
    cases:
      - name: shapes
        input: {id: ab}
        want: {id: AB, customer: {tier: gold, since: 2019}, raw: {id: ab}, note: gold ab}
      - name: the input of a step mocked
        input: {id: ab}
        stubs: {normalize: {input: {id: zz}}}
        want: {id: ZZ, raw: {id: ab}}
  - flow: orders
    cases:
      - {name: diverted, input: {total: 0}, want: {note: free}}
      - {name: not diverted, input: {total: 5}, want: {note: charged, shipped: true}}
      - name: a mocked input diverts nothing, but changes what charge sees
        input: {total: 5}
        stubs: {charge: {input: {total: 7}}}
        want: {charged: 7, total: 7}
`

// TestShapesYAML: passthrough, store_input_as, store_output_as, when with
// divert and a stub's input, each run through the tests: section.
func TestShapesYAML(t *testing.T) {
	cfg := load(t, shapesYAML)
	for _, s := range cfg.Tests() {
		for _, tc := range s.Cases {
			t.Run(s.Flow+"/"+tc.Name, func(t *testing.T) {
				r := tc.Run(t.Context())
				assert.True(t, r.Passed(), "%s\noutput: %v\nerror: %v", strings.Join(r.Failures, "\n"), r.Output, r.Err)
			})
		}
	}
	f, ok := cfg.Flow("orders")
	require.True(t, ok)
	out, err := f.Run(t.Context(), map[string]any{"total": 0})
	require.NoError(t, err)
	assert.False(t, out.Has("shipped"), "a divert ends the flow")
	assert.Equal(t, flow.KindDivert, f.Graph().Children[0].Kind)
	assert.Contains(t, f.Graph().DOT(), `[label="yes"]`)
	lookup, _ := cfg.Flow("lookup")
	assert.Contains(t, lookup.Graph().DOT(), "passthrough, store_output_as: customer")
	// the flow's contract: a divert ends it before charge provides charged
	var names []string
	for _, k := range f.Contract().Provides {
		names = append(names, k.Name)
	}
	assert.Equal(t, []string{"note"}, names)
}

func TestShapesYAMLErrors(t *testing.T) {
	for src, want := range map[string]string{
		"      - {set: {a: '1'}, passthrough: maybe}\n":                                                     `test.yaml:5:38: step: passthrough: expected true or false`,
		"      - {set: {a: '1'}, store_input_as: ''}\n":                                                     `test.yaml:5:41: step: store_input_as: expected a name`,
		"      - {set: {a: '1'}, store_output_as: a}\n      - set: {b: 'a.a'}\n":                            ``,
		"      - {set: {a: '1'}, passthrough: true}\n      - set: {b: a}\n":                                 `test.yaml:6:18: flow "f": step "set(b)": key "a": needed but not provided`,
		"      - unless: {if: 'true', divert: true, steps: [{set: {a: '1'}}]}\n":                            `test.yaml:5:30: unless: unknown key "divert"`,
		"      - when: {if: 'nope', divert: true, steps: [{set: {a: '1'}}]}\n":                              `test.yaml:5:21: flow "f": step "divert(nope)": key "nope": read by expression`,
		"      - each: {over: xs, steps: [{when: {if: 'true', divert: true, steps: [{set: {a: '1'}}]}}]}\n": `a divert cannot sit inside each, until or tap`,
	} {
		full := "flows:\n  f:\n    input: [xs]\n    steps:\n" + src
		_, err := config.LoadSources([]config.Source{{Name: "test.yaml", Data: []byte(full)}})
		if want == "" {
			assert.NoError(t, err, src)
			continue
		}
		require.Error(t, err, src)
		assert.Contains(t, err.Error(), want, src)
	}
	// a stub's input: a step of the flow itself, not with output
	for stubs, want := range map[string]string{
		"{a: {input: {x: 1}, output: {y: 1}}}": `stub "a": output: set input (the step runs, on this input) or output/error (the step does not run), not both`,
		"{nope: {input: {x: 1}}}":              `stubs: flow "f" has no step named "nope"`,
		"{a: {input: 3}}":                      `stub "a": input: expected a mapping of keys to values`,
	} {
		full := "flows:\n  f:\n    steps:\n      - {name: a, set: {x: '1'}}\ntests:\n  - flow: f\n    cases:\n      - {stubs: " + stubs + "}\n"
		_, err := config.LoadSources([]config.Source{{Name: "test.yaml", Data: []byte(full)}})
		require.Error(t, err, stubs)
		assert.Contains(t, err.Error(), want, stubs)
	}
}

// TestShapesInSchema: the JSON Schema of the file knows the new keys.
func TestShapesInSchema(t *testing.T) {
	b, err := json.Marshal(config.Schema(config.SchemaOptions{Components: component.Default()}))
	require.NoError(t, err)
	for _, k := range []string{`"passthrough"`, `"store_input_as"`, `"store_output_as"`, `"divert"`, `"group_by"`, `"sum_by"`} {
		assert.Contains(t, string(b), k)
	}
}

// TestShapesREADMEExample: the README's pypeman example, with its HTTP
// service stubbed as flowrun test does.
func TestShapesREADMEExample(t *testing.T) {
	cfg, err := config.LoadSources([]config.Source{{Name: "crm.yaml", Data: []byte(`
vars: {crm: "http://127.0.0.1:1"}
flows:
  intake:
    input: [customer_id]
    steps:
      - http: {url: "{{var \"crm\"}}/customers/{{.customer_id}}", into: response}
        passthrough: true
        store_output_as: crm           # crm.response is the answer; the context is otherwise unchanged
      - when:
          if: "crm.response.blocked"
          divert: true                 # blocked customers: reject and end here
          steps: [{set: {status: "'blocked'"}}]
      - set: {status: "'accepted'"}
tests:
  - flow: intake
    http_service:
      var: crm
      routes:
        GET /customers/c-1: {json: {blocked: false}}
        GET /customers/c-2: {json: {blocked: true}}
    cases:
      - {name: accepted, input: {customer_id: c-1}, want: {status: accepted, crm: {response: {blocked: false}}}}
      - {name: blocked, input: {customer_id: c-2}, want: {status: blocked}}
`)}})
	require.NoError(t, err)
	n := 0
	for _, s := range cfg.Tests() {
		for _, tc := range s.Cases {
			n++
			r := tc.Run(t.Context())
			assert.True(t, r.Passed(), "%s: %s\noutput: %v", tc.Name, strings.Join(r.Failures, "\n"), r.Output)
			assert.NotContains(t, r.Output, "response", "passthrough drops the step's own writes")
		}
	}
	assert.Equal(t, 2, n)
}

package steps_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/errors"
)

// runYAMLTests loads src and runs every case of its tests: section, as
// flowrun test does; each case is a subtest.
func runYAMLTests(t *testing.T, src string) {
	t.Helper()
	cfg, err := config.LoadSources([]config.Source{{Name: "fn.yaml", Data: []byte(src)}})
	require.NoError(t, err)
	n := 0
	for _, s := range cfg.Tests() {
		for _, tc := range s.Cases {
			n++
			t.Run(s.Flow+"/"+tc.Name, func(t *testing.T) {
				r := tc.Run(t.Context())
				assert.True(t, r.Passed(), "%s\noutput: %v\nerror: %v", strings.Join(r.Failures, "\n"), r.Output, r.Err)
			})
		}
	}
	require.NotZero(t, n)
}

// TestToolkitYAML: every toolkit step in YAML, table-tested through the
// configuration's own tests: section.
func TestToolkitYAML(t *testing.T) {
	runYAMLTests(t, `
flows:
  pick:
    input: [id, total, secret]
    steps: [{pick: [id, total]}]
  pick_into:
    input: [customer]
    steps: [{pick: {keys: [name], from: customer, into: contact}}]
  omit:
    input: [id, secret]
    steps: [{omit: [secret]}]
  omit_map:
    input: [user]
    steps: [{omit: {keys: [password], from: user}}]
  rename:
    input: [id, total]
    steps: [{rename: {keys: {id: order_id, total: amount}}}]
  defaults:
    input: [{name: lang, optional: true}]
    steps: [{defaults: {values: {lang: en, tags: [a]}}}]
  merge:
    input: [a, b]
    steps: [{merge: {from: [a, b], into: ab}}, {merge: [a]}]
  map:
    input: [items, rate]
    steps:
      - map: {from: items, to: "#.price * #.qty * rate", into: amounts}
      - map: {from: items, as: item, to: "{sku: item.sku, n: #index}", into: tagged}
  filter:
    input: [items]
    steps:
      - filter: {from: items, where: "#.qty > 0", into: in_stock}
      - reject: {from: items, as: it, where: "it.qty > 0", into: missing}
      - filter: {from: items, where: "#.sku != 'c'"}
  group:
    input: [items]
    steps:
      - group_by: {from: items, by: "#.sku", into: by_sku}
      - key_by: {from: items, by: "#.qty", into: by_qty}
      - uniq_by: {from: items, by: "#.sku", into: first_of_sku}
  sort:
    input: [items]
    steps:
      - sort_by: {from: items, by: "#.price", into: cheap_first}
      - sort_by: {from: items, by: "#.sku", desc: true, into: z_first}
  sum:
    input: [items]
    steps:
      - sum_by: {from: items, by: "#.price * #.qty", into: total}
      - sum_by: {from: items, by: "#.qty", into: count}
  chunks:
    input: [items]
    steps:
      - chunk: {from: items, size: 2, into: pages}
      - flatten: {from: pages, into: again}
tests:
  - flow: pick
    cases:
      - {input: {id: 1, total: 2, secret: x}, want: {id: 1, total: 2}}
  - flow: pick_into
    cases:
      - {input: {customer: {name: Ada, email: a@x}}, want: {contact: {name: Ada}, customer: {email: a@x}}}
  - flow: omit
    cases:
      - {input: {id: 1, secret: x}, want: {id: 1}}
  - flow: omit_map
    cases:
      - {input: {user: {name: Ada, password: x}}, want: {user: {name: Ada}}}
  - flow: rename
    cases:
      - {input: {id: 1, total: 2}, want: {order_id: 1, amount: 2}}
  - flow: defaults
    cases:
      - {name: absent, input: {}, want: {lang: en, tags: [a]}}
      - {name: kept, input: {lang: fr}, want: {lang: fr}}
      - {name: "null", input: {lang: null}, want: {lang: en}}
  - flow: merge
    cases:
      - {input: {a: {x: 1, y: 1}, b: {y: 2}}, want: {ab: {x: 1, y: 2}, x: 1, y: 1}}
  - flow: map
    cases:
      - input: {rate: 2, items: [{sku: a, price: 1.5, qty: 2}, {sku: b, price: 3, qty: 1}]}
        want: {amounts: [6, 6], tagged: [{sku: a, n: 0}, {sku: b, n: 1}]}
      - {name: empty, input: {rate: 1, items: []}, want: {amounts: []}}
      - {name: "not a list", input: {rate: 1, items: 3}, error: stop, error_contains: "want a list"}
  - flow: filter
    cases:
      - input: {items: [{sku: a, qty: 2}, {sku: b, qty: 0}, {sku: c, qty: 1}]}
        want: {in_stock: [{sku: a}, {sku: c}], missing: [{sku: b}], items: [{sku: a}, {sku: b}]}
  - flow: group
    cases:
      - input: {items: [{sku: a, qty: 2}, {sku: b, qty: 0}, {sku: a, qty: 1}, {sku: c, qty: 2.0}]}
        want:
          by_sku: {a: [{qty: 2}, {qty: 1}], b: [{qty: 0}], c: [{qty: 2}]}
          by_qty: {"2": {sku: c}, "0": {sku: b}, "1": {sku: a}}
          first_of_sku: [{sku: a, qty: 2}, {sku: b}, {sku: c}]
  - flow: sort
    cases:
      - input: {items: [{sku: b, price: 2}, {sku: a, price: 1}, {sku: c, price: 1}]}
        want: {cheap_first: [{sku: a}, {sku: c}, {sku: b}], z_first: [{sku: c}, {sku: b}, {sku: a}]}
      - name: mixed keys
        input: {items: [{sku: b, price: 2}, {sku: a, price: x}]}
        error: stop
        error_contains: "cannot order a number and a string"
  - flow: sum
    cases:
      - input: {items: [{price: 1.5, qty: 2}, {price: 3, qty: 1}]}
        want: {total: 6, count: 3}
      - {name: "not a number", input: {items: [{price: x, qty: 1}]}, error: stop}
  - flow: chunks
    cases:
      - input: {items: [1, 2, 3, 4, 5]}
        want: {pages: [[1, 2], [3, 4], [5]], again: [1, 2, 3, 4, 5]}
`)
}

// TestToolkitYAMLErrors: problems of the toolkit steps are reported at
// their place in the file, as build errors when a key is missing.
func TestToolkitYAMLErrors(t *testing.T) {
	for step, want := range map[string]string{
		`filter: {from: items, where: "#.qty >"}`:     `s.yaml:5:38: filter: where: expr "#.qty >" at 1:8: unexpected token EOF`,
		`filter: {from: items}`:                       `s.yaml:5:17: filter: missing where (the condition, over # (the element) or as)`,
		`map: {from: items, to: "#", as: "a b"}`:      `s.yaml:5:41: map: as: expected a name (letters, digits, _), got "a b"`,
		`chunk: {from: items, size: 0}`:               `s.yaml:5:36: chunk: size: expected at least 1, got 0`,
		`group_by: {from: items, by: "#.sku"}`:        `s.yaml:5:19: group_by: missing into (the key of the result)`,
		`pick: []`:                                    `s.yaml:5:15: pick: keys: expected at least one key`,
		`rename: {keys: {a: x, b: x}}`:                `both renamed to "x"`,
		`filter: {from: nope, where: "#.qty > 0"}`:    `key "nope"`,
		`filter: {from: items, where: "#.qty > lim"}`: `key "lim"`,
	} {
		src := "flows:\n  f:\n    input: [items]\n    steps:\n      - " + step + "\n"
		_, err := config.LoadSources([]config.Source{{Name: "s.yaml", Data: []byte(src)}})
		require.Error(t, err, step)
		assert.Contains(t, err.Error(), want, step)
	}
	// pick removes keys: a later step needing one is a build error
	src := "flows:\n  f:\n    input: [a, b]\n    steps:\n      - pick: [a]\n      - set: {c: b}\n"
	_, err := config.LoadSources([]config.Source{{Name: "s.yaml", Data: []byte(src)}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `s.yaml:6:18: flow "f": step "set(c)": key "b": needed but not provided`)
	assert.False(t, errors.Is(err, errors.ErrStop))
}

// TestToolkitStepNames: a toolkit step without a name is named by its
// kind and key.
func TestToolkitStepNames(t *testing.T) {
	cfg, err := config.LoadSources([]config.Source{{Name: "n.yaml", Data: []byte(`
flows:
  f:
    input: [items, m]
    steps:
      - filter: {from: items, where: "#.ok", into: a}
      - reject: {from: items, where: "#.ok", into: b}
      - group_by: {from: items, by: "#.k", into: c}
      - key_by: {from: items, by: "#.k", into: d}
      - sum_by: {from: items, by: "#.n", into: e}
      - uniq_by: {from: items, by: "#.k", into: g}
      - sort_by: {from: items, by: "#.n", into: h}
      - chunk: {from: items, size: 2, into: i}
      - flatten: {from: i, into: j}
      - map: {from: items, to: "#.n", into: k}
      - pick: {keys: [x], from: m, into: l}
      - filter: {from: items, where: "!#.ok", into: a2}
`)}})
	require.NoError(t, err)
	f, _ := cfg.Flow("f")
	for _, name := range []string{"filter(items)", "reject(items)", "group_by(items)", "key_by(items)", "sum_by(items)",
		"uniq_by(items)", "sort_by(items)", "chunk(items)", "flatten(i)", "map(items)", "pick(x)", "filter(items)#2"} {
		_, ok := f.Lookup(name)
		assert.True(t, ok, name)
	}
}

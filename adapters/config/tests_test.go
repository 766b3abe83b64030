package config_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/errors"
)

// TestCaseErrorKinds: a case's error: is an errors.Kind by name; the names
// users wrote before outcomes were typed keep working.
func TestCaseErrorKinds(t *testing.T) {
	cfg := load(t, `
version: 1
flows:
  f:
    input: [x]
    retry: {max_attempts: 2, initial: 1ms}
    steps:
      - stop: {if: "x < 0", reason: negative}
      - name: work
        set: {y: "x * 2"}
tests:
  - flow: f
    cases:
      - {name: stop, input: {x: -1}, error: stop}
      - {name: retry matches exhausted retries, input: {x: 1}, stubs: {work: {error: retry}}, error: retry}
      - {name: retry-exhausted, input: {x: 1}, stubs: {work: {error: retry}}, error: retry-exhausted}
      - {name: failure is the former name of failed, input: {x: 1}, stubs: {work: {error: failure}}, error: failure}
      - {name: failed, input: {x: 1}, stubs: {work: {error: failed, message: broken}}, error: failed, error_contains: broken}
      - {name: fatal, input: {x: 1}, stubs: {work: {error: fatal}}, error: fatal}
      - {name: any, input: {x: -1}, error: any}
      - {name: text alone expects an error, input: {x: -1}, error_contains: negative}
      - {name: exhausted is not stop, input: {x: 1}, stubs: {work: {error: retry}}, error: stop}
      - {name: stop is not exhausted, input: {x: -1}, error: retry-exhausted}
      - {name: failed is not retry, input: {x: 1}, stubs: {work: {error: failed}}, error: retry}
      - {name: any needs an error, input: {x: 1}, error: any}
      - {name: text needs an error, input: {x: 1}, error_contains: negative}
`)
	suites := cfg.Tests()
	require.Len(t, suites, 1)
	got := map[string][]string{}
	kinds := map[string]errors.Kind{}
	for _, tc := range suites[0].Cases {
		got[tc.Name] = tc.Run(context.Background()).Failures
		kinds[tc.Name] = tc.Error
	}
	for _, name := range []string{"stop", "retry matches exhausted retries", "retry-exhausted",
		"failure is the former name of failed", "failed", "fatal", "any", "text alone expects an error"} {
		assert.Empty(t, got[name], name)
	}
	assert.Equal(t, errors.KindRetry, kinds["retry matches exhausted retries"])
	assert.Equal(t, errors.KindRetryExhausted, kinds["retry-exhausted"])
	assert.Equal(t, errors.KindFailed, kinds["failure is the former name of failed"])
	assert.Equal(t, errors.KindOK, kinds["any"], "any is no kind")

	one := func(name string) string {
		require.Len(t, got[name], 1, name)
		return got[name][0]
	}
	assert.Contains(t, one("exhausted is not stop"), "want error stop, got retry-exhausted: ")
	assert.Contains(t, one("stop is not exhausted"), "want error retry-exhausted, got stop: ")
	assert.Contains(t, one("failed is not retry"), "want error retry, got failed: ")
	assert.Contains(t, one("any needs an error"), "want an error, got none")
	assert.Contains(t, one("text needs an error"), "want an error, got none")
}

// TestCaseErrorKindErrors: outcomes no run ends with are not error kinds.
func TestCaseErrorKindErrors(t *testing.T) {
	src := func(kind string) string {
		return `
version: 1
flows:
  f:
    steps: [{set: {y: "1"}}]
tests:
  - flow: f
    cases:
      - {name: c, error: ` + kind + `}
`
	}
	for _, kind := range []string{"ok", "skipped", "will-retry", "retried"} {
		assert.Contains(t, loadErr(t, src(kind)),
			"case: error: expected an error kind: one of stop, dropped, retry, retry-exhausted, fatal, failed, panic, canceled, any", kind)
	}
	assert.Contains(t, loadErr(t, src("retry-exausted")), `(did you mean "retry-exhausted"?)`)

	msg := loadErr(t, `
version: 1
flows:
  f:
    steps: [{name: s, set: {y: "1"}}]
tests:
  - flow: f
    cases:
      - {name: c, stubs: {s: {error: panic}}}
`)
	assert.Contains(t, msg, `stub "s": error: expected one of stop, dropped, retry, fatal, failed`)
}

// TestCaseValuesCompareLikeFlowtest: values compare by the rule flowtest
// uses: floats within rounding, nested maps as subsets.
func TestCaseValuesCompareLikeFlowtest(t *testing.T) {
	cfg := load(t, `
version: 1
flows:
  f:
    input: [x]
    steps:
      - set: {r: "x + 0.2", nested: "{'a': 1, 'b': [x]}"}
tests:
  - flow: f
    cases:
      - {name: rounding, input: {x: 0.1}, want: {r: 0.3, nested: {b: [0.1]}}}
      - {name: close is not equal, input: {x: 0.1}, want: {r: 0.3001}}
`)
	got := map[string][]string{}
	for _, tc := range cfg.Tests()[0].Cases {
		got[tc.Name] = tc.Run(context.Background()).Failures
	}
	assert.Empty(t, got["rounding"])
	require.Len(t, got["close is not equal"], 1)
	assert.Contains(t, got["close is not equal"][0], `key "r": want 0.3001, got 0.30000000000000004`)
}

// TestHTTPServiceOfASuite: a suite's http_service is started for each
// case, answers its routes (a list: one answer per request, the last
// repeated) and the default, and its var holds its URL while the case
// runs, and only then.
func TestHTTPServiceOfASuite(t *testing.T) {
	cfg := load(t, `
vars: {api: "http://127.0.0.1:1"}
flows:
  f:
    input: [id]
    steps:
      - http: {url: '{{var "api"}}/items/{{.id}}', into: item, status_into: status, allow_status: [404, 409], retry: {max_attempts: 1}}
tests:
  - flow: f
    http_service:
      var: api
      routes:
        GET /items/a: {json: {name: apple}}
        /items/b:
          - {status: 409, body: busy, headers: {X-Try: "1"}}
          - {json: {name: banana}}
      default: {status: 404, json: {missing: true}}
    cases:
      - {name: a, input: {id: a}, want: {item: {name: apple}, status: 200}}
      - {name: b first, input: {id: b}, want: {status: 409}}
      - {name: other, input: {id: zz}, want: {item: {missing: true}, status: 404}}
`)
	suites := cfg.Tests()
	require.Len(t, suites, 1)
	assert.Equal(t, "api", suites[0].HTTPServiceVar)
	for _, tc := range suites[0].Cases {
		r := tc.Run(context.Background())
		assert.True(t, r.Passed(), "%s: %v", tc.Name, r.Failures)
	}
	assert.Equal(t, "http://127.0.0.1:1", cfg.Vars()["api"], "the var is the file's outside the cases")

	got := loadErr(t, `
vars: {api: x}
flows:
  f:
    steps: [{set: {y: "1"}}]
tests:
  - flow: f
    http_service:
      var: apii
      routes:
        items/a: {json: 1}
        GET /b: {status: 9000, jsn: 1}
        GET /c: []
        GET /d: {json: 1, body: x}
    cases: [{name: c}]
`)
	for _, want := range []string{
		`test.yaml:9:12: tests: http_service: var "apii" is not declared in vars`,
		`test.yaml:11:9: tests: http_service: route "items/a": expected "METHOD /path" or "/path"`,
		`test.yaml:12:26: tests: http_service: route GET /b: status: expected an integer from 100 to 599, got 9000`,
		`test.yaml:12:32: tests: http_service: route GET /b: unknown key "jsn": expected one of status, headers, json, body (did you mean "json"?)`,
		`test.yaml:13:17: tests: http_service: route "GET /c": expected at least one answer`,
		`test.yaml:14:27: tests: http_service: route GET /d: give json or body, not both`,
	} {
		assert.Contains(t, got, want)
	}
}

package config_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/steps"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
)

// testSource is a source component's product in these tests.
type testSource struct{ name string }

func (s testSource) Name() string { return s.name }
func (s testSource) Run(ctx context.Context, _ channel.Handler) error {
	<-ctx.Done()
	return nil
}

type tickSpec struct {
	Every time.Duration `yaml:"every" spec:"required,scalar" doc:"how often"`
	Label string        `yaml:"label" default:"tick" doc:"a label"`
}

type boxSpec struct {
	Path  string `yaml:"path" spec:"scalar"`
	Limit int    `yaml:"limit" default:"3"`
}

func testComponents(t *testing.T) *component.Registry {
	t.Helper()
	reg, err := component.NewRegistry(append(steps.All(),
		component.Source("tick", "ticks", func(env component.Env, s tickSpec) (channel.Source, error) {
			return testSource{name: s.Label}, nil
		}),
		component.Store("box", "a box", func(env component.Env, s boxSpec) (component.StoreOpener, error) {
			return func() (store.Store, error) { return nil, errors.New("not for opening") }, nil
		}),
	)...)
	require.NoError(t, err)
	return reg
}

// spec is every field type the decoder reads.
type spec struct {
	Name     string            `yaml:"name" spec:"required" doc:"a name"`
	Count    int               `yaml:"count" default:"7"`
	Ratio    float64           `yaml:"ratio"`
	On       bool              `yaml:"on" default:"true"`
	Wait     time.Duration     `yaml:"wait"`
	Retry    *errors.Policy    `yaml:"retry"`
	Tags     []string          `yaml:"tags" spec:"oneormany"`
	Headers  map[string]string `yaml:"headers"`
	Extra    any               `yaml:"extra"`
	Nested   *nested           `yaml:"nested"`
	From     []component.Ref   `yaml:"from" kind:"source" spec:"oneormany"`
	Store    component.Ref     `yaml:"store" kind:"store"`
	Untagged string
}

type nested struct {
	Deep int `yaml:"deep" spec:"required"`
}

func decode(t *testing.T, text string, into any) (*config.Decoded, error) {
	t.Helper()
	cfg, err := config.LoadSources([]config.Source{{Name: "c.yaml", Data: []byte(text)}}, config.WithComponents(testComponents(t)))
	require.NoError(t, err)
	secs := cfg.Channels()
	require.Len(t, secs, 1)
	return secs[0].Decode(into)
}

const head = "version: 1\nflows:\n  f:\n    steps: [{set: {a: \"1\"}}]\nchannels:\n  c:\n"

func TestDecodeEveryType(t *testing.T) {
	var s spec
	d, err := decode(t, head+`    name: n
    ratio: 0.5
    wait: 250ms
    retry: {max_attempts: 4, initial: 10ms, max: 1s, multiplier: 3, max_elapsed: 1m, jitter: 0.1, retry_all: true}
    tags: one
    headers: {a: b}
    extra: {x: [1, "y"]}
    nested: {deep: 2}
    from: [{tick: 1s}, {tick: {every: 2s, label: two}}]
    store: box:here
    untagged: u
`, &s)
	require.NoError(t, err)
	assert.Equal(t, "n", s.Name)
	assert.Equal(t, 7, s.Count, "default")
	assert.True(t, s.On, "default")
	assert.Equal(t, 0.5, s.Ratio)
	assert.Equal(t, 250*time.Millisecond, s.Wait)
	assert.Equal(t, &errors.Policy{MaxAttempts: 4, Initial: 10 * time.Millisecond, MaxInterval: time.Second, Multiplier: 3,
		MaxElapsed: time.Minute, Jitter: 0.1, RetryAll: true}, s.Retry)
	assert.Equal(t, []string{"one"}, s.Tags, "one item where a list is expected")
	assert.Equal(t, map[string]string{"a": "b"}, s.Headers)
	assert.Equal(t, map[string]any{"x": []any{1.0, "y"}}, s.Extra)
	assert.Equal(t, &nested{Deep: 2}, s.Nested)
	assert.Equal(t, "u", s.Untagged, "an untagged field is its snake_case name")
	require.Len(t, s.From, 2)
	assert.Equal(t, &tickSpec{Every: time.Second, Label: "tick"}, s.From[0].Spec, "shorthand, default applied")
	assert.Equal(t, &tickSpec{Every: 2 * time.Second, Label: "two"}, s.From[1].Spec)
	assert.Equal(t, "box", s.Store.Component.Name)
	assert.Equal(t, &boxSpec{Path: "here", Limit: 3}, s.Store.Spec, "name:value, default applied")
	src, err := s.From[1].Source(component.Env{})
	require.NoError(t, err)
	assert.Equal(t, "two", src.Name())
	assert.True(t, d.Has("from.1"))
	assert.False(t, d.Has("ratio2"))
	assert.Equal(t, "c.yaml:15:12: here", d.Errorf("from.0", "here").Error())
	assert.Equal(t, "c.yaml:7:5: top", d.Errorf("nope", "top").Error(), "an absent path is the spec's position")
}

// TestDecodeErrors: every problem at once, in file order, each at its
// position and saying what was expected.
func TestDecodeErrors(t *testing.T) {
	var s spec
	_, err := decode(t, head+`    count: -1
    ratio: x
    on: yes please
    wait: 5
    retry: {max_atempts: 3, initial: fast}
    tags: {a: 1}
    nested: {}
    from: [{tik: 1s}, {tick: {every: 1s, lable: x}}, 3]
    store: {box: {path: p}, extra: 1}
    nmae: x
`, &s)
	require.Error(t, err)
	var errs config.Errors
	require.ErrorAs(t, err, &errs)
	assert.Equal(t, strings.Join([]string{
		`c.yaml:7:5: channel "c": missing name (a name)`,
		`c.yaml:7:12: channel "c": count: expected an integer from 0 to 9223372036854775807, got -1`,
		`c.yaml:8:12: channel "c": ratio: expected a number, got "x"`,
		`c.yaml:9:9: channel "c": on: expected true or false, got "yes please"`,
		`c.yaml:10:11: channel "c": wait: expected a duration such as 250ms or 2s, got "5" (a number needs a unit: ms, s, m, h)`,
		`c.yaml:11:13: channel "c": retry: unknown key "max_atempts": expected one of initial, multiplier, max, max_interval, max_attempts, max_elapsed, jitter, retry_all (did you mean "max_attempts"?)`,
		`c.yaml:11:38: channel "c": retry: initial: expected a duration such as 250ms or 2s, got "fast"`,
		`c.yaml:12:11: channel "c": tags: expected a string, got a mapping`,
		`c.yaml:13:13: channel "c": nested: missing deep`,
		`c.yaml:14:13: channel "c": from: unknown source "tik": expected tick (did you mean "tick"?)`,
		`c.yaml:14:42: channel "c": from: tick: unknown key "lable": expected every or label (did you mean "label"?)`,
		`c.yaml:14:54: channel "c": from: expected one source: {name: spec} with name one of tick, got the number 3`,
		`c.yaml:15:12: channel "c": store: expected one store: {name: spec} with name one of box, got a mapping`,
		`c.yaml:16:5: channel "c": unknown key "nmae": expected one of name, count, ratio, on, wait, retry, tags, headers, extra, nested, from, store, untagged (did you mean "name"?)`,
	}, "\n"), err.Error())
}

func TestDecodeRefErrors(t *testing.T) {
	var s spec
	_, err := decode(t, head+"    name: n\n    store: bax\n    from: tick:1s\n", &s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `c.yaml:8:12: channel "c": store: unknown store "bax": expected box (did you mean "box"?)`)
	assert.Contains(t, err.Error(), `c.yaml:9:11: channel "c": from: tick takes nothing after "tick:"`)

	_, err = decode(t, head+"    name: n\n    from: tick\n", &s)
	assert.ErrorContains(t, err, `c.yaml:8:11: channel "c": from: tick: missing every after "tick:" (how often)`)

	_, err = decode(t, head+"    name: n\n    store: box\n", &s)
	require.NoError(t, err, "a name alone: the spec's defaults")
	assert.Equal(t, &boxSpec{Limit: 3}, s.Store.Spec)

	_, err = decode(t, head+"    name: n\n    from: {tick: }\n", &s)
	assert.ErrorContains(t, err, `c.yaml:8:18: channel "c": from: tick: missing every (how often)`)

	_, err = decode(t, head+"    name: n\n    store: 'box:'\n", &s)
	require.NoError(t, err, "a store URL with nothing after the name")
	assert.Equal(t, &boxSpec{Limit: 3}, s.Store.Spec)
}

func TestDecodeNeedsAPointer(t *testing.T) {
	_, err := decode(t, head+"    name: n\n", spec{})
	assert.ErrorContains(t, err, "want a non-nil pointer")
	var zero config.Section
	_, err = zero.Decode(&spec{})
	assert.ErrorContains(t, err, "was not loaded")
}

// TestDecodeAliasPositions: a problem in a value reached through an
// alias is reported at the alias, with the anchor.
func TestDecodeAliasPositions(t *testing.T) {
	var s spec
	_, err := decode(t, head+"    name: n\n    from: &src {tick: {every: soon}}\n    store: *src\n", &s)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `c.yaml:8:31: channel "c": from: tick: every: expected a duration such as 250ms or 2s, got "soon"`)
	assert.Contains(t, err.Error(), `c.yaml:9:12: channel "c": store: unknown store "tick": expected box (in anchor &src, at 8:17)`)
}

// vocab is a spec with what step specs read of the run's context.
type vocab struct {
	Assign component.Pairs[component.Expr] `yaml:"assign"`
	If     component.Cond                  `yaml:"if"`
	Msg    component.Template              `yaml:"msg"`
	Keys   []component.Key                 `yaml:"keys"`
	Level  string                          `yaml:"level" enum:"debug,info,warn"`
	Cmd    cmdSpec                         `yaml:"cmd"`
}

type cmdSpec struct {
	Argv   []string `yaml:"argv" spec:"list"`
	Script string   `yaml:"script" spec:"scalar"`
}

const vocabHead = "vars: {api: http://x}\nflows:\n  f:\n    steps: [{set: {a: \"1\"}}]\nchannels:\n  c:\n"

// TestDecodeStepVocabulary: expressions, conditions, templates, keys,
// ordered mappings, enums and list shorthands.
func TestDecodeStepVocabulary(t *testing.T) {
	var s vocab
	d, err := decode(t, vocabHead+`    assign: {b: "a + 1", a: "2"}
    if: "b > 1"
    msg: '{{var "api"}}/{{.id}}'
    keys: [total, note]
    level: warn
    cmd: [ls, -l]
`, &s)
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "a"}, s.Assign.Keys(), "in the order written")
	assert.Equal(t, []string{"a"}, s.Assign[0].Value.Keys())
	assert.Equal(t, "b > 1", s.If.Source())
	out, err := s.Msg.Execute(map[string]any{"id": 7})
	require.NoError(t, err)
	assert.Equal(t, "http://x/7", out, "templates get the configuration's functions")
	assert.Equal(t, []component.Key{"total", "note"}, s.Keys)
	assert.Equal(t, "warn", s.Level)
	assert.Equal(t, cmdSpec{Argv: []string{"ls", "-l"}}, s.Cmd, "a list fills the list field")
	assert.Equal(t, `c.yaml:7:29: here`, d.Errorf("assign.a", "here").Error(), "an entry's value")

	fe := d.Error(`channel "c"`, errors.Join(component.FieldErrorf("keys.1", "not this one"), errors.New("as a whole")))
	assert.Equal(t, `c.yaml:10:19: channel "c": keys: not this one`, fe[0].Error(), "a FieldError at its field; the index is the position")
	assert.Equal(t, `c.yaml:7:5: channel "c": as a whole`, fe[1].Error())

	var s2 vocab
	_, err = decode(t, vocabHead+"    cmd: date\n", &s2)
	require.NoError(t, err)
	assert.Equal(t, cmdSpec{Script: "date"}, s2.Cmd, "a plain value fills the scalar field")

	_, err = decode(t, vocabHead+`    assign: {x: "len(items", y: 3}
    if: "1 + 1"
    msg: '{{var "apj"}} {{.id'
    keys: [" padded"]
    level: loud
`, &s)
	require.Error(t, err)
	assert.Equal(t, strings.Join([]string{
		`c.yaml:7:27: channel "c": assign "x": bad expression "len(items": unexpected token EOF`,
		`c.yaml:8:9: channel "c": if: bad expression "1 + 1": expected bool, but got int`,
		`c.yaml:9:10: channel "c": msg: bad template: line 1: unclosed action`,
		`c.yaml:10:12: channel "c": keys: expected a name, got " padded"`,
		`c.yaml:11:12: channel "c": level: expected debug, info or warn, got "loud"`,
	}, "\n"), err.Error())

	_, err = decode(t, vocabHead+`    msg: '{{var "apj"}}'`+"\n", &s)
	assert.EqualError(t, err, `c.yaml:7:18: channel "c": msg: unknown var "apj": declare it under vars: (did you mean "api"?)`)
}

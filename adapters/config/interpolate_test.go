package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/config"
)

func env(vars map[string]string) config.Option {
	return config.WithLookupEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
}

func TestInterpolation(t *testing.T) {
	src := `
version: 1
vars:
  api: "${API_URL}/v1"
  region: ${REGION:eu-west}
  empty_default: ${EMPTY:fallback}
  set_empty: "${EMPTY}"
  port: ${PORT}
  quoted_port: "${PORT}"
  flag: ${FLAG}
  literal: "$${API_URL} and $${X:y}"
  mixed: 'host-${REGION:xx}-${PORT}'
flows:
  f:
    input: [x]
    retry:
      max_attempts: ${ATTEMPTS}
      max: !!str "${MAX:1s}"
      initial: !!str ${INITIAL:1ms}
    steps:
      - set: {y: "x * ${FACTOR}"}
      - sleep: !!str "${SLEEP:1ms}"
      - stop: {if: !!bool "${NEVER:false}", reason: no}
`
	cfg := load(t, src, env(map[string]string{"API_URL": "http://crm:8080", "PORT": "8080", "FLAG": "true", "EMPTY": "", "ATTEMPTS": "4", "FACTOR": "3"}))
	assert.Equal(t, map[string]any{
		"api":           "http://crm:8080/v1",
		"region":        "eu-west",
		"empty_default": "fallback",
		"set_empty":     "",
		"port":          8080.0, // a plain scalar takes the type of its new text
		"quoted_port":   "8080", // a quoted one stays a string
		"flag":          true,
		"literal":       "${API_URL} and ${X:y}",
		"mixed":         "host-xx-8080",
	}, cfg.Vars())
	out, err := run(t, cfg, "f", map[string]any{"x": 2})
	require.NoError(t, err)
	assert.EqualValues(t, 6, out["y"], "references are replaced in expressions too")
}

func TestInterpolationErrors(t *testing.T) {
	src := "version: 1\nvars:\n  a: ${MISSING}\n  b: \"x-${ALSO_MISSING}\"\n  c: ${bad name}\n  d: ${UNCLOSED\n  e: ${file:nope.txt}\nflows:\n  f:\n    steps: [{set: {y: \"1\"}}]\n"
	got := loadErr(t, src, env(nil))
	assert.Contains(t, got, `test.yaml:3:6: ${MISSING}: environment variable MISSING is not set (give a default: ${MISSING:value})`)
	assert.Contains(t, got, `test.yaml:4:9: ${ALSO_MISSING}: environment variable ALSO_MISSING is not set`)
	assert.Contains(t, got, `test.yaml:5:6: bad reference ${bad name}`)
	assert.Contains(t, got, `test.yaml:6:6: unclosed reference "${UNCLOSED"`)
	assert.Contains(t, got, `test.yaml:7:6: ${file:nope.txt}: cannot read the file: open nope.txt: no such file or directory`)
}

func TestInterpolationFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("s3cret\n"), 0o600))
	conf := filepath.Join(dir, "app.yaml")
	require.NoError(t, os.WriteFile(conf, []byte("vars:\n  token: ${file:token}\n  abs: ${file:"+filepath.Join(dir, "token")+"}\nflows:\n  f:\n    steps: [{set: {y: \"1\"}}]\n"), 0o600))
	cfg, err := config.Load([]string{conf}, env(nil))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"token": "s3cret", "abs": "s3cret"}, cfg.Vars(), "relative to the file's folder, one trailing newline dropped")
}

func TestValueEndingInColon(t *testing.T) {
	for _, store := range []string{"memory:", "memory", `"memory:"`} {
		cfg := load(t, "flows:\n  f:\n    steps: [{sleep: 1ms}]\nchannels:\n  c:\n    from: {http: /a}\n    flow: f\n    store: "+store+"   # a comment\n")
		require.Len(t, cfg.Channels(), 1, store)
	}
}

func TestPathsRelativeToTheFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "conf", "app.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(conf), 0o755))
	require.NoError(t, os.WriteFile(conf, []byte("flows:\n  f:\n    steps: [{sleep: 1ms}]\nchannels:\n  a: {dir: inbox, abs: /srv/x, mem: \":memory:\", plain: inbox}\n  b: {dir: inbox}\n"), 0o600))
	type spec struct {
		Dir   string `yaml:"dir" spec:"path"`
		Abs   string `yaml:"abs" spec:"path"`
		Mem   string `yaml:"mem" spec:"path"`
		Plain string `yaml:"plain"`
	}
	cfg, err := config.Load([]string{conf}, config.WithSet("channels.b.dir=here"))
	require.NoError(t, err)
	chs := cfg.Channels()
	var a, b spec
	_, err = chs[0].Decode(&a)
	require.NoError(t, err)
	assert.Equal(t, spec{Dir: filepath.Join(dir, "conf", "inbox"), Abs: "/srv/x", Mem: ":memory:", Plain: "inbox"}, a)
	_, err = chs[1].Decode(&b)
	require.NoError(t, err)
	assert.Equal(t, "here", b.Dir, "a value given with --set stays relative to the working directory")
}

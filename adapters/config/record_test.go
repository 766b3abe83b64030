package config_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
)

// TestRecordYAML: record: STORE on a fork records each run reaching it,
// in a store opened by Init and closed by Close, the path relative to the
// file's folder.
func TestRecordYAML(t *testing.T) {
	dir := t.TempDir()
	src := `flows:
  f:
    input: [tier]
    steps:
      - fork:
          on: tier
          cases:
            gold: [{set: {rate: '0.2'}}]
            silver: [{stop: {reason: no silver}}]
        record: sqlite:data/cases.db
`
	path := filepath.Join(dir, "flows.yaml")
	require.NoError(t, os.WriteFile(path, []byte(src), 0o644))
	cfg, err := config.Load([]string{path})
	require.NoError(t, err)
	f, ok := cfg.Flow("f")
	require.True(t, ok)
	_, err = os.Stat(filepath.Join(dir, "data", "cases.db"))
	assert.True(t, os.IsNotExist(err), "loading opens nothing")
	require.NoError(t, f.Init(t.Context()))
	_, err = f.Run(t.Context(), map[string]any{"tier": "gold", "meta": map[string]any{"id": "a"}})
	require.NoError(t, err)
	_, err = f.Run(t.Context(), map[string]any{"tier": "silver", "meta": map[string]any{"id": "b"}})
	require.Error(t, err)
	require.NoError(t, f.Close(t.Context()))

	st, err := sqlite.Open(filepath.Join(dir, "data", "cases.db"))
	require.NoError(t, err)
	defer st.Close()
	a, err := st.Get(t.Context(), "a@f/fork(tier)")
	require.NoError(t, err)
	assert.Equal(t, store.Done, a.State)
	assert.Equal(t, 0.2, a.Message.Context["rate"])
	b, err := st.Get(t.Context(), "b@f/fork(tier)")
	require.NoError(t, err)
	assert.Equal(t, store.Rejected, b.State)
	assert.Equal(t, "no silver", b.Reason)
}

func TestRecordYAMLErrors(t *testing.T) {
	for src, want := range map[string]string{
		"      - {set: {a: '1'}, record: bogus:x}\n":          `test.yaml:5:33: step: record: unknown store "bogus"`,
		"      - {set: {a: '1'}, record: memory:xx}\n":        `test.yaml:5:33: step: record: memory takes nothing after "memory:"`,
		"      - {set: {a: '1'}, record: memory}\n":           ``,
		"      - {then: [{set: {a: '1'}}], record: memory}\n": ``,
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
	b, err := json.Marshal(config.Schema(config.SchemaOptions{Components: component.Default()}))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"record"`)
}

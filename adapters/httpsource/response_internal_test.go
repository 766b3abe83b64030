package httpsource

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/internal/jsonenc"
)

// TestDefaultBodyIsTheContextWithoutMeta: the default body is exactly
// what encoding/json writes for the context without meta (sorted keys,
// escapes), and the context itself is not written to.
func TestDefaultBodyIsTheContextWithoutMeta(t *testing.T) {
	out := map[string]any{"z": 1, "a<b": "x&y", "meta": map[string]any{"id": "m-1"}, "list": []any{1.5, nil, true}, "": "empty"}
	body, ctype, err := (*shaping)(nil).body(nil, out, jsonenc.Append)
	require.NoError(t, err)
	assert.Equal(t, "application/json", ctype)
	want, err := json.Marshal(map[string]any{"z": 1, "a<b": "x&y", "list": []any{1.5, nil, true}, "": "empty"})
	require.NoError(t, err)
	assert.Equal(t, string(want), string(body))
	assert.Contains(t, out, "meta", "the context is left as it was")

	only, _, err := (*shaping)(nil).body(nil, map[string]any{"meta": 1}, jsonenc.Append)
	require.NoError(t, err)
	assert.Equal(t, "{}", string(only))
}

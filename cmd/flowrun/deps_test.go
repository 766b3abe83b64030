package main_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEmbeddedExamplesMatch: the YAML flowrun embeds is the examples'
// own (go generate copies it).
func TestEmbeddedExamplesMatch(t *testing.T) {
	for _, name := range []string{"orders", "batch", "enrich"} {
		want, err := os.ReadFile(filepath.Join("..", "..", "examples", name, name+".yaml"))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join("examples", name+".yaml"))
		require.NoError(t, err)
		assert.True(t, bytes.Equal(want, got), "cmd/flowrun/examples/%s.yaml differs from examples/%s/%s.yaml: run go generate ./cmd/flowrun", name, name, name)
	}
}

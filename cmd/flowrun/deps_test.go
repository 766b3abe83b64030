package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestLayering: serve and config name no concrete source, store or step
// kind, and nothing under cmd/ or adapters/ imports examples/ (go list
// -deps).
func TestLayering(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	deps := func(pkgs ...string) []string {
		out, err := exec.Command(gobin, append([]string{"list", "-deps"}, pkgs...)...).Output()
		require.NoError(t, err)
		return strings.Fields(string(out))
	}
	const mod = "github.com/svcflow/svcflow/"
	concrete := []string{"adapters/httpsource", "adapters/cron", "adapters/filewatch", "adapters/poll", "adapters/steps", "adapters/store/sqlite", "adapters/store/file", "adapters/store/postgres", "modernc.org/sqlite", "github.com/jackc/pgx", "adapters/nats", "github.com/nats-io/nats-server/v2", "github.com/nats-io/nats.go"}
	for _, pkg := range []string{mod + "adapters/serve", mod + "adapters/config"} {
		for _, d := range deps(pkg) {
			for _, c := range concrete {
				assert.False(t, d == mod+c || d == c || strings.HasPrefix(d, c+"/"), "%s imports %s", pkg, d)
			}
		}
	}
	for _, d := range deps(mod+"cmd/...", mod+"adapters/...") {
		assert.False(t, strings.HasPrefix(d, mod+"examples"), "imports %s", d)
	}
}

package config_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/config"
)

// TestStepsKeepBigNumbers: JSON that an http step receives or a shell step
// prints enters the context with its numbers' digits, and a request body
// built from the context sends them unchanged.
func TestStepsKeepBigNumbers(t *testing.T) {
	var sent string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		sent = string(b)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id": 12345678901234567891, "n": 2}`)
	}))
	defer srv.Close()
	src := `
version: 1
vars: {api: http://placeholder}
flows:
  f:
    input: [order]
    steps:
      - http: {method: post, url: '{{var "api"}}/x', body: order, into: answer}
`
	if runtime.GOOS != "windows" {
		src += `      - shell: {command: "echo '[98765432109876543210]'", json: true, into: printed}
`
	}
	cfg := load(t, src, config.WithSet("vars.api="+srv.URL), config.WithRegistry(config.NewRegistry(config.AllowShell())))
	order := map[string]any{"ref": json.Number("12345678901234567891")} // as decoding a request keeps it
	out, err := run(t, cfg, "f", map[string]any{"order": order})
	require.NoError(t, err)
	assert.JSONEq(t, `{"ref": 12345678901234567891}`, sent)
	assert.Contains(t, sent, "12345678901234567891")
	assert.Equal(t, map[string]any{"id": json.Number("12345678901234567891"), "n": 2.0}, out["answer"])
	if runtime.GOOS != "windows" {
		assert.Equal(t, []any{json.Number("98765432109876543210")}, out["printed"])
	}
}

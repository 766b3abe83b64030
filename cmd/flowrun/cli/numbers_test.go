package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const numbersYAML = `version: 1
flows:
  f:
    input: [id]
    steps:
      - set: {same: "id", next: "id > 0", env: "$env"}
`

// TestBigNumbersKeepTheirDigits: an integer beyond 2^53 read by run (a
// file, stdin) and by a JSONL batch comes out with all its digits, and
// $env yields a copy of the context.
func TestBigNumbersKeepTheirDigits(t *testing.T) {
	file := writeFile(t, "f.yaml", numbersYAML)
	const want = `{"env":{"id":12345678901234567891,"next":true,"same":12345678901234567891},"id":12345678901234567891,"next":true,"same":12345678901234567891}`

	r := flowrun(t, `{"id": 12345678901234567891}`, "run", file, "--flow", "f", "--input", "-")
	require.Equal(t, 0, r.code, r.errOut)
	assert.JSONEq(t, want, r.out)
	assert.Contains(t, r.out, `12345678901234567891`)
	assert.NotContains(t, r.out, `12345678901234567000`)

	input := writeFile(t, "in.json", `{"id": 12345678901234567891}`)
	r = flowrun(t, "", "run", file, "--flow", "f", "--input", "@"+input)
	require.Equal(t, 0, r.code, r.errOut)
	assert.NotContains(t, r.out, `12345678901234567000`)
	assert.Contains(t, r.out, `"same": 12345678901234567891`)

	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	out := filepath.Join(dir, "out.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(`{"id": 12345678901234567891}`+"\n"+`{"id": -98765432109876543210}`+"\n"), 0o644))
	r = flowrun(t, "", "run", file, "--flow", "f", "--jsonl", in, "--out", out, "--progress", "none")
	require.Equal(t, 0, r.code, r.errOut)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	require.Len(t, lines, 2)
	assert.Equal(t, want, lines[0])
	assert.Equal(t, `{"env":{"id":-98765432109876543210,"next":false,"same":-98765432109876543210},"id":-98765432109876543210,"next":false,"same":-98765432109876543210}`, lines[1])
}

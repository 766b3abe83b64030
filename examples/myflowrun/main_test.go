package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/svcflow/svcflow/cmd/flowrun/cli"
)

func flowrun(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, append(Options(), cli.WithStdio(nil, &out, &errb))...)
	return code, out.String(), errb.String()
}

func TestShippingCases(t *testing.T) {
	code, out, errOut := flowrun("test", "shipping.yaml")
	assert.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "4 passed, 0 failed")
}

func TestServicesListsTheGoServices(t *testing.T) {
	code, out, _ := flowrun("services")
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "geocode")
	assert.Contains(t, out, "reads: city string")
	assert.Contains(t, out, "writes: price float64")
}

// TestTypedContractsAreChecked: the typed Go service needs weight_kg as a
// float64; a YAML input declared as a string is a validate error at its
// position.
func TestTypedContractsAreChecked(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	src := "version: 1\nflows:\n  s:\n    input: [city, {name: weight_kg, type: string}]\n    steps: [geocode, quote]\n"
	assert.NoError(t, os.WriteFile(bad, []byte(src), 0o644))
	code, _, errOut := flowrun("validate", bad)
	assert.Equal(t, cli.ExitFailure, code)
	assert.Contains(t, errOut, bad+`:5:22: flow "s": step "quote": key "weight_kg": needed as float64, but the flow input provides string`)
}

func TestMainLineCount(t *testing.T) {
	src, err := os.ReadFile("main.go")
	assert.NoError(t, err)
	assert.Less(t, bytes.Count(src, []byte("\n")), 15, "a custom flowrun's main.go stays under 15 lines")
}

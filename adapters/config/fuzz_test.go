package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/svcflow/svcflow/adapters/config"
)

// FuzzLoad loads arbitrary bytes: the loader must never panic, and every
// problem it reports must carry a position in the file. The seeds are the
// broken files of testdata/bad and the examples; go test runs only them,
// go test -run '^$' -fuzz FuzzLoad ./adapters/config explores further.
// FuzzLoadServe (adapters/serve) carries on where this one stops: it
// checks the channels of what loads and runs its flows.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bad/*.yaml")
	examples, _ := filepath.Glob("../../examples/*/*.yaml")
	for _, p := range append(seeds, examples...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("flows: {a: {steps: [{fork: {on: '(', cases: {x: [{set: {y: '{{'}}]}}}}]}}"))
	f.Add([]byte("flows:\n  a:\n    steps: &x [{then: *x}]\n"))
	reg := testRegistry()
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.LoadSources([]config.Source{{Name: "fuzz.yaml", Data: data}}, config.WithRegistry(reg))
		if err == nil {
			if cfg == nil {
				t.Fatal("no config and no error")
			}
			return
		}
		errs, ok := err.(config.Errors)
		if !ok {
			t.Fatalf("error of type %T: %v", err, err)
		}
		for _, e := range errs {
			if e.File != "fuzz.yaml" || e.Line < 1 {
				t.Fatalf("problem without a position: %v", e)
			}
		}
	})
}

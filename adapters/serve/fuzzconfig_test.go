package serve_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/serve"
	fc "github.com/svcflow/svcflow/context"
)

// refuseTransport is the HTTP transport of the flows FuzzLoadServe runs:
// nothing leaves the process.
type refuseTransport struct{}

func (refuseTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return nil, fmt.Errorf("no network while fuzzing (%s %s)", r.Method, r.URL.Host)
}

// Bounds of the flow runs of FuzzLoadServe.
const (
	fuzzRunTimeout = 200 * time.Millisecond // each run's context
	fuzzRunGrace   = 10 * time.Second       // after which a run that ignores it hangs
	fuzzMaxRuns    = 8                      // flows run per input
)

// FuzzLoadServe is FuzzLoad (adapters/config) carried on to what serve
// and flowrun do with a configuration that loads:
//   - serve.Check builds its channels (flows, sources, store specs)
//     without panicking, and each problem it reports is positioned in
//     the file; Check binds no port and opens no store, so a fuzzed
//     configuration touches nothing;
//   - each flow runs once, on its sample: or else on an empty input,
//     with a short timeout: it must not panic, must return soon after its
//     timeout, and encoding its output context as JSON must not panic. Only flows
//     run (no channel starts), the shell step is off (the default) and
//     the http step's client refuses every request, so a run neither
//     listens, writes files nor calls out.
//
// The seeds are those of FuzzLoad (the broken files of the config
// package's testdata/bad and the examples) and a few with channels. go
// test runs only them; explore further with
//
//	go test -run '^$' -fuzz FuzzLoadServe ./adapters/serve
func FuzzLoadServe(f *testing.F) {
	seeds, _ := filepath.Glob("../config/testdata/bad/*.yaml")
	examples, _ := filepath.Glob("../../examples/*/*.yaml")
	for _, p := range append(seeds, examples...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(intake))
	f.Add([]byte(pricing))
	f.Add([]byte(strings.NewReplacer("LEDGERHOST", "127.0.0.1:1", "LEDGER", "http://127.0.0.1:1").Replace(fuzzIntake)))
	f.Add([]byte(`version: 1
flows:
  f:
    input: [{name: n, type: int}]
    sample: {n: 3}
    retry: {max_attempts: 100, initial: 1ms, max: 5ms}
    steps:
      - sleep: 1h
channels:
  c:
    from: [{http: {listen: ":0", path: /a}}, {cron: "@every 1s"}, {files: {dir: inbox}}, {poll: {url: "http://127.0.0.1:1/x", every: 1s}}]
    flow: f
    store: file:out
    order_by: n
`))
	f.Add([]byte(`version: 1
flows:
  f:
    input: [items]
    sample: {items: [{price: 1e308, qty: 10}]}
    steps:
      - set: {total: "sum(map(items, #.price * #.qty))"}
      - http: {url: "http://127.0.0.1:1/{{.total}}", retry: {max_attempts: 1000, initial: 1ms}, into: r}
channels:
  c: {from: {http: {listen: "127.0.0.1:0", path: /x}}, flow: f, store: "sqlite:/nonexistent/x.db"}
  d: {from: {http: {listen: "127.0.0.1:0", path: /x}}, flow: g, max_in_flight: -5}
`))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := config.NewRegistry(config.WithLogger(quiet), config.WithHTTPClient(&http.Client{Transport: refuseTransport{}}))
	data := f.TempDir()
	f.Fuzz(func(t *testing.T, text []byte) {
		cfg, err := config.LoadSources([]config.Source{{Name: "fuzz.yaml", Data: text}}, config.WithRegistry(reg))
		if err != nil {
			return // FuzzLoad checks what the loader reports
		}
		if len(cfg.Channels()) > 0 {
			err := serve.Check(cfg, serve.Options{DataDir: data, Admin: "off", Logger: quiet})
			var errs config.Errors
			switch {
			case err == nil:
			case !errors.As(err, &errs):
				t.Fatalf("Check: error of type %T: %v", err, err)
			default:
				for _, e := range errs {
					if e.File != "fuzz.yaml" || e.Line < 1 {
						t.Fatalf("Check: problem without a position: %v", e)
					}
				}
			}
		}
		flows := cfg.Flows()
		if len(flows) > fuzzMaxRuns {
			flows = flows[:fuzzMaxRuns]
		}
		for _, name := range flows {
			runFuzzedFlow(t, cfg, name)
		}
	})
}

// runFuzzedFlow runs a flow of a fuzzed configuration on its sample, or
// on an empty input, within fuzzRunTimeout.
func runFuzzedFlow(t *testing.T, cfg *config.Config, name string) {
	t.Helper()
	fl, ok := cfg.Flow(name)
	if !ok {
		t.Fatalf("flow %q listed, but not built", name)
	}
	in, ok := cfg.Sample(name)
	if !ok {
		in = map[string]any{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), fuzzRunTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			if err := fl.Init(ctx); err != nil {
				return nil // its services could not start: nothing ran
			}
			defer fl.Close(context.WithoutCancel(ctx))
			c := fc.FromMap(in)
			_ = fl.RunContext(ctx, c) // any outcome but a panic or a hang
			// flowrun run prints it: a value JSON cannot hold (+Inf) is
			// an error, anything else must encode.
			_, _ = json.Marshal(c)
			return nil
		}()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("flow %q: %v", name, err)
		}
	case <-time.After(fuzzRunTimeout + fuzzRunGrace):
		buf := make([]byte, 1<<20)
		t.Fatalf("flow %q still runs %v after its timeout:\n%s", name, fuzzRunGrace, buf[:runtime.Stack(buf, true)])
	}
}

package enrich_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	_ "github.com/svcflow/svcflow/adapters/steps" // the built-in step kinds its YAML uses, as flowrun links them
	"github.com/svcflow/svcflow/cmd/flowrun/cli"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// customers is a fake customers service.
func customers() http.Handler {
	var flaky atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /customers/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.PathValue("id") {
		case "c-1":
			_, _ = w.Write([]byte(`{"id": "c-1", "tier": "gold", "region": "eu"}`))
		case "c-2":
			_, _ = w.Write([]byte(`{"id": "c-2", "tier": "silver"}`))
		case "flaky":
			if flaky.Add(1) <= 2 {
				w.Header().Set("Retry-After", "0")
				http.Error(w, `{"error": "busy"}`, http.StatusServiceUnavailable)
				return
			}
			_, _ = w.Write([]byte(`{"id": "flaky", "tier": "gold", "region": "us"}`))
		case "bad id":
			http.Error(w, `{"error": "malformed id"}`, http.StatusBadRequest)
		case "down":
			http.Error(w, `{"error": "maintenance"}`, http.StatusBadGateway)
		default:
			http.Error(w, `{"error": "not found"}`, http.StatusNotFound)
		}
	})
	return mux
}

func flowrun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, cli.WithStdio(nil, &out, &errb))
	return code, out.String(), errb.String()
}

// TestEnrichCases runs the YAML cases as a user does, out of the box: the
// suite declares the customers service it calls, started for each case.
func TestEnrichCases(t *testing.T) {
	code, out, errOut := flowrun(t, "test", "enrich.yaml")
	assert.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "8 passed, 0 failed")
}

func TestEnrichRun(t *testing.T) {
	srv := httptest.NewServer(customers())
	defer srv.Close()
	code, out, errOut := flowrun(t, "run", "enrich.yaml", "--set", "vars.customers_api="+srv.URL, "--trace")
	assert.Equal(t, 0, code, errOut)
	assert.Contains(t, out, `"priority": "high"`)
	assert.Contains(t, errOut, "enrich/fetch_customer")

	code, _, errOut = flowrun(t, "run", "enrich.yaml", "--set", "vars.customers_api="+srv.URL, "--input", `{"order_id": "O-9", "customer_id": "bad id"}`)
	assert.Equal(t, cli.ExitStopped, code)
	assert.Contains(t, errOut, "stopped (stop)")
}

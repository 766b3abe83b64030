package steps_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/config"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// TestHTTPAllowHostsSpecErrors: bad entries, and a constant url outside
// the list, are spec errors at their positions.
func TestHTTPAllowHostsSpecErrors(t *testing.T) {
	for step, want := range map[string]string{
		`http: {url: "http://x/{{.a}}", allow_hosts: ["http://x", "a*.b", "*.", "h:99999"]}`: "s.yaml:5:54: http: allow_hosts: expected a host, host:port or *.domain, got \"http://x\"\n" +
			"s.yaml:5:66: http: allow_hosts: a wildcard is only allowed as *.domain, got \"a*.b\"\n" +
			"s.yaml:5:74: http: allow_hosts: a wildcard is only allowed as *.domain, got \"*.\"\n" +
			"s.yaml:5:80: http: allow_hosts: expected host:port, got \"h:99999\"",
		`http: {url: "http://evil.test/x", allow_hosts: [api.test]}`:         `s.yaml:5:21: http: url: host "evil.test" is not in allow_hosts`,
		`http: {url: "http://x/{{.a}}", allow_hosts: []}`:                    `s.yaml:5:53: http: allow_hosts: expected at least one host (leave allow_hosts out to allow any)`,
		`http: {url: "http://API.test./x", allow_hosts: [api.test]}`:         ``,
		`http: {url: "https://a.b.api.test/x", allow_hosts: ["*.api.test"]}`: ``,
	} {
		assert.Equal(t, want, loadStep(t, step), step)
	}
}

// TestHTTPAllowHosts: with allow_hosts, a url built from input that names
// another host is a Stop naming the host and sends nothing; a redirect to
// another host is refused the same way; listed hosts are called.
func TestHTTPAllowHosts(t *testing.T) {
	var internal atomic.Int32
	secret := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internal.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"secret": "metadata"}`))
	}))
	defer secret.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, secret.URL+"/latest/meta-data", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok": true}`))
	}))
	defer api.Close()
	apiHost := strings.TrimPrefix(api.URL, "http://")
	// secret listens on 127.0.0.1 too: tell the two apart by port, and
	// name the secret one by "localhost".
	secretURL := strings.Replace(secret.URL, "127.0.0.1", "localhost", 1)

	src := `flows:
  f:
    input: [target]
    steps:
      - http: {url: "{{.target}}", allow_hosts: ["` + apiHost + `", "*.example.test"], into: out}
`
	cfg, err := config.LoadSources([]config.Source{{Name: "h.yaml", Data: []byte(src)}})
	require.NoError(t, err)
	f, ok := cfg.Flow("f")
	require.True(t, ok)

	run := func(target string) (*fc.Context, error) {
		c := fc.New()
		c.Set("target", target)
		return c, f.RunContext(context.Background(), c)
	}
	c, err := run(api.URL + "/x")
	require.NoError(t, err)
	out, _ := c.Get("out")
	assert.Equal(t, map[string]any{"ok": true}, out)

	for target, host := range map[string]string{
		secretURL + "/latest/meta-data":                       strings.TrimPrefix(secretURL, "http://"),
		"http://" + apiHost + "@evil.test/":                   "evil.test",
		"http://example.test.evil.test/":                      "example.test.evil.test",
		strings.Replace(api.URL, "127.0.0.1", "localhost", 1): strings.TrimPrefix(strings.Replace(api.URL, "127.0.0.1", "localhost", 1), "http://"),
	} {
		_, err := run(target)
		require.Error(t, err, target)
		assert.True(t, errors.IsStop(err), "%s: %v", target, err)
		stop, _ := errors.AsType[*errors.StopError](err)
		require.NotNil(t, stop, target)
		assert.Contains(t, stop.Reason, `host "`+host+`" is not in allow_hosts`, target)
	}

	_, err = run(api.URL + "/redirect")
	require.Error(t, err)
	assert.True(t, errors.IsStop(err), "%v", err)
	assert.ErrorContains(t, err, "redirected to host")
	assert.Zero(t, internal.Load(), "nothing reached a host outside the list")
}

package serve_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
)

// served is a running server of a configuration, for end-to-end tests of
// what data survives: requests in, responses and the store out.
type served struct {
	base, admin string
	data        string
	stop        func()
}

// startServed serves text, in which DATA names a fresh data folder, and
// waits until it is ready.
func startServed(t *testing.T, text string) *served {
	t.Helper()
	data := t.TempDir()
	cfg := load(t, strings.ReplaceAll(text, "DATA", data))
	srv, err := serve.New(cfg, serve.Options{DataDir: data, Admin: "127.0.0.1:0", Drain: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	addrs := srv.Addrs()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	s := &served{admin: "http://" + addrs["admin"], data: data}
	for name, addr := range addrs {
		if strings.HasPrefix(name, "http ") {
			s.base = "http://" + addr
		}
	}
	var once bool
	s.stop = func() {
		if !once {
			once = true
			cancel()
			require.NoError(t, <-done)
		}
	}
	t.Cleanup(s.stop)
	require.Eventually(t, func() bool {
		r, err := http.Get(s.admin + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	}, 5*time.Second, 10*time.Millisecond)
	return s
}

// post sends body to path and returns the status and the response body.
func (s *served) post(t *testing.T, path, body string) (int, string) {
	t.Helper()
	r, err := http.Post(s.base+path, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return r.StatusCode, string(b)
}

// records stops the server and returns what its SQLite store keeps.
func (s *served) records(t *testing.T, file string) []*store.Record {
	t.Helper()
	s.stop()
	st, err := serve.OpenStore(nil, "sqlite:"+filepath.Join(s.data, file))
	require.NoError(t, err)
	defer st.Close()
	recs, err := st.Search(context.Background(), store.Query{})
	require.NoError(t, err)
	return recs
}

// TestServeEnvIsACopy: `set: {audit: "$env"}` stores a copy of the
// context as it was, not the context itself: the request is answered, the
// message is done and stored, nothing is left to run again.
func TestServeEnvIsACopy(t *testing.T) {
	s := startServed(t, `version: 1
flows:
  f:
    input: [a]
    steps:
      - set: {audit: "$env", n: "len($env)"}
      - set: {again: "{before: $env}"}
channels:
  c:
    from: {http: {listen: "127.0.0.1:0", path: /in}}
    flow: f
    store: sqlite:DATA/c.db
`)
	code, body := s.post(t, "/in", `{"a": 1}`)
	require.Equal(t, 200, code, body)
	assert.Contains(t, body, `"audit":{"a":1,"meta":{`)
	assert.Contains(t, body, `"again":{"before":{"a":1,"audit":{"a":1,"meta":{`)
	recs := s.records(t, "c.db")
	require.Len(t, recs, 1)
	assert.Equal(t, store.Done, recs[0].State)
	audit := recs[0].Message.Context["audit"].(map[string]any)
	assert.Equal(t, 1.0, audit["a"])
	assert.NotContains(t, audit, "audit", "the copy was taken before audit was set")
}

// TestServeBigNumbersKeepTheirDigits: integers beyond 2^53 and long
// decimals come back from a request, a file and the store exactly as they
// were sent, while expressions still compute on them.
func TestServeBigNumbersKeepTheirDigits(t *testing.T) {
	s := startServed(t, `version: 1
flows:
  f:
    input: [id, order]
    steps:
      - set: {same: "id", doubled: "order.qty * 2", big: "id > 1e19", copy: "order"}
channels:
  c:
    from:
      - http: {listen: "127.0.0.1:0", path: /in}
      - files: {dir: DATA/inbox, glob: "*.json", settle: 10ms, rescan: 50ms}
    flow: f
    store: sqlite:DATA/c.db
`)
	in := `{"id": 12345678901234567891, "order": {"qty": 3, "ref": -98765432109876543210, "rate": 0.1000000000000000000001}}`
	code, body := s.post(t, "/in", in)
	require.Equal(t, 200, code, body)
	for _, want := range []string{
		`"id":12345678901234567891,`, `"same":12345678901234567891}`, `"doubled":6,`, `"big":true,`,
		`"copy":{"qty":3,"rate":0.1000000000000000000001,"ref":-98765432109876543210}`,
		`"order":{"qty":3,"rate":0.1000000000000000000001,"ref":-98765432109876543210}`,
	} {
		assert.Contains(t, body, want)
	}

	require.NoError(t, os.WriteFile(filepath.Join(s.data, "inbox", "a.json"), []byte(in), 0o644))
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(s.data, "inbox", "done", "a.json"))
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)

	recs := s.records(t, "c.db")
	require.Len(t, recs, 2)
	for _, rec := range recs {
		assert.Equal(t, store.Done, rec.State)
		ctx := rec.Message.Context
		assert.Equal(t, json.Number("12345678901234567891"), ctx["id"])
		assert.Equal(t, json.Number("12345678901234567891"), ctx["same"])
		assert.Equal(t, json.Number("-98765432109876543210"), ctx["copy"].(map[string]any)["ref"])
		out, err := json.Marshal(ctx)
		require.NoError(t, err)
		assert.Contains(t, string(out), `"id":12345678901234567891,`)
		assert.Contains(t, string(out), `"rate":0.1000000000000000000001,`)
	}
}

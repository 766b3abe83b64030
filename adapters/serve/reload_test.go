package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// reloadV1 is the configuration a server starts with: intake answers
// version v1; stats is another channel a plan leaves alone.
const reloadV1 = `version: 1
flows:
  orders:
    input: [n]
    steps:
      - use: record
      - set: {version: "'v1'"}
  stats:
    steps:
      - set: {ok: "true"}
channels:
  intake:
    from: {http: {listen: "127.0.0.1:0", path: /orders}}
    flow: orders
    store: sqlite:DATA/intake.db
  stats:
    from: {http: {listen: "127.0.0.1:0", path: /stats}}
    flow: stats
    store: memory:
`

// reloadV2 changes intake's flow (a safe change: v2) and adds a channel.
var reloadV2 = strings.Replace(reloadV1, `"'v1'"`, `"'v2'"`, 1) + `  audit:
    from: {http: {listen: "127.0.0.1:0", path: /audit}}
    flow: stats
    store: memory:
`

// recorder counts the runs of each message id.
type recorder struct {
	mu   sync.Mutex
	runs map[string]int
}

func (r *recorder) service() flow.Service {
	return flow.Step("record", func(ctx context.Context, c *fc.Context) error {
		meta, _ := c.Get("meta")
		id, _ := meta.(map[string]any)["id"].(string)
		r.mu.Lock()
		r.runs[id]++
		r.mu.Unlock()
		time.Sleep(time.Millisecond) // keeps messages in flight while a plan is applied
		return nil
	})
}

// reloadServer is a running server and what its tests use.
type reloadServer struct {
	t     testing.TB
	srv   *serve.Server
	dir   string
	data  string
	reg   *config.Registry
	rec   *recorder
	base  string
	admin string
	token string
	done  chan error
}

func startReload(t testing.TB, text string) *reloadServer {
	t.Helper()
	rs := &reloadServer{t: t, dir: t.TempDir(), data: t.TempDir(), rec: &recorder{runs: map[string]int{}}, token: "s3cret", done: make(chan error, 1)}
	rs.reg = config.NewRegistry()
	require.NoError(t, rs.reg.Register(rs.rec.service(), "counts runs"))
	cfg := rs.load(text)
	opts := serve.Options{DataDir: rs.data, Admin: "127.0.0.1:0", Drain: 10 * time.Second, AdminToken: rs.token}
	if _, bench := t.(*testing.B); bench {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv, err := serve.New(cfg, opts)
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	rs.srv = srv
	rs.base = "http://" + srv.Addrs()["http 127.0.0.1:0"]
	rs.admin = "http://" + srv.Addrs()["admin"]
	ctx, cancel := context.WithCancel(context.Background())
	go func() { rs.done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-rs.done)
	})
	require.Eventually(t, func() bool {
		r, err := http.Get(rs.admin + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	}, 10*time.Second, 10*time.Millisecond)
	return rs
}

func (rs *reloadServer) files(text string) serve.Files {
	path := filepath.Join(rs.dir, "serve.yaml")
	return serve.Files{Files: []serve.File{{Name: path, Content: strings.ReplaceAll(text, "DATA", rs.data)}}}
}

func (rs *reloadServer) load(text string) *config.Config {
	f := rs.files(text)
	require.NoError(rs.t, os.WriteFile(f.Files[0].Name, []byte(f.Files[0].Content), 0o644))
	cfg, err := config.Load([]string{f.Files[0].Name}, config.WithRegistry(rs.reg))
	require.NoError(rs.t, err)
	return cfg
}

// plan makes the plan from what runs to text, through GET /config.
func (rs *reloadServer) plan(text string) *serve.Plan {
	code, body := rs.call("GET", "/config", rs.token, nil)
	require.Equal(rs.t, 200, code, "%s", body)
	var running serve.RunningConfig
	require.NoError(rs.t, json.Unmarshal(body, &running))
	p, err := serve.NewPlan(running, rs.files(text))
	require.NoError(rs.t, err)
	return p
}

func (rs *reloadServer) call(method, path, token string, v any) (int, []byte) {
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		require.NoError(rs.t, err)
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, rs.admin+path, body)
	require.NoError(rs.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	r, err := http.DefaultClient.Do(req)
	require.NoError(rs.t, err)
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, b
}

func (rs *reloadServer) apply(p *serve.Plan, destructive bool) (int, map[string]any) {
	code, b := rs.call("POST", "/apply", rs.token, map[string]any{"plan": p, "allow_destructive": destructive})
	var out map[string]any
	require.NoError(rs.t, json.Unmarshal(b, &out), "%s", b)
	return code, out
}

// post sends one order with an Idempotency-Key, again while the answer
// is 503 (not ready, busy: the client is told to retry), and returns the
// final status and body.
func post(t testing.TB, url, key, body string) (int, map[string]any) {
	for {
		req, err := http.NewRequest("POST", url, strings.NewReader(body))
		if err != nil {
			return 0, nil
		}
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("post %s: %v", key, err)
			return 0, nil
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode == http.StatusServiceUnavailable || r.StatusCode == http.StatusConflict {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		return r.StatusCode, out
	}
}

// TestHotReloadUnderLoad: 32 clients send orders while a safe plan is
// applied: every order is answered 200 once, run exactly once (the
// recorder counts runs per id), by the old flow before the switch and
// the new one after; the unchanged channel is the same instance; the
// added one serves.
func TestHotReloadUnderLoad(t *testing.T) {
	rs := startReload(t, reloadV1)
	stats, _ := rs.srv.Channel("stats")
	p := rs.plan(reloadV2)
	require.Empty(t, p.Destructive(), "%v", p.Changes)

	const clients, each = 32, 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	versions := map[string]int{}
	started := make(chan struct{})
	var once sync.Once
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				if i == 5 {
					once.Do(func() { close(started) })
				}
				id := fmt.Sprintf("c%d-%d", c, i)
				code, out := post(t, rs.base+"/orders", id, fmt.Sprintf(`{"n": %d}`, i))
				if !assert.Equal(t, 200, code, "%s: %v", id, out) {
					return
				}
				mu.Lock()
				versions[fmt.Sprint(out["version"])]++
				mu.Unlock()
			}
		})
	}
	<-started
	code, res := rs.apply(p, false)
	require.Equal(t, 200, code, "%v", res)
	assert.Equal(t, []any{"intake"}, res["replaced"])
	assert.Equal(t, []any{"audit"}, res["started"])
	assert.Contains(t, res["kept"], "stats")
	assert.FileExists(t, res["backup"].(string))
	wg.Wait()

	rs.rec.mu.Lock()
	assert.Len(t, rs.rec.runs, clients*each, "every order ran")
	for id, n := range rs.rec.runs {
		assert.Equal(t, 1, n, "order %s ran %d times", id, n)
	}
	rs.rec.mu.Unlock()
	assert.Equal(t, clients*each, versions["v1"]+versions["v2"], "%v", versions)
	assert.Positive(t, versions["v2"], "orders after the switch run the new flow: %v", versions)
	t.Logf("answers by version: %v", versions)

	code, out := post(t, rs.base+"/orders", "after", `{"n": 1}`)
	assert.Equal(t, 200, code)
	assert.Equal(t, "v2", out["version"])
	code, _ = post(t, rs.base+"/audit", "", `{}`)
	assert.Equal(t, 200, code, "the added channel serves")
	again, _ := rs.srv.Channel("stats")
	assert.Same(t, stats, again, "an unchanged channel keeps running untouched")

	ch, _ := rs.srv.Channel("intake")
	n, err := ch.Store().Count(context.Background(), store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, clients*each+1, n, "every order is recorded done once, in the one store")
	assert.Equal(t, rs.srv.RunningConfig().Fingerprint, res["fingerprint"])

	// Nothing left to apply: the same plan is now stale.
	code, res = rs.apply(p, false)
	assert.Equal(t, http.StatusConflict, code, "%v", res)
}

// TestApplyRefusesDestructiveWithoutFlag: removing a channel is
// destructive: refused without allow_destructive (nothing changes),
// applied with it (its route answers 404).
func TestApplyRefusesDestructiveWithoutFlag(t *testing.T) {
	rs := startReload(t, reloadV1)
	removed := strings.Replace(reloadV1, `  stats:
    from: {http: {listen: "127.0.0.1:0", path: /stats}}
    flow: stats
    store: memory:
`, "", 1)
	p := rs.plan(removed)
	require.Len(t, p.Destructive(), 1)
	assert.Equal(t, serve.Change{Kind: serve.Remove, What: "channel", Name: "stats", Class: serve.Destructive,
		Detail: "its sources stop taking messages (its routes are removed); messages in flight finish"}, p.Destructive()[0])

	code, res := rs.apply(p, false)
	assert.Equal(t, http.StatusUnprocessableEntity, code)
	assert.Contains(t, res["error"], "destructive")
	code, _ = post(t, rs.base+"/stats", "", `{}`)
	assert.Equal(t, 200, code, "nothing changed")

	code, res = rs.apply(p, true)
	require.Equal(t, 200, code, "%v", res)
	assert.Equal(t, []any{"stats"}, res["stopped"])
	code, _ = post(t, rs.base+"/stats", "", `{}`)
	assert.Equal(t, http.StatusNotFound, code, "the removed channel's route is gone")
	_, ok := rs.srv.Channel("stats")
	assert.False(t, ok)
	code, _ = rs.call("GET", "/readyz", "", nil)
	assert.Equal(t, 200, code)
}

// TestApplyRefusesStalePlan: two plans made against one configuration:
// the second is refused once the first is applied.
func TestApplyRefusesStalePlan(t *testing.T) {
	rs := startReload(t, reloadV1)
	a := rs.plan(reloadV2)
	b := rs.plan(strings.Replace(reloadV1, `"'v1'"`, `"'v3'"`, 1))
	code, res := rs.apply(a, false)
	require.Equal(t, 200, code, "%v", res)
	code, res = rs.apply(b, false)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, res["error"], "stale plan")
	_, out := post(t, rs.base+"/orders", "", `{"n": 1}`)
	assert.Equal(t, "v2", out["version"], "the stale plan changed nothing")
}

// TestRollbackRestoresTheOldBehaviour: apply, then roll back to the
// backup the apply wrote.
func TestRollbackRestoresTheOldBehaviour(t *testing.T) {
	rs := startReload(t, reloadV1)
	v1 := rs.srv.RunningConfig().Fingerprint
	code, res := rs.apply(rs.plan(reloadV2), false)
	require.Equal(t, 200, code, "%v", res)
	_, out := post(t, rs.base+"/orders", "", `{"n": 1}`)
	require.Equal(t, "v2", out["version"])

	code, b := rs.call("POST", "/rollback", rs.token, map[string]any{"backup": res["backup"]})
	require.Equal(t, 200, code, "%s", b)
	var rb serve.ApplyResult
	require.NoError(t, json.Unmarshal(b, &rb))
	assert.Equal(t, v1, rb.Fingerprint)
	assert.Equal(t, []string{"audit"}, rb.Stopped, "a rollback removes what the apply added")
	assert.NotEmpty(t, rb.Backup)
	_, out = post(t, rs.base+"/orders", "", `{"n": 1}`)
	assert.Equal(t, "v1", out["version"])
	code, _ = post(t, rs.base+"/audit", "", `{}`)
	assert.Equal(t, http.StatusNotFound, code)

	code, b = rs.call("POST", "/rollback", rs.token, map[string]any{"backup": "../../etc/passwd.json"})
	assert.Equal(t, http.StatusNotFound, code, "%s", b)
}

// TestApplyNeedsTheToken: apply, rollback and the configuration without
// or with a wrong token are 401.
func TestApplyNeedsTheToken(t *testing.T) {
	rs := startReload(t, reloadV1)
	p := rs.plan(reloadV2)
	for _, tok := range []string{"", "wrong", "S3CRET", "s3cre"} {
		code, _ := rs.call("POST", "/apply", tok, map[string]any{"plan": p})
		assert.Equal(t, http.StatusUnauthorized, code, "token %q", tok)
		code, _ = rs.call("POST", "/rollback", tok, map[string]any{"backup": "x.json"})
		assert.Equal(t, http.StatusUnauthorized, code, "token %q", tok)
		code, _ = rs.call("GET", "/config", tok, nil)
		assert.Equal(t, http.StatusUnauthorized, code, "token %q", tok)
	}
	_, out := post(t, rs.base+"/orders", "", `{"n": 1}`)
	assert.Equal(t, "v1", out["version"], "nothing applied")
	code, _ := rs.call("GET", "/healthz", "", nil)
	assert.Equal(t, 200, code, "reading health needs no token")
}

// TestApplyOfABrokenConfiguration: a plan whose configuration does not
// load is refused with its errors at file:line:col; nothing changes.
func TestApplyOfABrokenConfiguration(t *testing.T) {
	rs := startReload(t, reloadV1)
	p := rs.plan(strings.Replace(reloadV2, "path: /audit}}\n    flow: stats", "path: /audit}}\n    flow: nope", 1))
	code, res := rs.apply(p, false)
	assert.Equal(t, http.StatusUnprocessableEntity, code)
	require.NotEmpty(t, res["errors"], "%v", res)
	assert.Regexp(t, `serve\.yaml:\d+:\d+: .*unknown flow "nope"`, res["errors"].([]any)[0])
	_, out := post(t, rs.base+"/orders", "", `{"n": 1}`)
	assert.Equal(t, "v1", out["version"])
	code, _ = post(t, rs.base+"/audit", "", `{}`)
	assert.Equal(t, http.StatusNotFound, code)
}

// TestTokenFile: a token file is created with mode 0600 and read again;
// one others may read is refused.
func TestTokenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "admin-token")
	tok, err := serve.LoadOrCreateToken(path)
	require.NoError(t, err)
	assert.Len(t, tok, 64)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	again, err := serve.LoadOrCreateToken(path)
	require.NoError(t, err)
	assert.Equal(t, tok, again, "the file is read, not replaced")
	read, err := serve.ReadToken(path)
	require.NoError(t, err)
	assert.Equal(t, tok, read)

	require.NoError(t, os.Chmod(path, 0o644))
	_, err = serve.LoadOrCreateToken(path)
	assert.ErrorContains(t, err, "chmod 600")
}

// TestNonLoopbackAdminNeedsAToken: an admin address other machines reach
// is refused without a token.
func TestNonLoopbackAdminNeedsAToken(t *testing.T) {
	data := t.TempDir()
	cfg := load(t, strings.ReplaceAll(intake, "DATA", data))
	srv, err := serve.New(cfg, serve.Options{DataDir: data, Admin: "0.0.0.0:0"})
	require.NoError(t, err)
	defer srv.Close()
	err = srv.Listen()
	require.ErrorIs(t, err, serve.ErrAdminNotLoopback)
	assert.ErrorContains(t, err, "admin 0.0.0.0:0")

	srv2, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "0.0.0.0:0", AdminToken: "t"})
	require.NoError(t, err)
	defer srv2.Close()
	require.NoError(t, srv2.Listen())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, srv2.Run(ctx)) // releases the listeners
}

const prodV1 = `version: 1
flows:
  front:
    input: [text]
    steps:
      - set: {msg: "{message: text}"}
      - send: {target: Op, body: msg, into: answer}
      - set: {reply: "answer.my_string"}
  op:
    input: [{name: message, type: string}, settings]
    steps:
      - set: {my_string: "settings.prefix + message"}
channels:
  stats:
    from: {http: {listen: "127.0.0.1:0", path: /stats}}
    flow: op
    store: memory:
production:
  Echo:
    kind: operation
    flow: op
    settings: {prefix: "v1 "}
  Front:
    kind: service
    flow: front
    from: {http: {listen: "127.0.0.1:0", path: /echo}}
    targets: {Op: Echo}
    store: "memory:"
`

// TestApplyProductionChange: a production's change (a setting: safe)
// restarts the production in place and leaves the channels alone;
// removing a component is destructive.
func TestApplyProductionChange(t *testing.T) {
	rs := startReload(t, prodV1)
	stats, _ := rs.srv.Channel("stats")
	p := rs.plan(strings.Replace(prodV1, `prefix: "v1 "`, `prefix: "v2 "`, 1))
	require.Equal(t, []serve.Change{{Kind: serve.Modify, What: "production component", Name: "Echo", Class: serve.Safe,
		Detail: "settings: {prefix: 'v1 '} -> {prefix: 'v2 '}"}}, p.Changes)
	_, out := post(t, rs.base+"/echo", "", `{"text": "hello"}`)
	require.Equal(t, "v1 hello", out["reply"], "%v", out)

	code, res := rs.apply(p, false)
	require.Equal(t, 200, code, "%v", res)
	assert.Equal(t, "restarted", res["production"])
	assert.Equal(t, []any{"stats"}, res["kept"])
	_, out = post(t, rs.base+"/echo", "", `{"text": "hello"}`)
	assert.Equal(t, "v2 hello", out["reply"], "%v", out)
	again, _ := rs.srv.Channel("stats")
	assert.Same(t, stats, again)

	removed := strings.Replace(strings.Replace(prodV1, `prefix: "v1 "`, `prefix: "v2 "`, 1), `  Echo:
    kind: operation
    flow: op
    settings: {prefix: "v2 "}
`, "", 1)
	removed = strings.Replace(removed, "    targets: {Op: Echo}\n", "", 1)
	removed = strings.Replace(removed, "      - send: {target: Op, body: msg, into: answer}\n      - set: {reply: \"answer.my_string\"}\n", "      - set: {reply: \"'alone'\"}\n", 1)
	p = rs.plan(removed)
	require.NotEmpty(t, p.Destructive(), "%v", p.Changes)
	code, res = rs.apply(p, false)
	assert.Equal(t, http.StatusUnprocessableEntity, code, "%v", res)
	code, res = rs.apply(p, true)
	require.Equal(t, 200, code, "%v", res)
	_, out = post(t, rs.base+"/echo", "", `{"text": "hello"}`)
	assert.Equal(t, "alone", out["reply"], "%v", out)
}

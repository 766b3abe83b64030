package iop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/serve"
)

// audit is the operation the change adds.
const audit = `  Python.MyAuditOperation:
    kind: operation
    flow: my_operation
    settings: {prefix: "audited "}
`

// TestProductionChange is the production change workflow on the running
// scenario, through the admin API as flowrun plan, apply, verify and
// rollback use it: adding an operation and changing a setting is a safe
// plan, applied (the process answers with the new prefix) and verified;
// removing a component is destructive, refused without the flag; the
// rollback restores the old behaviour.
func TestProductionChange(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `[]`)
	}))
	defer crm.Close()
	listen := freeAddr(t)
	env := map[string]string{"CRM_URL": crm.URL + "/pending", "IOP_LISTEN": listen}
	original, err := os.ReadFile("iop.yaml")
	require.NoError(t, err)
	path, err := filepath.Abs("iop.yaml")
	require.NoError(t, err)
	cfg, err := config.Load([]string{path}, config.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }),
		config.WithRegistry(config.NewRegistry(config.WithLogger(logger))))
	require.NoError(t, err)
	const token = "t0ken"
	srv, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "127.0.0.1:0", Drain: 5 * time.Second, Logger: logger, AdminToken: token})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	admin := "http://" + srv.Addrs()["admin"]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	call := func(method, path string, body any) (int, []byte) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, err := http.NewRequest(method, admin+path, bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	plan := func(text string) *serve.Plan {
		t.Helper()
		code, b := call("GET", "/config", nil)
		require.Equal(t, http.StatusOK, code, "%s", b)
		var running serve.RunningConfig
		require.NoError(t, json.Unmarshal(b, &running))
		p, err := serve.NewPlan(running, serve.Files{Files: []serve.File{{Name: path, Content: text}}})
		require.NoError(t, err)
		return p
	}
	reply := func() any {
		t.Helper()
		require.Eventually(t, func() bool {
			r, err := http.Get(admin + "/readyz")
			if err != nil {
				return false
			}
			r.Body.Close()
			return r.StatusCode == http.StatusOK
		}, 10*time.Second, 10*time.Millisecond)
		code, out := post(t, "http://"+listen+"/send_message", `{"request_string": "hello"}`)
		require.Equal(t, http.StatusOK, code, "%v", out)
		return out["reply"].(map[string]any)["sync"]
	}
	require.Equal(t, echo+"hello", reply())

	// Add an operation, change a setting: safe.
	changed := strings.Replace(string(original), `settings: {prefix: "MyBusinessOperation:on_message() echos "}`, `settings: {prefix: "v2 echos "}`, 1)
	changed = strings.Replace(changed, "  Python.MyBusinessProcess:\n", audit+"  Python.MyBusinessProcess:\n", 1)
	p := plan(changed)
	require.Empty(t, p.Destructive(), "%v", p.Changes)
	require.Len(t, p.Changes, 2, "%v", p.Changes)
	assert.Equal(t, serve.Change{Kind: serve.Modify, What: "production component", Name: operation, Class: serve.Safe,
		Detail: "settings: {prefix: 'MyBusinessOperation:on_message() echos '} -> {prefix: 'v2 echos '}"}, p.Changes[1])
	assert.Equal(t, serve.Change{Kind: serve.Add, What: "production component", Name: "Python.MyAuditOperation", Class: serve.Safe}, p.Changes[0])
	code, b := call("POST", "/apply", map[string]any{"plan": p})
	require.Equal(t, http.StatusOK, code, "%s", b)
	var res serve.ApplyResult
	require.NoError(t, json.Unmarshal(b, &res))
	assert.Equal(t, "restarted", res.Production)
	assert.Equal(t, "v2 echos hello", reply())
	assert.Equal(t, p.Fingerprint, srv.RunningConfig().Fingerprint, "verified: the server runs the plan's configuration")
	assert.Contains(t, srv.Production().Components(), "Python.MyAuditOperation")

	// Remove a component: destructive.
	removed := strings.Replace(changed, audit, "", 1)
	p2 := plan(removed)
	require.Len(t, p2.Destructive(), 1)
	assert.Equal(t, "Python.MyAuditOperation", p2.Destructive()[0].Name)
	code, b = call("POST", "/apply", map[string]any{"plan": p2})
	assert.Equal(t, http.StatusUnprocessableEntity, code, "%s", b)
	assert.Contains(t, srv.Production().Components(), "Python.MyAuditOperation", "nothing changed")

	// Roll back to the original production.
	code, b = call("POST", "/rollback", map[string]any{"backup": res.Backup})
	require.Equal(t, http.StatusOK, code, "%s", b)
	assert.Equal(t, echo+"hello", reply())
	assert.NotContains(t, srv.Production().Components(), "Python.MyAuditOperation")
	assert.NotEqual(t, p.Fingerprint, srv.RunningConfig().Fingerprint)
}

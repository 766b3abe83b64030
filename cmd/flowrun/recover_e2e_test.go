package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
)

// TestRecoveryDoesNotBlockServing: flowrun serve restarted with 200 owed
// messages whose dependency hangs answers /healthz and serves new messages
// while the owed ones are run again in the background (issue 9: recovery
// ran them one at a time before anything was served).
func TestRecoveryDoesNotBlockServing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowrun")
	}
	bin := flowrunBin(t)
	release := make(chan struct{})
	dep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/owed" {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok": true}`)
	}))
	defer dep.Close()
	var once sync.Once
	releaseOnce := func() { once.Do(func() { close(release) }) }
	defer releaseOnce()

	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(data, 0o755))
	st, err := serve.OpenStore(nil, "sqlite:"+filepath.Join(data, "c.db"))
	require.NoError(t, err)
	const owed = 200
	for i := range owed {
		m := message.New("application/json", []byte(`{"kind": "owed"}`), nil)
		m.ID = fmt.Sprintf("owed-%03d", i)
		require.NoError(t, st.Begin(context.Background(), m)) // left processing, as by a crash
	}
	require.NoError(t, st.Close())

	addr, admin := freeAddr(t), freeAddr(t)
	file := filepath.Join(dir, "c.yaml")
	require.NoError(t, os.WriteFile(file, []byte(strings.NewReplacer("ADDR", addr, "DEP", dep.URL).Replace(`version: 1
vars:
  dep: DEP
flows:
  call:
    input: [kind]
    steps:
      - http: {url: '{{var "dep"}}/{{.kind}}', timeout: 1h, into: dep}
channels:
  c:
    from: {http: {listen: "ADDR", path: /in}}
    flow: call
    max_in_flight: 16
`)), 0o644))
	c := startServe(t, bin, file, "--data", data, "--admin", admin, "--drain", "1s")
	require.Eventually(t, func() bool {
		r, err := http.Get("http://" + admin + "/healthz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	}, 30*time.Second, 10*time.Millisecond, "log:\n%s", c.logText())
	c.listening(t, addr)
	for i := range 5 {
		a := postKey("http://"+addr+"/in", fmt.Sprintf("new-%d", i), `{"kind": "new"}`)
		require.NoError(t, a.err)
		assert.Equal(t, 200, a.code, "a new message is served while the owed ones hang: %v", a.body)
	}
	// The dependency comes back: recovery finishes, readiness says so.
	releaseOnce()
	require.Eventually(t, func() bool {
		r, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		defer r.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(r.Body).Decode(&out)
		return r.StatusCode == 200 && out["recovering"] == nil
	}, 60*time.Second, 20*time.Millisecond)
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, c.exit(t), "log:\n%s", c.logText())

	st2 := openStore(t, data)
	n, err := st2.Count(context.Background(), store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, owed+5, n, "every owed message and every new one is done: none lost")
}

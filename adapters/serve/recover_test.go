package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
)

// hanging is a dependency that never answers requests for owed messages
// (until released) and answers the others at once.
type hanging struct {
	release chan struct{}
	once    sync.Once
}

func (h *hanging) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	if r.URL.Path == "/owed" {
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok": true}`)
}

func (h *hanging) stop() { h.once.Do(func() { close(h.release) }) }

const recovering = `version: 1
flows:
  call:
    input: [kind]
    steps:
      - http: {url: '{{var "dep"}}/{{.kind}}', timeout: 1h, into: dep}
channels:
  c:
    from: {http: {listen: "127.0.0.1:0", path: /in}}
    flow: call
    store: sqlite:DATA/c.db
    max_in_flight: 8
vars:
  dep: DEP
`

// TestRecoveryInBackground: 200 owed messages against a dependency that
// hangs. The admin /healthz answers at once, /readyz says the channel is
// recovering, and new messages are served meanwhile; beyond max_in_flight
// requests get 503 with Retry-After.
func TestRecoveryInBackground(t *testing.T) {
	dep := &hanging{release: make(chan struct{})}
	ds := httptest.NewServer(dep)
	defer ds.Close()
	defer dep.stop()
	defer http.DefaultClient.CloseIdleConnections()

	data := t.TempDir()
	st, err := serve.OpenStore(nil, "sqlite:"+filepath.Join(data, "c.db"))
	require.NoError(t, err)
	const owed = 200
	for i := range owed {
		m := message.New("application/json", []byte(`{"kind": "owed"}`), nil)
		m.ID = fmt.Sprintf("owed-%03d", i)
		require.NoError(t, st.Begin(t.Context(), m))
	}
	require.NoError(t, st.Close())

	text := strings.NewReplacer("DATA", data, "DEP", ds.URL).Replace(recovering)
	srv, err := serve.New(load(t, text), serve.Options{DataDir: data, Admin: "127.0.0.1:0", Drain: time.Second})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	addrs := srv.Addrs()
	admin, base := "http://"+addrs["admin"], "http://"+addrs["http 127.0.0.1:0"]
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := time.Now()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()

	client := &http.Client{Timeout: 30 * time.Second}
	get := func(url string) (int, map[string]any) {
		r, err := client.Get(url)
		require.NoError(t, err)
		defer r.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&out))
		return r.StatusCode, out
	}
	code, _ := get(admin + "/healthz")
	assert.Equal(t, 200, code)
	assert.Less(t, time.Since(started), time.Second, "/healthz answers within 1 s of start")

	var ready map[string]any
	require.Eventually(t, func() bool {
		code, ready = get(admin + "/readyz")
		return code == 200
	}, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, []any{"c"}, ready["recovering"], "ready, and recovering: %v", ready)

	post := func(kind string) *http.Response {
		r, err := client.Post(base+"/in", "application/json", strings.NewReader(`{"kind": "`+kind+`"}`))
		require.NoError(t, err)
		return r
	}
	for range 20 {
		r := post("new")
		var out map[string]any
		require.NoError(t, json.NewDecoder(r.Body).Decode(&out))
		r.Body.Close()
		require.Equal(t, 200, r.StatusCode, "served while recovering: %v", out)
		assert.Equal(t, map[string]any{"ok": true}, out["dep"])
	}
	r0, err := client.Get(admin + "/metrics")
	require.NoError(t, err)
	metricsText, _ := io.ReadAll(r0.Body)
	r0.Body.Close()
	assert.Regexp(t, `svcflow_messages_recovering\{channel="c"\} (19\d|200)\n`, string(metricsText))
	ch, _ := srv.Channel("c")
	assert.Greater(t, ch.Status().Recovering, int64(owed-10), "recovery is stuck on the dependency meanwhile")

	// Recovery holds 4 of the 8 slots; 4 new hanging requests take the
	// rest, and the next one is refused at once.
	var hung sync.WaitGroup
	for range 4 {
		hung.Go(func() {
			r, err := client.Post(base+"/in", "application/json", strings.NewReader(`{"kind": "owed"}`))
			if err == nil {
				r.Body.Close()
			}
		})
	}
	require.Eventually(t, func() bool { return ch.Status().InFlight == 8 }, 10*time.Second, 10*time.Millisecond)
	r := post("new")
	r.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode)
	assert.Equal(t, "1", r.Header.Get("Retry-After"))

	cancel() // the drain times out; the hanging runs are left owed
	assert.ErrorIs(t, <-done, context.DeadlineExceeded, "the drain timed out")
	hung.Wait()

	st, err = serve.OpenStore(nil, "sqlite:"+filepath.Join(data, "c.db"))
	require.NoError(t, err)
	defer st.Close()
	n, err := st.Count(t.Context(), store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, 20, n, "the new messages")
	n, err = st.Count(t.Context(), store.Query{States: []store.State{store.Pending, store.Processing}})
	require.NoError(t, err)
	assert.Equal(t, owed+4, n, "the owed messages are still owed")
}

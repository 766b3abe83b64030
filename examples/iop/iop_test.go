// Package iop_test runs the interoperability scenario of iop.yaml as
// flowrun serve runs it, asserting each step: a business service
// answering HTTP requests, a polling business service reading a CRM, a
// process making one sync call, two async calls with completion keys and
// a multi-request, an operation with settings; and the Director reaching
// the business service from an HTTP handler of the test's own, as the
// seed's Flask example does.
package iop_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	_ "github.com/svcflow/svcflow/adapters/component/all" // the sources, stores and steps flowrun links
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/production"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/errors"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	operation = "Python.MyBusinessOperation"
	process   = "Python.MyBusinessProcess"
	service   = "Python.MyBusinessService"
	poller    = "Python.MyPollingService"
	echo      = "MyBusinessOperation:on_message() echos "
)

// sends captures the production's sends.
type sends struct {
	mu   sync.Mutex
	all  []production.Send
	sent chan string // the sender of each send, as it ends
}

func (s *sends) add(x production.Send) {
	s.mu.Lock()
	s.all = append(s.all, x)
	s.mu.Unlock()
	s.sent <- x.From
}

func (s *sends) take() []production.Send {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.all
	s.all = nil
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp.StatusCode, out
}

func TestScenario(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The CRM the polling service reads: one pending order, then none.
	polled := make(chan struct{}, 10)
	var pollMu sync.Mutex
	pending := `[{"order_id": 7}]`
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pollMu.Lock()
		body := pending
		pending = `[]`
		pollMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
		polled <- struct{}{}
	}))
	defer crm.Close()

	listen := freeAddr(t)
	env := map[string]string{"CRM_URL": crm.URL + "/pending", "IOP_LISTEN": listen}
	cfg, err := config.Load([]string{"iop.yaml"}, config.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }),
		config.WithRegistry(config.NewRegistry(config.WithLogger(logger))))
	require.NoError(t, err)
	srv, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "off", Drain: 5 * time.Second, Logger: logger})
	require.NoError(t, err)
	prod := srv.Production()
	require.NotNil(t, prod)
	assert.Equal(t, []string{operation, process, service, poller}, prod.Components())
	got := &sends{sent: make(chan string, 100)}
	require.NoError(t, prod.Observe(got.add))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	// 1. The polling business service polled the CRM at start and sent the
	// pending order to the operation.
	select {
	case <-polled:
	case <-time.After(30 * time.Second):
		t.Fatal("the polling service never polled the CRM")
	}
	select {
	case from := <-got.sent:
		require.Equal(t, poller, from)
	case <-time.After(30 * time.Second):
		t.Fatal("the polling service never sent the order")
	}
	polledSends := got.take()
	require.Len(t, polledSends, 1, "the order was sent once")
	assert.Equal(t, production.Send{From: poller, Target: operation, Component: operation, Mode: production.Sync,
		Request:  map[string]any{"message": "order 7"},
		Response: map[string]any{"message": "order 7", "my_string": echo + "order 7"}, Status: errors.KindOK},
		withoutDuration(polledSends[0]))

	// 2. An HTTP request to the business service: the process makes one
	// sync call, two async calls with completion keys, a multi-request.
	code, out := post(t, "http://"+listen+"/send_message", `{"request_string": "hello"}`)
	require.Equal(t, http.StatusOK, code, "%v", out)
	assert.Equal(t, map[string]any{
		"sync":      echo + "hello",
		"async_one": echo + "Message1",
		"async_two": echo + "Message2",
		"multi":     []any{echo + "Message1", echo + "Message2"},
		"statuses":  []any{"ok", "ok"},
	}, out["reply"])
	responses := out["answer"].(map[string]any)["responses"].(map[string]any)
	assert.Equal(t, map[string]any{"target": "Operation", "component": operation, "key": "1", "status": "ok",
		"response": map[string]any{"message": "Message1", "my_string": echo + "Message1"}}, responses["1"])

	drain(got.sent)
	all := got.take()
	require.Len(t, all, 6, "service -> process, and five calls of the process")
	last := all[len(all)-1]
	assert.Equal(t, service, last.From, "the service's send ends last")
	assert.Equal(t, "Process", last.Target)
	assert.Equal(t, process, last.Component)
	byMode := map[production.Mode][]production.Send{}
	for _, s := range all[:5] {
		assert.Equal(t, process, s.From)
		assert.Equal(t, operation, s.Component)
		byMode[s.Mode] = append(byMode[s.Mode], s)
	}
	require.Len(t, byMode[production.Sync], 1)
	assert.Equal(t, map[string]any{"message": "hello"}, byMode[production.Sync][0].Request)
	require.Len(t, byMode[production.Async], 2)
	keys := map[string]string{}
	for _, s := range byMode[production.Async] {
		keys[s.Key] = s.Request["message"].(string)
	}
	assert.Equal(t, map[string]string{"1": "Message1", "2": "Message2"}, keys)
	require.Len(t, byMode[production.Multi], 2)

	// 3. A rejection in the operation: the process stops with its
	// reason, and the service answers 422.
	code, out = post(t, "http://"+listen+"/send_message", `{"request_string": "fail"}`)
	assert.Equal(t, http.StatusUnprocessableEntity, code)
	assert.Equal(t, "the operation refuses fail", out["error"])
	drain(got.sent)
	fails := got.take()
	require.Len(t, fails, 2)
	assert.Equal(t, errors.KindStop, fails[0].Status)
	assert.Equal(t, errors.KindStop, fails[1].Status, "the process's Stop reached the service")

	// 4. The Director: an HTTP handler of our own (the seed's Flask app)
	// reaches the business service by name.
	director := prod.Director()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg map[string]any
		_ = json.NewDecoder(r.Body).Decode(&msg)
		bs, err := director.Service(service)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		resp, err := bs.ProcessInput(r.Context(), msg)
		if err != nil {
			http.Error(w, `{"error": "rejected"}`, http.StatusUnprocessableEntity)
			return
		}
		_ = json.NewEncoder(w).Encode(resp["reply"])
	}))
	defer app.Close()
	code, out = post(t, app.URL+"/send_message", `{"request_string": "via director"}`)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, echo+"via director", out["sync"])
	drain(got.sent)
	assert.Len(t, got.take(), 6)

	// Every component runs; the operation ran 1 + 5 + 1 + 5 times.
	for _, st := range prod.Status() {
		assert.Equal(t, "running", st.State, st.Name)
		if st.Name == operation {
			assert.Equal(t, int64(12), st.Processed)
			assert.Equal(t, int64(1), st.Rejected)
		}
	}
}

func withoutDuration(s production.Send) production.Send {
	s.Duration = 0
	return s
}

// drain empties the notifications of sends that ended (the sends of a
// request all ended when its answer came).
func drain(c chan string) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

package httpsource_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/httpsource"
	"github.com/svcflow/svcflow/adapters/message"
	flowerrors "github.com/svcflow/svcflow/errors"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// quietLogger discards logs below Error.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testServer is a Server serving on 127.0.0.1:0 for one test.
type testServer struct {
	*httpsource.Server
	base   string
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

// startServer serves srv on a fresh local port until the test ends.
func startServer(t *testing.T, cfg httpsource.Config) *testServer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	srv := httpsource.NewServer(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{
		Server: srv,
		base:   "http://" + ln.Addr().String(),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	done := ts.done
	go func() { done <- srv.ServeListener(ctx, ln) }()
	t.Cleanup(func() {
		// Close the client's spare connections first: the server's
		// shutdown waits up to 5s for connections that never sent a
		// request.
		ts.client.CloseIdleConnections()
		ts.stop(t)
	})
	return ts
}

// stop shuts the server down and checks that Serve returned nil; calling
// it again is a no-op.
func (ts *testServer) stop(t *testing.T) {
	t.Helper()
	ts.cancel()
	if ts.done == nil {
		return
	}
	require.NoError(t, <-ts.done)
	ts.done = nil
}

// run runs src with h until the test ends (or the returned stop is
// called, which waits for Run to return).
func run(t *testing.T, src channel.Source, h channel.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitReady waits until every route of ts has a running handler.
func (ts *testServer) waitReady(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, ts.WaitReady(ctx))
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request and decodes the JSON answer.
func (ts *testServer) do(t *testing.T, method, path, contentType, body string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, ts.base+path, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	resp, err := ts.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"), "body %s", raw)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m), "body %s", raw)
	return response{status: resp.StatusCode, header: resp.Header, body: m, raw: string(raw)}
}

// echo answers every message with its payload as the output context
// plus the message ID.
func echo(_ context.Context, m *message.Message) channel.Result {
	out := map[string]any{"id": m.ID}
	if len(m.Payload) > 0 {
		if err := json.Unmarshal(m.Payload, &out); err != nil {
			return channel.Result{Settle: channel.Fail, State: "error", Err: err, ErrorID: "bad-payload"}
		}
		out["id"] = m.ID
	}
	done := m.Clone()
	done.Context = out
	return channel.Result{Settle: channel.Ack, State: "done", Message: done}
}

func TestResultMapping(t *testing.T) {
	ts := startServer(t, httpsource.Config{})
	src, err := ts.Route("POST", "/in")
	require.NoError(t, err)
	secret := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	run(t, src, channel.HandlerFunc(func(ctx context.Context, m *message.Message) channel.Result {
		switch m.Meta["http.query.case"] {
		case "done":
			return echo(ctx, m)
		case "done-nil":
			return channel.Result{Settle: channel.Ack, State: "done"}
		case "rejected":
			return channel.Result{Settle: channel.Ack, Outcome: flowerrors.KindStop, State: "rejected", Err: fmt.Errorf("step check: %w", flowerrors.Stop("no items"))}
		case "nack":
			return channel.Result{Settle: channel.Nack, State: "error", Err: secret, RetryAfter: 1500 * time.Millisecond}
		case "nack0":
			return channel.Result{Settle: channel.Nack, State: "error", Err: secret}
		case "fail":
			return channel.Result{Settle: channel.Fail, State: "error", Err: secret, ErrorID: "E-42"}
		case "fail-noid":
			return channel.Result{Settle: channel.Fail, State: "error", Err: secret}
		case "leave":
			return channel.Result{Settle: channel.Leave, State: "processing", Err: context.Canceled}
		case "panic":
			panic(secret)
		}
		return channel.Result{Settle: channel.Settle(99)}
	}))
	ts.waitReady(t)

	body := `{"order":42}`
	tests := []struct {
		name       string
		status     int
		retryAfter string
		want       map[string]any // expected body, "<id>" replaced by the message ID
		errorID    bool           // body has a non-empty error_id besides want
	}{
		{"done", 200, "", map[string]any{"order": 42.0, "id": "<id>"}, false},
		{"done-nil", 200, "", map[string]any{}, false},
		{"rejected", 422, "", map[string]any{"error": "no items", "id": "<id>"}, false},
		{"nack", 503, "2", map[string]any{"error": "temporarily unavailable", "id": "<id>"}, false},
		{"nack0", 503, "1", map[string]any{"error": "temporarily unavailable", "id": "<id>"}, false},
		{"fail", 500, "", map[string]any{"error": "internal error", "error_id": "E-42", "id": "<id>"}, false},
		{"fail-noid", 500, "", map[string]any{"error": "internal error", "id": "<id>"}, true},
		{"leave", 503, "", map[string]any{"error": "not processed, retry", "id": "<id>"}, false},
		{"panic", 500, "", map[string]any{"error": "internal error", "id": "<id>"}, true},
		{"unknown-settle", 500, "", map[string]any{"error": "internal error", "id": "<id>"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do(t, "POST", "/in?case="+tt.name, "application/json", body)
			require.Equal(t, tt.status, resp.status, resp.raw)
			id := resp.header.Get("X-Message-Id")
			require.NotEmpty(t, id)
			assert.Equal(t, tt.retryAfter, resp.header.Get("Retry-After"))
			got := resp.body
			if tt.errorID {
				assert.NotEmpty(t, got["error_id"])
				delete(got, "error_id")
			}
			want := map[string]any{}
			for k, v := range tt.want {
				if v == "<id>" {
					v = id
				}
				want[k] = v
			}
			assert.Equal(t, want, got)
			assert.NotContains(t, resp.raw, "10.0.0.7", "internal error text leaked")
			assert.NotContains(t, resp.raw, "goroutine", "stack leaked")
		})
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	ts := startServer(t, httpsource.Config{})
	for _, m := range []string{"POST", "get"} {
		src, err := ts.Route(m, "/orders")
		require.NoError(t, err)
		run(t, src, channel.HandlerFunc(echo))
	}
	ts.waitReady(t)

	resp := ts.do(t, "GET", "/nope", "", "")
	assert.Equal(t, 404, resp.status)
	assert.Equal(t, map[string]any{"error": "not found"}, resp.body)

	resp = ts.do(t, "DELETE", "/orders", "", "")
	assert.Equal(t, 405, resp.status)
	assert.Equal(t, "GET, POST", resp.header.Get("Allow"))
	assert.Equal(t, map[string]any{"error": "method not allowed"}, resp.body)

	resp = ts.do(t, "POST", "/healthz", "", "")
	assert.Equal(t, 405, resp.status)
	assert.Equal(t, "GET, HEAD", resp.header.Get("Allow"))

	resp = ts.do(t, "GET", "/orders", "", "")
	assert.Equal(t, 200, resp.status, resp.raw)
}

func TestAnyMethodRoute(t *testing.T) {
	ts := startServer(t, httpsource.Config{})
	anySrc, err := ts.Route("*", "/hook")
	require.NoError(t, err)
	postSrc, err := ts.Route("POST", "/hook")
	require.NoError(t, err)
	run(t, anySrc, channel.HandlerFunc(func(context.Context, *message.Message) channel.Result {
		return channel.Result{Settle: channel.Ack, State: "done", Message: &message.Message{Context: map[string]any{"by": "any"}}}
	}))
	run(t, postSrc, channel.HandlerFunc(func(context.Context, *message.Message) channel.Result {
		return channel.Result{Settle: channel.Ack, State: "done", Message: &message.Message{Context: map[string]any{"by": "post"}}}
	}))
	ts.waitReady(t)
	assert.Equal(t, "post", ts.do(t, "POST", "/hook", "", "").body["by"])
	assert.Equal(t, "any", ts.do(t, "PUT", "/hook", "", "").body["by"])
}

func TestRouteErrors(t *testing.T) {
	srv := httpsource.NewServer(httpsource.Config{Logger: quietLogger()})
	_, err := srv.Route("POST", "/orders")
	require.NoError(t, err)
	_, err = srv.Route("post", "/orders")
	require.ErrorIs(t, err, httpsource.ErrDuplicateRoute)
	assert.ErrorContains(t, err, "POST /orders")

	for _, tt := range []struct{ method, path, want string }{
		{"POST", "orders", "must begin with /"},
		{"POST", "/a?b", "must not contain a query"},
		{"GET", "/healthz", "reserved"},
		{"GET", "/readyz", "reserved"},
		{"GE T", "/x", "not an HTTP token"},
	} {
		_, err := srv.Route(tt.method, tt.path)
		require.ErrorIs(t, err, httpsource.ErrInvalidRoute, tt.path)
		assert.ErrorContains(t, err, tt.want)
	}
	_, err = srv.Route("POST", "/x", httpsource.WithMaxBodyBytes(0))
	require.ErrorIs(t, err, httpsource.ErrInvalidRoute)
}

func TestRunTwice(t *testing.T) {
	srv := httpsource.NewServer(httpsource.Config{Logger: quietLogger()})
	src, err := srv.Route("POST", "/in", httpsource.WithName("orders endpoint"))
	require.NoError(t, err)
	assert.Equal(t, "orders endpoint", src.Name())
	run(t, src, channel.HandlerFunc(echo))
	require.NoError(t, srv.WaitReady(context.Background()))
	err = src.Run(context.Background(), channel.HandlerFunc(echo))
	require.ErrorIs(t, err, httpsource.ErrRunning)
	assert.ErrorContains(t, err, "orders endpoint")
}

func TestReadiness(t *testing.T) {
	ts := startServer(t, httpsource.Config{})
	a, err := ts.Route("POST", "/a")
	require.NoError(t, err)
	b, err := ts.Route("POST", "/b")
	require.NoError(t, err)
	assert.Equal(t, "http POST /a", a.Name())

	health := ts.do(t, "GET", "/healthz", "", "")
	assert.Equal(t, 200, health.status)
	assert.Equal(t, map[string]any{"status": "ok"}, health.body)

	ready := ts.do(t, "GET", "/readyz", "", "")
	assert.Equal(t, 503, ready.status)
	assert.Equal(t, []any{"POST /a", "POST /b"}, ready.body["not_ready"])

	notReady := ts.do(t, "POST", "/a", "application/json", `{}`)
	assert.Equal(t, 503, notReady.status)
	assert.Equal(t, "not ready", notReady.body["error"])
	assert.Equal(t, "1", notReady.header.Get("Retry-After"), "a client may retry in a second")

	stopA := run(t, a, channel.HandlerFunc(echo))
	ready = ts.do(t, "GET", "/readyz", "", "")
	assert.Equal(t, 503, ready.status)
	run(t, b, channel.HandlerFunc(echo))
	ts.waitReady(t)
	ready = ts.do(t, "GET", "/readyz", "", "")
	assert.Equal(t, 200, ready.status)
	assert.Equal(t, map[string]any{"status": "ready"}, ready.body)
	assert.Equal(t, 200, ts.do(t, "POST", "/a", "application/json", `{}`).status)

	stopA() // returns once Run returned
	ready = ts.do(t, "GET", "/readyz", "", "")
	assert.Equal(t, 503, ready.status)
	assert.Equal(t, []any{"POST /a"}, ready.body["not_ready"])
	assert.Equal(t, 503, ts.do(t, "POST", "/a", "application/json", `{}`).status)
	assert.Equal(t, 200, ts.do(t, "GET", "/healthz", "", "").status)

	// A source can run again after it stopped.
	run(t, a, channel.HandlerFunc(echo))
	ts.waitReady(t)
	assert.Equal(t, 200, ts.do(t, "POST", "/a", "application/json", `{}`).status)
}

func TestBodyTooLarge(t *testing.T) {
	ts := startServer(t, httpsource.Config{MaxBodyBytes: 64})
	var calls atomic.Int32
	src, err := ts.Route("POST", "/in")
	require.NoError(t, err)
	small, err := ts.Route("POST", "/small", httpsource.WithMaxBodyBytes(8))
	require.NoError(t, err)
	h := channel.HandlerFunc(func(ctx context.Context, m *message.Message) channel.Result {
		calls.Add(1)
		return echo(ctx, m)
	})
	run(t, src, h)
	run(t, small, h)
	ts.waitReady(t)

	big := `{"a":"` + strings.Repeat("x", 100) + `"}`
	resp := ts.do(t, "POST", "/in", "application/json", big) // with Content-Length
	assert.Equal(t, 413, resp.status)
	assert.Equal(t, "body: larger than 64 bytes", resp.body["error"])
	assert.NotEmpty(t, resp.body["id"])

	// Without Content-Length (chunked), the limit applies while reading.
	req, err := http.NewRequest("POST", ts.base+"/in", io.MultiReader(strings.NewReader(big))) // length unknown
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	r, err := ts.client.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	assert.Equal(t, 413, r.StatusCode)

	assert.Equal(t, 413, ts.do(t, "POST", "/small", "application/json", `{"a":"123"}`).status)
	assert.Equal(t, 200, ts.do(t, "POST", "/in", "application/json", `{"a":"123"}`).status)
	assert.Equal(t, int32(1), calls.Load())
}

func TestMalformedBody(t *testing.T) {
	ts := startServer(t, httpsource.Config{})
	var calls atomic.Int32
	src, err := ts.Route("POST", "/in")
	require.NoError(t, err)
	run(t, src, channel.HandlerFunc(func(ctx context.Context, m *message.Message) channel.Result {
		calls.Add(1)
		return echo(ctx, m)
	}))
	ts.waitReady(t)

	for _, tt := range []struct{ ct, body, want string }{
		{"application/json", `{"a":`, "body: invalid JSON at offset 5: unexpected end of JSON input"},
		{"application/json", `{"a" 1}`, "body: invalid JSON at offset 6: invalid character '1' after object key"},
		{"application/json; charset=utf-8", `{"a":1} {}`, "body: invalid JSON at offset 9: invalid character '{' after top-level value"},
		{"application/json", ``, "body: empty, want a JSON object"},
		{"application/json", `  `, "body: empty, want a JSON object"},
		{"application/json", `[1,2]`, "body: JSON array, want an object"},
		{"application/vnd.api+json", `"x"`, "body: JSON string, want an object"},
		{"application/json", `42`, "body: JSON number, want an object"},
		{"application/json", `null`, "body: JSON null, want an object"},
		{"application/json", `true`, "body: JSON boolean, want an object"},
		{"application/json;;", `{}`, `Content-Type: invalid media type "application/json;;"`},
		// A body the channel would read as JSON is checked whatever the
		// header says (curl -d sends form-urlencoded).
		{"application/x-www-form-urlencoded", `{"a":`, "body: invalid JSON at offset 5: unexpected end of JSON input"},
		{"", `{"items": [1,}`, "body: invalid JSON at offset 14: invalid character '}' looking for beginning of value"},
		{"text/plain", `{} x`, "body: invalid JSON at offset 4: invalid character 'x' after top-level value"},
	} {
		resp := ts.do(t, "POST", "/in", tt.ct, tt.body)
		assert.Equal(t, 400, resp.status, tt.body)
		assert.Equal(t, tt.want, resp.body["error"], tt.body)
	}
	assert.Zero(t, calls.Load())
}

func TestMessageFromRequest(t *testing.T) {
	ts := startServer(t, httpsource.Config{})
	src, err := ts.Route("PUT", "/docs", httpsource.WithHeaders("X-Tenant"))
	require.NoError(t, err)
	got := make(chan *message.Message, 1)
	run(t, src, channel.HandlerFunc(func(_ context.Context, m *message.Message) channel.Result {
		got <- m
		return channel.Result{Settle: channel.Ack, State: "done"}
	}))
	ts.waitReady(t)

	resp := ts.do(t, "PUT", "/docs?lang=en&tag=a&tag=b", "text/plain; charset=utf-8", "hello",
		"X-Tenant", "acme", "X-Request-Id", "r-1", "Authorization", "Bearer secret")
	require.Equal(t, 200, resp.status)
	m := <-got
	assert.Equal(t, resp.header.Get("X-Message-Id"), m.ID)
	assert.Equal(t, "text/plain; charset=utf-8", m.ContentType)
	assert.Equal(t, "hello", string(m.Payload))
	assert.False(t, m.Time.IsZero())
	assert.NotEmpty(t, m.Meta["http.remote"])
	delete(m.Meta, "http.remote")
	assert.Equal(t, map[string]string{
		"http.method":              "PUT",
		"http.path":                "/docs",
		"http.query.lang":          "en",
		"http.query.tag":           "a,b",
		"http.header.x-tenant":     "acme",
		"http.header.x-request-id": "r-1",
		"http.header.user-agent":   "Go-http-client/1.1",
	}, m.Meta)

	// A body without a content type is opaque bytes; no body, no payload.
	ts.do(t, "PUT", "/docs", "", "\x00\x01")
	m = <-got
	assert.Equal(t, "application/octet-stream", m.ContentType)
	ts.do(t, "PUT", "/docs", "", "")
	m = <-got
	assert.Empty(t, m.ContentType)
	assert.Nil(t, m.Payload)
}

func TestIdempotencyKey(t *testing.T) {
	ts := startServer(t, httpsource.Config{})
	src, err := ts.Route("POST", "/in")
	require.NoError(t, err)
	run(t, src, channel.HandlerFunc(echo))
	ts.waitReady(t)

	resp := ts.do(t, "POST", "/in", "application/json", `{}`, "Idempotency-Key", "order-42/try 1")
	require.Equal(t, 200, resp.status)
	assert.Equal(t, "order-42/try 1", resp.header.Get("X-Message-Id"))
	assert.Equal(t, "order-42/try 1", resp.body["id"])

	resp = ts.do(t, "POST", "/in", "application/json", `{}`, "Idempotency-Key", strings.Repeat("k", 200))
	assert.Equal(t, 200, resp.status)

	for name, values := range map[string][]string{
		"too long":  {strings.Repeat("k", 201)},
		"empty":     {""},
		"twice":     {"a", "b"},
		"non-ascii": {"clé"},
	} {
		header := []string{}
		for _, v := range values {
			header = append(header, "Idempotency-Key", v)
		}
		resp := ts.do(t, "POST", "/in", "application/json", `{}`, header...)
		assert.Equal(t, 400, resp.status, name)
		assert.Equal(t, "Idempotency-Key: want one value of 1 to 200 printable ASCII characters", resp.body["error"], name)
	}

	// Without a key every request gets a fresh UUID.
	a := ts.do(t, "POST", "/in", "application/json", `{}`).header.Get("X-Message-Id")
	b := ts.do(t, "POST", "/in", "application/json", `{}`).header.Get("X-Message-Id")
	assert.Len(t, a, 36)
	assert.NotEqual(t, a, b)
}

func TestSlowBodyTimesOut(t *testing.T) {
	ts := startServer(t, httpsource.Config{ReadTimeout: 300 * time.Millisecond})
	var calls atomic.Int32
	src, err := ts.Route("POST", "/in")
	require.NoError(t, err)
	run(t, src, channel.HandlerFunc(func(ctx context.Context, m *message.Message) channel.Result {
		calls.Add(1)
		return echo(ctx, m)
	}))
	ts.waitReady(t)

	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "POST /in HTTP/1.1\r\nHost: test\r\n"+
		"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
	require.NoError(t, err)
	// Send nothing more: the server must close the connection on its own.
	// The deadline only keeps a broken server from hanging the test.
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	got, err := io.ReadAll(conn)
	if err != nil {
		var ne net.Error
		require.False(t, errors.As(err, &ne) && ne.Timeout(), "server kept the stalled connection open")
	}
	if len(got) > 0 { // the server may answer before closing
		assert.True(t, strings.HasPrefix(string(got), "HTTP/1.1 408"), "%s", got)
	}
	assert.Zero(t, calls.Load(), "handler called for a request whose body never arrived")
}

func TestConcurrentClients(t *testing.T) {
	ts := startServer(t, httpsource.Config{})
	src, err := ts.Route("POST", "/in")
	require.NoError(t, err)
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	run(t, src, channel.HandlerFunc(func(ctx context.Context, m *message.Message) channel.Result {
		mu.Lock()
		seen[m.ID]++
		mu.Unlock()
		return echo(ctx, m)
	}))
	ts.waitReady(t)

	const workers, perWorker = 50, 20
	type outcome struct {
		status   int
		headerID string
		bodyID   string
		n        float64
		err      error
	}
	results := make(chan outcome, workers*perWorker)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				n := w*perWorker + i
				resp, err := ts.client.Post(ts.base+"/in", "application/json", strings.NewReader(fmt.Sprintf(`{"n":%d}`, n)))
				if err != nil {
					results <- outcome{err: err}
					continue
				}
				var body map[string]any
				err = json.NewDecoder(resp.Body).Decode(&body)
				_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
				resp.Body.Close()
				id, _ := body["id"].(string)
				num, _ := body["n"].(float64)
				results <- outcome{status: resp.StatusCode, headerID: resp.Header.Get("X-Message-Id"), bodyID: id, n: num, err: err}
				if float64(n) != num {
					results <- outcome{err: fmt.Errorf("request %d answered with n=%v", n, num)}
				}
			}
		})
	}
	wg.Wait()
	close(results)
	ids := map[string]bool{}
	for r := range results {
		require.NoError(t, r.err)
		require.Equal(t, 200, r.status)
		require.Equal(t, r.headerID, r.bodyID)
		ids[r.headerID] = true
	}
	assert.Len(t, ids, workers*perWorker)
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, seen, workers*perWorker, "distinct message IDs seen by the handler")
	for id, n := range seen {
		require.Equal(t, 1, n, "message %s handled %d times", id, n)
		require.True(t, ids[id])
	}
}

func TestGracefulShutdown(t *testing.T) {
	ts := startServer(t, httpsource.Config{})
	src, err := ts.Route("POST", "/slow")
	require.NoError(t, err)
	entered, release := make(chan struct{}), make(chan struct{})
	run(t, src, channel.HandlerFunc(func(ctx context.Context, m *message.Message) channel.Result {
		close(entered)
		<-release
		return echo(ctx, m)
	}))
	ts.waitReady(t)

	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := ts.client.Post(ts.base+"/slow", "application/json", strings.NewReader(`{"x":1}`))
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- answer{resp.StatusCode, string(b), err}
	}()
	<-entered

	served := make(chan error, 1)
	done := ts.done
	ts.done = nil // this test waits for Serve itself
	ts.cancel()
	go func() { served <- <-done }()

	// New connections are refused once the shutdown has begun...
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", strings.TrimPrefix(ts.base, "http://"))
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 10*time.Second, 5*time.Millisecond)
	// ...while Serve still waits for the request in flight.
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case a := <-answered:
		t.Fatalf("request answered before release: %+v", a)
	default:
	}

	close(release)
	a := <-answered
	require.NoError(t, a.err)
	assert.Equal(t, 200, a.status)
	assert.JSONEq(t, `{"x":1,"id":"`+gjsonID(t, a.body)+`"}`, a.body)
	require.NoError(t, <-served)
}

// gjsonID returns the "id" field of a JSON object.
func gjsonID(t *testing.T, body string) string {
	t.Helper()
	var m struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(body), &m))
	return m.ID
}

func TestServeErrors(t *testing.T) {
	srv := httpsource.NewServer(httpsource.Config{Addr: "127.0.0.1:0", Logger: quietLogger()})
	assert.Empty(t, srv.Addr())
	require.NoError(t, srv.Listen())
	addr := srv.Addr()
	require.NotEmpty(t, addr)
	assert.NotEqual(t, "127.0.0.1:0", addr)

	// Another server cannot take the same address.
	other := httpsource.NewServer(httpsource.Config{Addr: addr, Logger: quietLogger()})
	err := other.Serve(context.Background())
	require.Error(t, err)
	assert.ErrorContains(t, err, "listen "+addr)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, 10*time.Second, 5*time.Millisecond)
	err = srv.Serve(ctx)
	require.ErrorIs(t, err, httpsource.ErrServing)
	cancel()
	require.NoError(t, <-done)
	http.DefaultClient.CloseIdleConnections()
}

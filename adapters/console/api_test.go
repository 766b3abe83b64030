package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/console"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

const token = "s3cret"

var quiet = slog.New(slog.DiscardHandler)

// stores are the real stores the API is tested against.
var stores = map[string]func(t testing.TB) store.Store{
	"memory": func(testing.TB) store.Store { return store.NewMemory() },
	"sqlite": func(t testing.TB) store.Store {
		st, err := sqlite.Open(filepath.Join(t.TempDir(), "c.db"))
		require.NoError(t, err)
		return st
	},
}

// approval is a wait step: a durable run parks at it until the signal
// "approved" arrives.
type approval struct{}

func (approval) Name() string { return "approve" }
func (approval) Call(context.Context, *fc.Context) error {
	return errors.New("needs a durable channel")
}
func (approval) Park(*fc.Context) (flow.Wait, bool) {
	return flow.Wait{Signal: "approved", Into: "approval"}, true
}

type env struct {
	t         *testing.T
	srv       *httptest.Server
	cons      *console.Console
	orders    *channel.Channel
	approvals *channel.Channel
	broken    atomic.Bool // the charge step fails while set
}

// newEnv serves a console over two channels: orders (validate, enrich,
// charge; a payload with reject: true is rejected, charge fails while
// broken) and approvals (durable: ask, approve waits for a signal, ship).
func newEnv(t *testing.T, newStore func(testing.TB) store.Store, opts console.Options) *env {
	e := &env{t: t}
	orders := flow.New("orders",
		flow.Step("validate", func(_ context.Context, c *fc.Context) error {
			if r, _ := c.Get("reject"); r == true {
				return errors.Stop("rejected by request")
			}
			return nil
		}),
		flow.Step("enrich", func(_ context.Context, c *fc.Context) error { c.Set("total", 42); return nil }),
		flow.Step("charge", func(_ context.Context, c *fc.Context) error {
			if e.broken.Load() {
				return errors.New("card service down")
			}
			c.Set("charged", true)
			return nil
		}),
	).MustBuild()
	approvals := flow.New("approvals",
		flow.Step("ask", func(_ context.Context, c *fc.Context) error { c.Set("asked", true); return nil }),
		approval{},
		flow.Step("ship", func(_ context.Context, c *fc.Context) error { c.Set("shipped", true); return nil }),
	).MustBuild()
	st1, st2 := newStore(t), newStore(t)
	var err error
	e.orders, err = channel.New(channel.Config{Name: "orders", Flow: orders, Store: st1, Logger: quiet})
	require.NoError(t, err)
	e.approvals, err = channel.New(channel.Config{Name: "approvals", Flow: approvals, Store: st2, Durable: true, Logger: quiet})
	require.NoError(t, err)
	for _, ch := range []*channel.Channel{e.orders, e.approvals} {
		require.NoError(t, ch.Start(context.Background()))
	}
	opts.Channels = func() []*channel.Channel { return []*channel.Channel{e.orders, e.approvals} }
	opts.Logger = quiet
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:9090"
	}
	e.cons = console.New(opts)
	e.srv = httptest.NewServer(e.cons)
	t.Cleanup(func() {
		e.cons.Close()
		e.srv.Close()
		for _, ch := range []*channel.Channel{e.orders, e.approvals} {
			assert.NoError(t, ch.Stop(context.Background()))
		}
		assert.NoError(t, st1.Close())
		assert.NoError(t, st2.Close())
	})
	return e
}

// handle runs a message with payload v and meta through ch.
func (e *env) handle(ch *channel.Channel, id string, v any, meta map[string]string) channel.Result {
	m, err := message.NewJSON(v, meta)
	require.NoError(e.t, err)
	m.ID = id
	return ch.Handle(context.Background(), m)
}

// do sends a request, with the token when auth, and decodes a JSON answer
// into out (when not nil); it returns the status.
func (e *env) do(method, path, body string, auth bool, out any) int {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(e.t, err)
	if auth {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	if out != nil {
		require.NoError(e.t, json.Unmarshal(data, out), "%s %s: %s", method, path, data)
	}
	return res.StatusCode
}

func (e *env) get(path string, out any) int { return e.do(http.MethodGet, path, "", false, out) }

func forEachStore(t *testing.T, f func(t *testing.T, newStore func(testing.TB) store.Store)) {
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) { f(t, newStore) })
	}
}

func ids(res console.SearchResult) []string {
	out := []string{}
	for _, m := range res.Messages {
		out = append(out, m.ID)
	}
	return out
}

func TestChannelsAndSearch(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(testing.TB) store.Store) {
		e := newEnv(t, newStore, console.Options{Token: token})
		e.handle(e.orders, "ord-1", map[string]any{"n": 1}, map[string]string{"customer": "c-1", "src": "web"})
		e.handle(e.orders, "ord-2", map[string]any{"reject": true}, map[string]string{"customer": "c-2", "src": "web"})
		e.broken.Store(true)
		e.handle(e.orders, "ord-3", map[string]any{"n": 3}, map[string]string{"customer": "c-1", "src": "api"})
		e.broken.Store(false)
		e.handle(e.approvals, "apv-1", map[string]any{"order": "o1"}, nil)

		var chans []console.ChannelInfo
		require.Equal(t, http.StatusOK, e.get("/api/channels", &chans))
		require.Len(t, chans, 2)
		o := chans[0]
		assert.Equal(t, "orders", o.Name)
		assert.Equal(t, "orders", o.Flow)
		assert.Equal(t, channel.StateRunning, o.State)
		assert.Equal(t, map[store.State]int{store.Pending: 0, store.Processing: 0, store.Done: 1, store.Rejected: 1, store.Error: 1, store.Dead: 0, store.Waiting: 0}, o.Counts)
		assert.Equal(t, int64(1), o.Outcomes["error"])
		assert.Contains(t, o.LastError, "card service down")
		assert.Equal(t, 1, chans[1].Waiting)
		assert.Equal(t, 1, chans[1].Counts[store.Waiting])

		var one console.ChannelInfo
		require.Equal(t, http.StatusOK, e.get("/api/channels/approvals", &one))
		assert.Equal(t, "approvals", one.Name)
		var bad map[string]string
		require.Equal(t, http.StatusNotFound, e.get("/api/channels/nope", &bad))
		assert.Contains(t, bad["error"], `no channel "nope" (channels: orders, approvals)`)

		search := func(q string) console.SearchResult {
			t.Helper()
			var res console.SearchResult
			require.Equal(t, http.StatusOK, e.get("/api/channels/orders/messages?"+q, &res), q)
			return res
		}
		res := search("")
		assert.Equal(t, []string{"ord-3", "ord-2", "ord-1"}, ids(res), "newest first")
		assert.Equal(t, 3, res.Total)
		assert.Equal(t, console.DefaultLimit, res.Limit)
		assert.Equal(t, []string{"ord-1", "ord-3"}, ids(search("meta=customer=c-1&order=asc")))
		assert.Equal(t, []string{"ord-3"}, ids(search("meta=customer=c-1&meta=src=api")))
		assert.Equal(t, []string{"ord-3", "ord-2"}, ids(search("state=error,rejected")))
		assert.Equal(t, []string{"ord-3", "ord-2"}, ids(search("state=error&state=rejected")))
		assert.Equal(t, []string{"ord-2"}, ids(search("id=d-2")))
		page := search("limit=2&offset=1&order=asc")
		assert.Equal(t, []string{"ord-2", "ord-3"}, ids(page))
		assert.Equal(t, 3, page.Total)
		page = search("limit=1")
		assert.Equal(t, 3, page.Total, "a full page counts the rest")
		assert.Empty(t, ids(search("since="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)))))
		assert.Len(t, ids(search("until="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)))), 3)
		r3 := search("id=ord-3").Messages[0]
		assert.Equal(t, store.Error, r3.State)
		assert.Equal(t, "failed", r3.Outcome)
		assert.Contains(t, r3.Err, "card service down")
		assert.Equal(t, map[string]string{"customer": "c-1", "src": "api"}, r3.Meta)
		assert.Equal(t, "rejected by request", search("id=ord-2").Messages[0].Reason)

		for q, want := range map[string]string{
			"state=nope":      `state: unknown state "nope"`,
			"since=yesterday": "since:",
			"meta=novalue":    `meta: "novalue": expected KEY=VALUE`,
			"limit=0":         "limit:",
			"limit=501":       "limit:",
			"offset=-1":       "offset:",
			"order=sideways":  "order:",
		} {
			var er map[string]string
			assert.Equal(t, http.StatusBadRequest, e.get("/api/channels/orders/messages?"+q, &er), q)
			assert.Contains(t, er["error"], want, q)
		}
	})
}

func TestMessageTraceAndGraph(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(testing.TB) store.Store) {
		e := newEnv(t, newStore, console.Options{Token: token})
		e.handle(e.orders, "ord-1", map[string]any{"n": 1}, map[string]string{"customer": "c-1"})
		e.handle(e.approvals, "apv-1", map[string]any{"order": "o1"}, nil)

		var d struct {
			Channel string `json:"channel"`
			Message struct {
				ID      string            `json:"id"`
				Payload map[string]any    `json:"payload"`
				Meta    map[string]string `json:"meta"`
				Context map[string]any    `json:"context"`
			} `json:"message"`
			State   store.State          `json:"state"`
			History []store.Transition   `json:"history"`
			Journal []store.JournalEntry `json:"journal"`
			Wait    *store.Wait          `json:"wait"`
			Steps   []string             `json:"steps"`
		}
		require.Equal(t, http.StatusOK, e.get("/api/channels/orders/messages/ord-1", &d))
		assert.Equal(t, "orders", d.Channel)
		assert.Equal(t, map[string]any{"n": 1.0}, d.Message.Payload)
		assert.Equal(t, map[string]string{"customer": "c-1"}, d.Message.Meta)
		assert.Equal(t, 42.0, d.Message.Context["total"])
		assert.Equal(t, true, d.Message.Context["charged"])
		assert.Equal(t, store.Done, d.State)
		var states []store.State
		for _, h := range d.History {
			states = append(states, h.State)
		}
		assert.Equal(t, []store.State{store.Pending, store.Processing, store.Done}, states)
		assert.Equal(t, []string{"validate", "enrich", "charge"}, d.Steps)
		assert.Nil(t, d.Wait)

		d.Journal, d.Wait = nil, nil
		require.Equal(t, http.StatusOK, e.get("/api/channels/approvals/messages/apv-1", &d))
		assert.Equal(t, store.Waiting, d.State)
		require.NotNil(t, d.Wait)
		assert.Equal(t, "approved", d.Wait.Signal)
		require.NotEmpty(t, d.Journal)
		assert.Equal(t, "ask", d.Journal[0].Name)
		assert.Equal(t, true, d.Journal[0].Writes["asked"])

		var er map[string]string
		assert.Equal(t, http.StatusNotFound, e.get("/api/channels/orders/messages/nope", &er))
		assert.Contains(t, er["error"], "message not found")

		var tv console.TraceView
		require.Equal(t, http.StatusOK, e.get("/api/channels/orders/messages/ord-1/trace", &tv))
		require.NotNil(t, tv.Trace)
		assert.Equal(t, "orders", tv.Trace.Flow)
		var names []string
		for _, s := range tv.Trace.Steps {
			names = append(names, s.Name)
			assert.Equal(t, errors.KindOK, s.Outcome)
			assert.Equal(t, 1, s.Attempts)
		}
		assert.Equal(t, []string{"validate", "enrich", "charge"}, names)
		assert.Equal(t, []string{"total"}, tv.Trace.Steps[1].Wrote)

		var lay console.Layout
		require.Equal(t, http.StatusOK, e.get("/api/channels/orders/graph", &lay))
		var labels []string
		for _, n := range lay.Nodes {
			labels = append(labels, n.Label)
		}
		assert.Equal(t, []string{"orders", "validate", "enrich", "charge", "end"}, labels)
		assert.Len(t, lay.Edges, 4)
		for i, n := range lay.Nodes {
			assert.Equal(t, i, n.Layer, "a sequence is one node per layer")
		}
		res, err := e.srv.Client().Get(e.srv.URL + "/api/channels/orders/graph.svg")
		require.NoError(t, err)
		svg, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(t, "image/svg+xml", res.Header.Get("Content-Type"))
		for _, s := range []string{"<svg", ">validate</text>", ">enrich</text>", ">charge</text>"} {
			assert.Contains(t, string(svg), s)
		}
	})
}

func TestActions(t *testing.T) {
	forEachStore(t, func(t *testing.T, newStore func(testing.TB) store.Store) {
		e := newEnv(t, newStore, console.Options{Token: token})
		e.broken.Store(true)
		for i := range 3 {
			e.handle(e.orders, fmt.Sprintf("ord-%d", i), map[string]any{"n": i}, map[string]string{"customer": "c"})
		}
		e.handle(e.approvals, "apv-1", map[string]any{"order": "o1"}, nil)
		e.broken.Store(false)

		// Without the token: refused, nothing changes.
		var er map[string]string
		assert.Equal(t, http.StatusUnauthorized, e.do("POST", "/api/channels/orders/messages/ord-0/replay", "", false, &er))
		assert.Contains(t, er["error"], "admin token required")
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/channels/orders/messages/ord-0/replay", nil)
		req.Header.Set("Authorization", "Bearer wrong")
		res, err := e.srv.Client().Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
		rec, err := e.orders.Store().Get(context.Background(), "ord-0")
		require.NoError(t, err)
		assert.Equal(t, store.Error, rec.State)

		// Replay: the state changes.
		var ar console.ActionResult
		require.Equal(t, http.StatusOK, e.do("POST", "/api/channels/orders/messages/ord-0/replay", "", true, &ar))
		assert.Equal(t, store.Done, ar.State)
		assert.Equal(t, "ok", ar.Outcome)
		assert.Equal(t, true, ar.Context["charged"])

		// Replay from a step; an unknown step is a 400, the message kept.
		require.Equal(t, http.StatusOK, e.do("POST", "/api/channels/orders/messages/ord-1/replay", `{"from":"charge"}`, true, &ar))
		assert.Equal(t, store.Done, ar.State)
		tr := traceOf(t, e.orders, "ord-1")
		require.Len(t, tr.Steps, 1, "only charge ran: %+v", tr.Steps)
		assert.Equal(t, "charge", tr.Steps[0].Name)
		assert.Equal(t, http.StatusBadRequest, e.do("POST", "/api/channels/orders/messages/ord-2/replay", `{"from":"nope"}`, true, &er))
		assert.Contains(t, er["error"], `no step "nope"`)
		assert.Equal(t, http.StatusBadRequest, e.do("POST", "/api/channels/orders/messages/ord-2/replay", `{"from":"charge","resume":true}`, true, &er))
		assert.Equal(t, http.StatusBadRequest, e.do("POST", "/api/channels/orders/messages/ord-2/replay", `[`, true, &er))
		assert.Equal(t, http.StatusNotFound, e.do("POST", "/api/channels/orders/messages/nope/replay", ``, true, &er))

		// Bulk replay of the errors left.
		var br console.BulkResult
		assert.Equal(t, http.StatusBadRequest, e.do("POST", "/api/channels/orders/replay", `{"state":"done"}`, true, &er))
		assert.Contains(t, er["error"], "expected dead or error")
		require.Equal(t, http.StatusOK, e.do("POST", "/api/channels/orders/replay", `{"state":"error"}`, true, &br))
		assert.Equal(t, 1, br.Replayed)
		require.Len(t, br.Results, 1)
		assert.Equal(t, "ord-2", br.Results[0].ID)
		assert.Equal(t, store.Done, br.Results[0].State)
		assert.False(t, br.More)

		// Signal a waiting message: it resumes and completes.
		assert.Equal(t, http.StatusConflict, e.do("POST", "/api/channels/approvals/messages/apv-1/signals/other", `{}`, true, &er))
		assert.Equal(t, http.StatusConflict, e.do("POST", "/api/channels/orders/messages/ord-0/signals/approved", `{}`, true, &er))
		require.Equal(t, http.StatusOK, e.do("POST", "/api/channels/approvals/messages/apv-1/signals/approved", `{"by":"ann"}`, true, &ar))
		assert.Equal(t, store.Done, ar.State)
		assert.Equal(t, map[string]any{"by": "ann"}, ar.Context["approval"])
		assert.Equal(t, true, ar.Context["shipped"])
	})
}

func traceOf(t *testing.T, ch *channel.Channel, id string) flow.Trace {
	rec, err := ch.Store().Get(context.Background(), id)
	require.NoError(t, err)
	var tr flow.Trace
	require.NoError(t, json.Unmarshal(rec.Message.Trace, &tr))
	return tr
}

func TestAuthorization(t *testing.T) {
	newStore := stores["memory"]
	t.Run("no token set: reads open on loopback, actions refused", func(t *testing.T) {
		e := newEnv(t, newStore, console.Options{})
		assert.Equal(t, http.StatusOK, e.get("/api/channels", nil))
		var er map[string]string
		assert.Equal(t, http.StatusForbidden, e.do("POST", "/api/channels/orders/replay", `{"state":"dead"}`, false, &er))
		assert.Contains(t, er["error"], "no admin token is set")
		var a map[string]bool
		require.Equal(t, http.StatusOK, e.get("/api/auth", &a))
		assert.Equal(t, map[string]bool{"token_set": false, "authorized": false, "reads_need_token": false}, a)
	})
	t.Run("loopback: a foreign Host is refused (DNS rebinding)", func(t *testing.T) {
		e := newEnv(t, newStore, console.Options{Token: token})
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/channels", nil)
		req.Host = "evil.example:9090"
		res, err := e.srv.Client().Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusForbidden, res.StatusCode)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err = e.srv.Client().Do(req)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode, "the token opens it")
	})
	t.Run("not loopback: reads need the token", func(t *testing.T) {
		e := newEnv(t, newStore, console.Options{Token: token, Addr: "0.0.0.0:9090"})
		var er map[string]string
		assert.Equal(t, http.StatusUnauthorized, e.get("/api/channels", &er))
		assert.Contains(t, er["error"], "not loopback")
		assert.Equal(t, http.StatusUnauthorized, e.get("/api/events", nil))
		assert.Equal(t, http.StatusOK, e.do("GET", "/api/channels", "", true, nil))
		var a map[string]bool
		require.Equal(t, http.StatusOK, e.do("GET", "/api/auth", "", true, &a))
		assert.Equal(t, map[string]bool{"token_set": true, "authorized": true, "reads_need_token": true}, a)
		// The pages themselves are served without it: they ask for it.
		res, err := e.srv.Client().Get(e.srv.URL + "/console/")
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode)
	})
	t.Run("not loopback, no token set: reads refused", func(t *testing.T) {
		e := newEnv(t, newStore, console.Options{Addr: ":9090"})
		assert.Equal(t, http.StatusForbidden, e.get("/api/channels", nil))
	})
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9090": true, "[::1]:9090": true, "localhost:80": true, "LOCALHOST": true, "127.0.0.2": true,
		":9090": false, "0.0.0.0:9090": false, "[::]:9090": false, "10.0.0.1:9090": false, "example.com:9090": false, "": false,
	} {
		assert.Equal(t, want, console.Loopback(addr), addr)
	}
}

func TestPages(t *testing.T) {
	e := newEnv(t, stores["memory"], console.Options{Token: token})
	for path, want := range map[string]string{
		"/console/":        "<title>svcflow console</title>",
		"/console/app.js":  "sessionStorage",
		"/console/app.css": "@media (max-width: 640px)",
	} {
		res, err := e.srv.Client().Get(e.srv.URL + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode, path)
		assert.Contains(t, string(body), want, path)
		assert.Contains(t, res.Header.Get("Content-Security-Policy"), "default-src 'self'", path)
	}
	var er map[string]string
	assert.Equal(t, http.StatusNotFound, e.get("/api/nothing", &er))
	assert.Contains(t, er["error"], "no such API endpoint")
}

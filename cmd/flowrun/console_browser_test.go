package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ScreenshotsEnv names the environment variable holding a folder where
// the browser tests keep their screenshots of each console page for
// review; unset, they go to a temporary folder removed after the test.
const ScreenshotsEnv = "FLOWRUN_CONSOLE_SCREENSHOTS"

// chromium finds a Chromium (or Chrome) binary, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests skip in -short mode")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("Chromium is not installed (Debian: apt-get install chromium): the web console's browser tests skip")
	return ""
}

const consoleYAML = `version: 1
flows:
  orders:
    input: [n]
    steps:
      - stop: {if: "n < 0", reason: "negative n"}
      - set: {total: "n * 10"}
      - http: {method: POST, url: "BACKEND/charge", body: total, into: charge, retry: {max_attempts: 1}}
  approvals:
    steps:
      - set: {asked: "true"}
      - wait: {signal: approved, into: approval}
      - set: {shipped: "true"}
channels:
  orders:
    from: {http: {listen: "HTTPADDR", path: /orders, method: POST}}
    flow: orders
  approvals:
    from: {http: {listen: "HTTPADDR", path: /approvals, method: POST}}
    flow: approvals
    durable: steps
`

// consoleServer runs flowrun serve with the orders and approvals channels
// and an admin token; its orders call a backend that answers 503 while
// down is set.
type consoleServer struct {
	admin, http string
	down        atomic.Bool
}

func startConsoleServer(t *testing.T) *consoleServer {
	t.Helper()
	bin := flowrunBin(t)
	s := &consoleServer{admin: freeAddr(t), http: freeAddr(t)}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"charged": true}`)
	}))
	t.Cleanup(backend.Close)
	dir := t.TempDir()
	file := filepath.Join(dir, "console.yaml")
	yaml := strings.NewReplacer("BACKEND", backend.URL, "HTTPADDR", s.http).Replace(consoleYAML)
	// A long flow, for the graph: 50 steps.
	var long strings.Builder
	long.WriteString("flows:\n  long:\n    steps:\n")
	for i := range 50 {
		fmt.Fprintf(&long, "      - set: {step_%02d: \"%d\"}\n", i, i)
	}
	yaml = strings.Replace(yaml, "flows:\n", long.String(), 1)
	yaml = strings.Replace(yaml, "channels:\n", "channels:\n  long:\n    from: {http: {listen: \""+s.http+"\", path: /long, method: POST}}\n    flow: long\n", 1)
	require.NoError(t, os.WriteFile(file, []byte(yaml), 0o644))
	c := &child{log: filepath.Join(dir, "serve.log"), done: make(chan error, 1)}
	f, err := os.Create(c.log)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	c.cmd = exec.Command(bin, "serve", file, "--data", filepath.Join(dir, "data"), "--admin", s.admin)
	c.cmd.Env = append(os.Environ(), "FLOWRUN_ADMIN_TOKEN=console-token")
	c.cmd.Stdout, c.cmd.Stderr = f, f
	require.NoError(t, c.cmd.Start())
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.done:
		case <-time.After(20 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
	if !assert.Eventually(t, func() bool {
		res, err := http.Get("http://" + s.admin + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, 60*time.Second, 20*time.Millisecond) {
		t.Fatalf("flowrun serve did not become ready; its log:\n%s", c.logText())
	}
	return s
}

// post sends a JSON body to a channel's route with an Idempotency-Key, so
// that the message's ID is id.
func (s *consoleServer) post(t *testing.T, path, id, body string) int {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+s.http+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", id)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}

// api reads a console API path into out.
func (s *consoleServer) api(t *testing.T, path string, out any) {
	t.Helper()
	res, err := http.Get("http://" + s.admin + path)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, path)
	require.NoError(t, json.NewDecoder(res.Body).Decode(out))
}

func (s *consoleServer) state(t *testing.T, channel, id string) string {
	var d struct {
		State string `json:"state"`
	}
	s.api(t, "/api/channels/"+channel+"/messages/"+id, &d)
	return d.State
}

// TestConsoleInBrowser drives the web console of a real flowrun serve in
// headless Chromium: search finds a message by meta, the trace timeline
// shows every step, an action without the token is refused, replay (with
// the token) changes the state, a signal resumes a waiting message; a
// screenshot of each page, at 1280x800 and at a phone's width, is kept.
func TestConsoleInBrowser(t *testing.T) {
	chrome := chromium(t)
	s := startConsoleServer(t)
	s.down.Store(false)
	require.Equal(t, http.StatusOK, s.post(t, "/orders?customer=c-7", "ord-1", `{"n": 1}`))
	require.Equal(t, http.StatusUnprocessableEntity, s.post(t, "/orders?customer=c-8", "ord-2", `{"n": -1}`))
	s.down.Store(true)
	require.Equal(t, http.StatusServiceUnavailable, s.post(t, "/orders?customer=c-9", "ord-3", `{"n": 3}`))
	s.down.Store(false)
	s.post(t, "/approvals", "apv-1", `{"order": "o-1"}`)
	require.Equal(t, "error", s.state(t, "orders", "ord-3"))
	require.Equal(t, "waiting", s.state(t, "approvals", "apv-1"))

	shots := os.Getenv(ScreenshotsEnv)
	if shots == "" {
		shots = t.TempDir()
	}
	require.NoError(t, os.MkdirAll(shots, 0o755))
	t.Logf("screenshots in %s", shots)

	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WindowSize(1280, 800))...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(alloc)
	defer cancelCtx()
	// A hung browser fails the test (its whole run) instead of hanging CI.
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	base := "http://" + s.admin
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	ready := chromedp.WaitVisible(css(`body[data-ready="1"]`))
	// open shows a page of the console (already loaded) and waits until
	// it is rendered.
	open := func(hash string) chromedp.Action[chromedp.Void] {
		js := fmt.Sprintf(`document.body.dataset.ready = ""; if (location.hash === %[1]q) { route(); } else { location.hash = %[1]q; } true`, hash)
		return chromedp.Steps(chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](js)(ctx, tg)
			return err
		}), ready)
	}
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644)
		})
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, steps...), what)
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(css(sel)))
		require.NoError(t, err, sel)
		return strings.TrimSpace(v)
	}
	strs := func(js string) []string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](js))
		require.NoError(t, err, js)
		return v
	}

	// The admin root leads to the channels page, with live counts.
	do("channels page", chromedp.Navigate(base+"/"), ready,
		chromedp.WaitVisible(css(`tr[data-channel="orders"]`)), shot("channels"))
	assert.Equal(t, "1", text(`tr[data-channel="orders"] td[data-label="Error"]`))

	// Search finds a message by meta.
	do("search by meta", open("#/messages?channel=orders"),
		chromedp.WaitVisible(css(`tr[data-id="ord-3"]`)),
		chromedp.SetValue(css(`#f-meta`), "http.query.customer=c-7"),
		chromedp.Click(css(`form.search button[type=submit]`)),
		chromedp.WaitNotPresent(css(`tr[data-id="ord-3"]`)),
		chromedp.WaitVisible(css(`tr[data-id="ord-1"]`)),
		shot("messages-search"))
	assert.Equal(t, []string{"ord-1"}, strs(`[...document.querySelectorAll("#messages tbody tr[data-id]")].map(r => r.dataset.id)`))
	assert.Contains(t, text(`#result-count`), "1 message(s)")

	// The trace timeline shows every step of the run.
	var trace struct {
		Trace struct {
			Steps []struct {
				Name string `json:"name"`
			} `json:"steps"`
		} `json:"trace"`
	}
	s.api(t, "/api/channels/orders/messages/ord-1/trace", &trace)
	var want []string
	for _, st := range trace.Trace.Steps {
		want = append(want, st.Name)
	}
	require.Len(t, want, 3, "stop, set, http")
	do("trace timeline", open("#/trace/orders/ord-1"), chromedp.WaitVisible(css(`#timeline`)), shot("trace"))
	assert.Equal(t, want, strs(`[...document.querySelectorAll("#timeline .tl-row")].map(r => r.dataset.step)`))
	bars := strs(`[...document.querySelectorAll("#timeline .tl-bar")].filter(b => b.getBoundingClientRect().width > 0).map(b => b.className)`)
	assert.Len(t, bars, len(want), "a visible bar per step")
	for _, b := range bars {
		assert.Contains(t, b, "o-ok", "outcome colour")
	}

	// An action without the token is refused; the state stays.
	do("replay without the token", open("#/message/orders/ord-3"),
		chromedp.Click(css(`#a-replay`)),
		chromedp.WaitVisible(css(`#action-result .error-text`)),
		shot("message-refused"))
	assert.Contains(t, text(`#action-result`), "admin token required")
	assert.Equal(t, "error", s.state(t, "orders", "ord-3"))

	// With the token, replay changes the state.
	do("replay with the token", open("#/login"),
		chromedp.SendKeys(css(`#token`), "console-token"),
		chromedp.Click(css(`#token-submit`)),
		chromedp.WaitVisible(css(`tr[data-channel="orders"]`)),
		open("#/message/orders/ord-3"),
		chromedp.WaitVisible(css(`#msg-state .s-error`)),
		shot("message-error"),
		chromedp.Click(css(`#a-replay`)),
		chromedp.WaitVisible(css(`#msg-state .s-done`)),
		shot("message-replayed"))
	assert.Equal(t, "done", text(`#msg-state`))
	assert.Equal(t, "done", s.state(t, "orders", "ord-3"))

	// A waiting message shows its journal; the signal resumes it.
	do("signal a waiting message", open("#/message/approvals/apv-1"),
		chromedp.WaitVisible(css(`#a-signal`)),
		shot("message-waiting"),
		chromedp.SetValue(css(`#a-values`), `{"by": "ann"}`),
		chromedp.Click(css(`#a-signal`)),
		chromedp.WaitVisible(css(`#msg-state .s-done`)))
	assert.Equal(t, "done", s.state(t, "approvals", "apv-1"))

	// The graph, drawn from the flow.
	do("graph", open("#/graph/orders"), chromedp.WaitVisible(css(`svg.flow-graph`)), shot("graph"))
	labels := strs(`[...document.querySelectorAll("svg.flow-graph .node text:first-of-type")].map(t => t.textContent)`)
	assert.Len(t, labels, 5, "start, three steps, end: %v", labels)
	assert.Contains(t, labels, "orders")
	do("graph of 50 steps", open("#/graph/long"), chromedp.WaitVisible(css(`svg.flow-graph`)), shot("graph-50-steps"))
	labels = strs(`[...document.querySelectorAll("svg.flow-graph .node text:first-of-type")].map(t => t.textContent)`)
	assert.Len(t, labels, 52, "start, 50 steps, end")
	assert.Contains(t, labels, "set(step_49)")

	// Keyboard: Tab goes to the skip link, then the brand and the
	// navigation, each a real link.
	do("keyboard", chromedp.Navigate(base+"/console/?fresh#/channels"), ready) // a new document: focus at its start
	var focused []string
	for range 3 {
		do("tab", chromedp.KeyEvent("\t"))
		focused = append(focused, strs(`[document.activeElement.textContent.trim()]`)...)
	}
	assert.Equal(t, []string{"Skip to content", "svcflow console", "Channels"}, focused)

	// At a phone's width the pages reflow: no horizontal scrolling.
	overflow := func() bool {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
		require.NoError(t, err)
		return v
	}
	do("phone channels", chromedp.EmulateViewport(390, 844), open("#/channels"),
		chromedp.WaitVisible(css(`tr[data-channel="orders"]`)), shot("phone-channels"))
	assert.False(t, overflow(), "the channels page fits a phone's width")
	do("phone messages", open("#/messages?channel=orders"), chromedp.WaitVisible(css(`tr[data-id="ord-1"]`)), shot("phone-messages"))
	assert.False(t, overflow(), "the messages page fits a phone's width")
	do("phone message", open("#/message/orders/ord-1"), chromedp.WaitVisible(css(`#payload`)), shot("phone-message"))
	do("phone trace", open("#/trace/orders/ord-1"), chromedp.WaitVisible(css(`#timeline`)), shot("phone-trace"))
	assert.False(t, overflow(), "the trace page fits a phone's width")
	for _, name := range []string{"channels", "messages-search", "trace", "message-refused", "message-replayed", "message-waiting", "graph", "phone-channels", "phone-trace"} {
		st, err := os.Stat(filepath.Join(shots, name+".png"))
		if assert.NoError(t, err) {
			assert.Greater(t, st.Size(), int64(1000), name)
		}
	}
}

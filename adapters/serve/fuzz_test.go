package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
)

// fuzzIntake is the configuration FuzzHTTP serves: an order flow over
// the request body with stop, each, set and fork steps, and a booking in
// a ledger (LEDGER, a test server) whose JSON body is built from the
// client's Idempotency-Key.
const fuzzIntake = `version: 1
flows:
  orders:
    input: [items, {name: tier, type: string, optional: true}, meta]
    steps:
      - stop: {if: "len(items) == 0", reason: "no items"}
      - stop: {if: "any(items, #.qty <= 0)", reason: "every item needs a positive quantity"}
      - each:
          over: items
          as: item
          collect: {from: line, into: lines}
          steps:
            - set: {line: "item.price * item.qty"}
      - set: {total: "sum(lines)"}
      - fork:
          on: "tier ?? 'none'"
          cases:
            gold: [{set: {discount: "total / 10"}}]
          default: [{set: {discount: "0"}}]
      - set: {due: "total - discount", ref: "meta.id"}
      - name: book
        http:
          method: POST
          url: "LEDGER/bookings"
          headers: {Idempotency-Key: "{{.meta.id}}"}
          body_template: '{"id": {{.meta.id}}, "total": {{.due}}, "ref": "web-{{.meta.id}}"}'
          content_type: application/json
          allow_hosts: [LEDGERHOST]
          timeout: 5s
          into: booking
channels:
  intake:
    from: {http: {listen: "127.0.0.1:0", path: /orders, method: POST}}
    flow: orders
    store: memory
`

// fuzzLedger is the booking service of fuzzIntake: it checks that every
// booking is the JSON object the template describes, with the id the
// request's Idempotency-Key header carries, and counts bookings by id.
type fuzzLedger struct {
	mu       sync.Mutex
	bookings map[string]int
	bad      []string
}

func (l *fuzzLedger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Header.Get("Idempotency-Key")
	var got struct {
		ID    *string         `json:"id"`
		Total json.RawMessage `json:"total"`
		Ref   *string         `json:"ref"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(&got)
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err != nil:
		l.bad = append(l.bad, fmt.Sprintf("booking %q: %v", body, err))
	case got.ID == nil || *got.ID != key:
		l.bad = append(l.bad, fmt.Sprintf("booking %q: id is not the key %q", body, key))
	case got.Ref == nil || *got.Ref != "web-"+key:
		l.bad = append(l.bad, fmt.Sprintf("booking %q: ref is not web-%s", body, key))
	}
	l.bookings[key]++
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"booked": true}`))
}

// take returns and forgets the problems seen so far.
func (l *fuzzLedger) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	bad := l.bad
	l.bad = nil
	return bad
}

func (l *fuzzLedger) count(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bookings[id]
}

// take returns the text written so far and empties the buffer.
func (s *syncBuffer) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.b.String()
	s.b.Reset()
	return out
}

// fuzzServer is one server for every input of a fuzz target.
type fuzzServer struct {
	base   string
	client *http.Client // keep-alive, as real clients
	fresh  *http.Client // a new connection per request
	store  store.Store
	ledger *fuzzLedger
	logs   *syncBuffer // warnings and errors, as JSON lines
}

// startFuzzServer serves fuzzIntake until the fuzz target ends.
func startFuzzServer(f *testing.F) *fuzzServer {
	f.Helper()
	ledger := &fuzzLedger{bookings: map[string]int{}}
	ls := httptest.NewServer(ledger)
	f.Cleanup(ls.Close)
	host := strings.TrimPrefix(ls.URL, "http://")
	text := strings.NewReplacer("LEDGERHOST", host, "LEDGER", ls.URL).Replace(fuzzIntake)
	cfg, err := config.LoadSources([]config.Source{{Name: "fuzz.yaml", Data: []byte(text)}})
	if err != nil {
		f.Fatal(err)
	}
	logs := &syncBuffer{}
	srv, err := serve.New(cfg, serve.Options{DataDir: f.TempDir(), Admin: "off", Drain: 5 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		f.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		srv.Close()
		f.Fatal(err)
	}
	ch, _ := srv.Channel("intake")
	fs := &fuzzServer{
		base:   "http://" + srv.Addrs()["http 127.0.0.1:0"],
		client: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}},
		fresh:  &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		store:  ch.Store(),
		ledger: ledger,
		logs:   logs,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	f.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.Errorf("server stopped with %v", err)
		}
		fs.client.CloseIdleConnections()
		fs.fresh.CloseIdleConnections()
	})
	return fs
}

// fuzzAnswer is one response, read whole.
type fuzzAnswer struct {
	status int
	header http.Header
	body   []byte
}

// Flags of a FuzzHTTP input.
const (
	fuzzKeyed  = 1 << iota // send the Idempotency-Key header
	fuzzTyped              // send the Content-Type header
	fuzzHeader             // send the other header
	fuzzRepeat             // send the request a second time
)

// FuzzHTTP drives the HTTP source and a flow end to end, through one
// server for all inputs: a request of fuzzed method, path, query,
// Content-Type, Idempotency-Key, one other header and body. Whatever the
// input:
//   - nothing panics (the server logs no panic) and every answer is JSON;
//   - a 5xx is a 503 with Retry-After, or a 500 with an error_id;
//   - a 2xx answer's message is done in the store, run once (booked once
//     in the ledger, whose booking carries the key unchanged), and the
//     answer is the stored context;
//   - an answered message is not left processing in the store;
//   - the same request with the same Idempotency-Key gets the same answer;
//   - /healthz answers 200 on a new connection afterwards.
//
// go test runs the seeds below and those in testdata/fuzz/FuzzHTTP;
// explore further with
//
//	go test -run '^$' -fuzz FuzzHTTP ./adapters/serve
func FuzzHTTP(f *testing.F) {
	const all = fuzzKeyed | fuzzTyped | fuzzHeader | fuzzRepeat
	const js = "application/json"
	good := `{"items": [{"sku": "a", "price": 2, "qty": 3}, {"sku": "b", "price": 0.5, "qty": 1}], "tier": "gold"}`
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	for _, s := range []struct {
		method, path, query, ctype, key, hname, hval, body string
		flags                                              uint8
	}{
		{"POST", "/orders", "", js, "o-1", "X-Request-Id", "r-1", good, all},
		{"POST", "/orders", "", js, "", "", "", good, fuzzTyped},
		{"POST", "/orders", "", js, "o-2", "", "", `{"items": [`, all},
		{"POST", "/orders", "", "text/plain", "o-3", "", "", `{"items": [`, all},
		{"POST", "/orders", "", js, "o-4", "", "", `{"items": [{"price": 12345678901234567891, "qty": 1}]}`, all},
		{"POST", "/orders", "", js, "o-5", "", "", `{"items": [{"price": 1e308, "qty": 10}]}`, all},
		{"POST", "/orders", "", js, "o-6", "", "", `{"items": [{"price": 1, "qty": 1}], "x": ` + deep + `}`, all},
		{"POST", "/orders", "", js, "o-7", "", "", `{"x": {"y": ` + strings.Repeat(`{"a": `, 20_000) + "1" + strings.Repeat("}", 20_000) + `}}`, all},
		{"POST", "/orders", "", js, "o-8", "", "", "{\"items\": [{\"sku\": \"\xff\xfe\", \"price\": 1, \"qty\": 1}]}", all},
		{"POST", "/orders", "", "text/plain", "o-9", "", "", "\xff\xfe{", all},
		{"POST", "/orders", "", js, `x", "id": "victim`, "", "", good, all},
		{"POST", "/orders", "", js, `{{.meta}}\u0000"}`, "", "", good, all},
		{"POST", "/orders", "", js, strings.Repeat("k", 201), "", "", good, all},
		{"POST", "/orders", "", js, "é", "", "", good, all},
		{"POST", "/orders", "", js, "", "", "", good, fuzzKeyed | fuzzTyped},
		{"POST", "/orders", "", js, "o-10", "", "", "", all},
		{"POST", "/orders", "", "", "o-11", "", "", "", all},
		{"POST", "/orders", "", "", "o-12", "", "", good, all},
		{"POST", "/orders", "", js, "o-13", "", "", `{"items": "x"}`, all},
		{"POST", "/orders", "", js, "o-14", "", "", `{"items": [{"price": "2", "qty": 1}]}`, all},
		{"POST", "/orders", "", js, "o-15", "", "", `{"items": [1, 2]}`, all},
		{"POST", "/orders", "", js, "o-16", "", "", `{"items": [{"price": 1, "qty": 1}], "tier": 7}`, all},
		{"POST", "/orders", "", js, "o-17", "", "", `{"items": null, "meta": {"id": "victim"}}`, all},
		{"POST", "/orders", "", js, "o-18", "", "", `[]`, all},
		{"POST", "/orders", "", js, "o-19", "", "", `null`, all},
		{"POST", "/orders", "", js, "o-20", "", "", `{"items": [{"price": 1, "qty": 1}], "items": []}`, all},
		{"POST", "/orders", "a=1&a=2&b=%zz", js, "o-21", "", "", good, all},
		{"POST", "/orders", "a=1;b=2", js, "o-22", "", "", good, all},
		{"POST", "/orders", "", "application/json; charset=utf-8", "o-23", "", "", good, all},
		{"POST", "/orders", "", "bad/;;=", "o-24", "", "", good, all},
		{"POST", "/orders", "", "application/vnd.x+json", "o-25", "", "", "{", all},
		{"POST", "/orders", "", js, "o-26", "Transfer-Encoding", "chunked", good, all},
		{"POST", "/orders", "", js, "o-27", "Traceparent", "00-zz", good, all},
		{"POST", "/orders", "", js, "o-28", "Expect", "100-continue", good, all},
		{"GET", "/orders", "", "", "", "", "", "", 0},
		{"HEAD", "/orders", "", "", "", "", "", "", 0},
		{"PUT", "/orders", "", js, "o-29", "", "", good, all},
		{"POST", "/nope", "", js, "", "", "", good, fuzzTyped},
		{"POST", "/orders/", "", js, "", "", "", good, fuzzTyped},
		{"POST", "//orders", "", js, "", "", "", good, fuzzTyped},
		{"POST", "/orders/../orders", "", js, "", "", "", good, fuzzTyped},
		{"GET", "/healthz", "", "", "", "", "", "", 0},
		{"POST", "/readyz", "", js, "", "", "", good, fuzzTyped},
	} {
		f.Add(s.method, s.path, s.query, s.ctype, s.key, s.hname, s.hval, []byte(s.body), s.flags)
	}
	fs := startFuzzServer(f)
	f.Fuzz(func(t *testing.T, method, path, query, ctype, key, hname, hval string, body []byte, flags uint8) {
		req := func() *http.Request {
			if !strings.HasPrefix(path, "/") {
				path = "/" + path // else it would end the address
			}
			target := fs.base + path
			if query != "" {
				target += "?" + requestTargetSafe(query)
			}
			r, err := http.NewRequest(method, target, bytes.NewReader(body))
			if err != nil {
				return nil // not a request a client can send
			}
			if flags&fuzzKeyed != 0 {
				r.Header.Set("Idempotency-Key", key)
			}
			if flags&fuzzTyped != 0 {
				r.Header.Set("Content-Type", ctype)
			}
			if flags&fuzzHeader != 0 && hname != "" {
				r.Header.Add(hname, hval)
			}
			if !sendable(r) || "http://"+r.URL.Host != fs.base {
				return nil
			}
			return r
		}
		r := req()
		if r == nil {
			return
		}
		first := fs.send(t, r)
		fs.check(t, r, first)
		if flags&fuzzKeyed != 0 && flags&fuzzRepeat != 0 {
			again := fs.send(t, req())
			fs.check(t, r, again)
			if repeatable(first.status) && (first.status != again.status || !sameJSON(first.body, again.body)) {
				t.Errorf("the same request with the same key answered %d %s, then %d %s",
					first.status, first.body, again.status, again.body)
			}
		}
		fs.healthy(t)
	})
}

// repeatable reports whether a first answer must be given again to the
// same request with the same key: not those that depend on the moment (a
// request timed out, busy, unavailable) or carry a new error id.
func repeatable(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict:
		return false
	}
	return status < 500
}

// sendable reports whether the net/http client sends r as it is, rather
// than refusing it: a method that is a token, header names that are
// tokens and values without control characters.
func sendable(r *http.Request) bool {
	if r.Method == "" || !isToken(r.Method) || r.URL.Host == "" {
		return false
	}
	for name, vals := range r.Header {
		if !isToken(name) {
			return false
		}
		for _, v := range vals {
			for i := 0; i < len(v); i++ {
				if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
					return false
				}
			}
		}
	}
	return true
}

// requestTargetSafe percent-encodes the bytes of a query that a request
// line cannot carry (spaces, controls, non-ASCII, #), which the net/http
// client would send raw and net/http answer 400 in text itself.
func requestTargetSafe(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		if c := q[i]; c <= ' ' || c >= 0x7f || c == '#' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// send sends r and reads the whole answer.
func (fs *fuzzServer) send(t *testing.T, r *http.Request) fuzzAnswer {
	t.Helper()
	resp, err := fs.client.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v (logs: %s)", r.Method, r.URL, err, fs.logs.take())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", r.Method, r.URL, err)
	}
	return fuzzAnswer{status: resp.StatusCode, header: resp.Header, body: body}
}

// check checks one answer to r.
func (fs *fuzzServer) check(t *testing.T, r *http.Request, a fuzzAnswer) {
	t.Helper()
	for _, p := range fs.panics() {
		t.Errorf("%s %s: logged %s", r.Method, r.URL, p)
	}
	for _, bad := range fs.ledger.take() {
		t.Errorf("%s %s: the ledger got a bad booking: %s", r.Method, r.URL, bad)
	}
	// net/http answers an Expect it does not know itself, with 417 and
	// no body, before the server sees the request (see the httpsource
	// package doc).
	netHTTP := a.status == http.StatusExpectationFailed && len(a.body) == 0 &&
		r.Header.Get("Expect") != "" && !strings.EqualFold(r.Header.Get("Expect"), "100-continue")
	if r.Method != http.MethodHead && !netHTTP {
		if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s: %d answered with Content-Type %q: %q", r.Method, r.URL, a.status, ct, a.body)
		}
		if !json.Valid(a.body) {
			t.Errorf("%s %s: %d answered with a body that is not JSON: %q", r.Method, r.URL, a.status, a.body)
		}
	}
	var errBody struct {
		ErrorID string `json:"error_id"`
	}
	_ = json.Unmarshal(a.body, &errBody)
	switch {
	case a.status == http.StatusServiceUnavailable:
		if a.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: 503 without Retry-After: %s", r.Method, r.URL, a.body)
		}
	case a.status == http.StatusInternalServerError:
		if errBody.ErrorID == "" && r.Method != http.MethodHead {
			t.Errorf("%s %s: 500 without an error_id: %s", r.Method, r.URL, a.body)
		}
	case a.status >= 500:
		t.Errorf("%s %s: answered %d: %s", r.Method, r.URL, a.status, a.body)
	case a.status >= 200 && a.status < 300 && a.header.Get("X-Message-Id") != "":
		fs.checkDone(t, r, a)
	}
	if id := a.header.Get("X-Message-Id"); id != "" && a.status != http.StatusConflict {
		// Answered: whatever the outcome, the message is not left running.
		rec, err := fs.store.Get(context.Background(), id)
		if err == nil && rec.State == store.Processing {
			t.Errorf("%s %s: answered %d %s, but message %q is still processing", r.Method, r.URL, a.status, a.body, id)
		}
	}
}

// checkDone checks that the message of a 2xx answer is done, ran once and
// was answered with its stored context.
func (fs *fuzzServer) checkDone(t *testing.T, r *http.Request, a fuzzAnswer) {
	t.Helper()
	id := a.header.Get("X-Message-Id")
	rec, err := fs.store.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("%s %s: %d, but message %q: %v", r.Method, r.URL, a.status, id, err)
	}
	dones := 0
	for _, h := range rec.History {
		if h.State == store.Done {
			dones++
		}
	}
	if rec.State != store.Done || dones != 1 || rec.Attempts != 1 {
		t.Errorf("%s %s: %d, but message %q is %s, done %d times in %d attempts", r.Method, r.URL, a.status, id, rec.State, dones, rec.Attempts)
	}
	if n := fs.ledger.count(id); n != 1 {
		t.Errorf("%s %s: %d, but message %q was booked %d times", r.Method, r.URL, a.status, id, n)
	}
	// The answer is the stored context without meta, which is never
	// echoed to the client.
	answer := maps.Clone(rec.Message.Context)
	delete(answer, "meta")
	stored, err := json.Marshal(answer)
	if err != nil {
		t.Fatalf("message %q: encoding its stored context: %v", id, err)
	}
	if !sameJSON(a.body, stored) {
		t.Errorf("%s %s: answered %s, but the stored context (meta aside) is %s", r.Method, r.URL, a.body, stored)
	}
}

// healthy checks /healthz on a new connection.
func (fs *fuzzServer) healthy(t *testing.T) {
	t.Helper()
	resp, err := fs.fresh.Get(fs.base + "/healthz")
	if err != nil {
		t.Fatalf("/healthz after the input: %v (logs: %s)", err, fs.logs.take())
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz after the input: %d", resp.StatusCode)
	}
}

// panics returns the log records since the last call that report a
// panic.
func (fs *fuzzServer) panics() []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(fs.logs.take()))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			out = append(out, "an unreadable log line: "+sc.Text())
			continue
		}
		msg, _ := rec["msg"].(string)
		if _, ok := rec["panic"]; ok || strings.Contains(msg, "panic") {
			out = append(out, sc.Text())
		}
	}
	return out
}

// sameJSON reports whether a and b are the same JSON value, numbers
// compared by their text.
func sameJSON(a, b []byte) bool {
	decode := func(data []byte) (any, bool) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		return v, dec.Decode(&v) == nil
	}
	va, oka := decode(a)
	vb, okb := decode(b)
	if !oka || !okb {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(va, vb)
}

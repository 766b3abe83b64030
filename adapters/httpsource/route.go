package httpsource

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	flowerrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/internal/jsonenc"
	"github.com/svcflow/svcflow/internal/jsonscan"
)

// NotReadyRetryAfter is the Retry-After of a 503 "not ready": a route
// whose channel has not started yet or is stopping (a graceful drain).
const NotReadyRetryAfter = time.Second

// IdempotencyHeader names the request header whose value, when present,
// becomes the message ID (1 to MaxIdempotencyKey printable ASCII
// characters), so that a client retrying a request sends the same message
// again rather than a new one.
const IdempotencyHeader = "Idempotency-Key"

// MessageIDHeader names the response header that carries the message ID.
const MessageIDHeader = "X-Message-Id"

// MaxIdempotencyKey is the longest accepted IdempotencyHeader value.
const MaxIdempotencyKey = 200

// RouteOption configures one route; see Server.Route.
type RouteOption func(*route) error

// WithHeaders copies the named request headers into the route's messages
// as "http.header.<lower-case name>" (several values joined by ", "), in
// addition to Config.Headers.
func WithHeaders(names ...string) RouteOption {
	return func(rt *route) error {
		for _, n := range names {
			if strings.TrimSpace(n) == "" {
				return fmt.Errorf("%w: empty header name", ErrInvalidRoute)
			}
			rt.headers = append(rt.headers, http.CanonicalHeaderKey(strings.TrimSpace(n)))
		}
		return nil
	}
}

// WithMaxBodyBytes overrides Config.MaxBodyBytes for the route (n > 0).
func WithMaxBodyBytes(n int64) RouteOption {
	return func(rt *route) error {
		if n <= 0 {
			return fmt.Errorf("%w: max body bytes %d, want > 0", ErrInvalidRoute, n)
		}
		rt.maxBody = n
		return nil
	}
}

// WithName sets the source's Name (default "http METHOD PATH").
func WithName(name string) RouteOption {
	return func(rt *route) error {
		rt.name = name
		return nil
	}
}

// route is one method and path of a Server, and the channel.Source for it.
type route struct {
	srv      *Server // guarded by mu once the route serves (Adopt moves it)
	method   string
	path     string
	name     string
	maxBody  int64
	headers  []string
	metaKeys []string // "http.header.<lower-case name>" for each of headers
	resp     *shaping // nil: the default answers
	log      *slog.Logger

	keysMu sync.Mutex
	keys   map[string]struct{} // the Idempotency-Keys of requests being answered

	mu     sync.Mutex
	h      channel.Handler // nil when no Run is taking messages
	next   *route          // the route that replaced this one (Adopt)
	active bool            // a Run has started and not returned
	wg     sync.WaitGroup  // requests that hold h
}

var _ channel.Source = (*route)(nil)

// String returns "METHOD PATH".
func (rt *route) String() string { return rt.method + " " + rt.path }

// Name implements channel.Source.
func (rt *route) Name() string {
	if rt.name != "" {
		return rt.name
	}
	return "http " + rt.String()
}

// Run implements channel.Source: the route hands its requests to h until
// ctx is done, then answers 503 again and returns nil once every request
// that reached h has been answered. Requests in flight keep their own
// (request) context: canceling ctx stops intake, it does not cancel them.
func (rt *route) Run(ctx context.Context, h channel.Handler) error {
	if h == nil {
		return fmt.Errorf("httpsource: %s: nil handler", rt.Name())
	}
	rt.mu.Lock()
	if rt.active {
		rt.mu.Unlock()
		return fmt.Errorf("httpsource: %s: %w", rt.Name(), ErrRunning)
	}
	rt.active, rt.h = true, h
	srv := rt.srv
	rt.mu.Unlock()
	srv.notify()
	rt.log.Debug("http route ready", "source", rt.Name())

	<-ctx.Done()

	rt.mu.Lock()
	rt.h = nil
	srv = rt.srv // Adopt may have moved the route to another server
	rt.mu.Unlock()
	srv.notify()
	rt.wg.Wait() // no Add can happen now: h is nil
	rt.mu.Lock()
	rt.active = false
	rt.mu.Unlock()
	rt.log.Debug("http route stopped", "source", rt.Name())
	return nil
}

// ready reports whether a Run is taking messages, here or, for a route
// Adopt replaced, in its successor.
func (rt *route) ready() bool {
	for r := rt; r != nil; {
		r.mu.Lock()
		h, next := r.h, r.next
		r.mu.Unlock()
		if h != nil {
			return true
		}
		r = next
	}
	return false
}

// acquire returns the running handler and a func to call once the request
// is answered, or nil when the route is not running. A request that
// reached a route Adopt replaced after its Run ended goes to the
// successor: none is refused "not ready" while a hot reload swaps it.
func (rt *route) acquire() (channel.Handler, func()) {
	for r := rt; r != nil; {
		r.mu.Lock()
		if r.h != nil {
			r.wg.Add(1)
			h := r.h
			r.mu.Unlock()
			return h, r.wg.Done
		}
		next := r.next
		r.mu.Unlock()
		r = next
	}
	return nil, nil
}

// requestError is a request the route refuses before the handler sees it.
type requestError struct {
	status int
	msg    string
}

// serve answers one request for the route.
func (rt *route) serve(w http.ResponseWriter, r *http.Request) {
	if !rt.ready() {
		w.Header().Set("Retry-After", retryAfter(NotReadyRetryAfter))
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "not ready"})
		return
	}
	m, rerr := rt.message(w, r)
	if rerr != nil {
		id := ""
		if m != nil {
			id = m.ID
		}
		writeJSON(w, rerr.status, errorBody{Error: rerr.msg, ID: id})
		return
	}
	if m.Meta[message.MetaRequestHash] != "" {
		if !rt.claim(m.ID) {
			w.Header().Set("Retry-After", retryAfter(NotReadyRetryAfter))
			writeJSON(w, http.StatusConflict, errorBody{Error: IdempotencyHeader + ": a request with this key is still being processed", ID: m.ID})
			return
		}
		defer rt.release(m.ID)
	}
	h, done := rt.acquire()
	if h == nil {
		w.Header().Set("Retry-After", retryAfter(NotReadyRetryAfter))
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "not ready", ID: m.ID})
		return
	}
	defer done()
	res := rt.call(r.Context(), h, m)
	if res.Settle == channel.Leave && errors.Is(res.Err, channel.ErrStopped) {
		// Taken by a channel that began to stop meanwhile, which
		// recorded and ran nothing: a route Adopt replaced hands it to
		// its successor.
		if next := rt.successor(); next != nil {
			if h2, done2 := next.acquire(); h2 != nil {
				defer done2()
				res = rt.call(r.Context(), h2, m)
			}
		}
	}
	rt.respond(w, m, res)
}

// successor returns the route that replaced rt (Adopt), or nil.
func (rt *route) successor() *route {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.next
}

// Ready reports whether the route takes requests: its Run runs (or, for a
// route a hot reload replaced, its successor's).
func (rt *route) Ready() bool { return rt.ready() }

// claim marks an Idempotency-Key as being answered; false when it is
// already.
func (rt *route) claim(key string) bool {
	rt.keysMu.Lock()
	defer rt.keysMu.Unlock()
	if _, busy := rt.keys[key]; busy {
		return false
	}
	if rt.keys == nil {
		rt.keys = map[string]struct{}{}
	}
	rt.keys[key] = struct{}{}
	return true
}

// release ends a claim.
func (rt *route) release(key string) {
	rt.keysMu.Lock()
	delete(rt.keys, key)
	rt.keysMu.Unlock()
}

// requestHash is the fingerprint of a request that an Idempotency-Key
// names: "sha256:" and the hex SHA-256 of its method, path, query, content
// type and body, each preceded by its length.
func requestHash(r *http.Request, ct string, body []byte) string {
	h := sha256.New()
	var n [8]byte
	for _, part := range [][]byte{[]byte(r.Method), []byte(r.URL.Path), []byte(r.URL.RawQuery), []byte(ct), body} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// message turns the request into a message. On a refusal it returns the
// error to answer and, once the ID is known, the message so far.
func (rt *route) message(w http.ResponseWriter, r *http.Request) (*message.Message, *requestError) {
	m := &message.Message{Time: time.Now().UTC()}
	vals, keyed := r.Header[IdempotencyHeader]
	if keyed {
		if len(vals) != 1 || !validKey(vals[0]) {
			return nil, &requestError{http.StatusBadRequest, fmt.Sprintf(
				"%s: want one value of 1 to %d printable ASCII characters", IdempotencyHeader, MaxIdempotencyKey)}
		}
		m.ID = vals[0]
	} else {
		m.ID = uuid.NewString()
	}
	w.Header().Set(MessageIDHeader, m.ID)

	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return m, &requestError{http.StatusBadRequest, "query: " + err.Error()}
	}
	ct := r.Header.Get("Content-Type")
	if ct != "" && ct != message.ContentTypeJSON {
		if _, _, err := mime.ParseMediaType(ct); err != nil {
			return m, &requestError{http.StatusBadRequest, "Content-Type: invalid media type " + strconv.Quote(ct)}
		}
	}

	body, rerr := rt.readBody(w, r)
	if rerr != nil {
		return m, rerr
	}
	switch {
	case message.IsJSON(ct) || len(body) > 0 && body[0] == '{':
		// A body the channel reads as JSON (a JSON Content-Type, or a
		// body that begins with "{", whatever the header says: curl -d
		// sends form-urlencoded) must be a JSON object: else 400, and
		// nothing is recorded.
		if msg := checkJSONObject(body); msg != "" {
			return m, &requestError{http.StatusBadRequest, msg}
		}
	case ct == "" && len(body) > 0:
		ct = "application/octet-stream"
	}
	m.ContentType = ct
	if len(body) > 0 {
		m.Payload = body
	}

	meta := make(map[string]string, 4+len(query)+len(rt.headers))
	if keyed {
		// The key is the client's: the hash tells a retry of the same
		// request from a reuse of the key for another one.
		meta[message.MetaRequestHash] = requestHash(r, ct, body)
	}
	meta["http.method"] = r.Method
	meta["http.path"] = r.URL.Path
	meta["http.remote"] = r.RemoteAddr
	for k, v := range query {
		meta["http.query."+k] = strings.Join(v, ",")
	}
	for i, name := range rt.headers {
		if v := r.Header.Values(name); len(v) > 0 {
			meta[rt.metaKeys[i]] = strings.Join(v, ", ")
		}
	}
	m.Meta = meta
	return m, nil
}

// validKey reports whether an idempotency key is 1 to MaxIdempotencyKey
// printable ASCII characters.
func validKey(k string) bool {
	if k == "" || len(k) > MaxIdempotencyKey {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < ' ' || k[i] > '~' {
			return false
		}
	}
	return true
}

// readBody reads the request body up to the route's limit.
func (rt *route) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *requestError) {
	tooLarge := &requestError{http.StatusRequestEntityTooLarge,
		fmt.Sprintf("body: larger than %d bytes", rt.maxBody)}
	if r.ContentLength > rt.maxBody {
		return nil, tooLarge
	}
	var (
		body []byte
		err  error
	)
	if r.ContentLength >= 0 {
		// The length is known (and net/http reads no more): one read into
		// a buffer of that size.
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, body)
	} else {
		var buf bytes.Buffer
		_, err = buf.ReadFrom(http.MaxBytesReader(unwrapWriter(w), r.Body, rt.maxBody))
		body = buf.Bytes()
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return nil, tooLarge
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, &requestError{http.StatusRequestTimeout, "body: read timed out"}
		default:
			return nil, &requestError{http.StatusBadRequest, "body: incomplete or unreadable"}
		}
	}
	return body, nil
}

// checkJSONObject returns "" when body is one JSON object, and else a
// message saying what is wrong with it.
func checkJSONObject(body []byte) string {
	if valid, _ := jsonscan.Scan(body); valid {
		if b := bytes.TrimLeft(body, " \t\r\n"); b[0] == '{' {
			return ""
		}
	}
	var raw json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		var syn *json.SyntaxError
		switch {
		case len(bytes.TrimSpace(body)) == 0:
			return "body: empty, want a JSON object"
		case errors.As(err, &syn):
			return fmt.Sprintf("body: invalid JSON at offset %d: %s", syn.Offset, syn.Error())
		default:
			return "body: invalid JSON: " + err.Error()
		}
	}
	switch raw[0] {
	case '{':
		return ""
	case '[':
		return "body: JSON array, want an object"
	case '"':
		return "body: JSON string, want an object"
	case 't', 'f':
		return "body: JSON boolean, want an object"
	case 'n':
		return "body: JSON null, want an object"
	default:
		return "body: JSON number, want an object"
	}
}

// call runs h, turning a panic into a Fail result (answered 500 with an
// error id; the panic and its stack are logged under that id).
func (rt *route) call(ctx context.Context, h channel.Handler, m *message.Message) (res channel.Result) {
	panicked := true
	defer func() {
		if !panicked {
			return
		}
		v := recover()
		if v == http.ErrAbortHandler {
			panic(v)
		}
		errID := uuid.NewString()
		rt.log.Error("http handler panicked", "source", rt.Name(), "id", m.ID,
			"error_id", errID, "panic", v, "stack", string(debug.Stack()))
		res = channel.Result{Settle: channel.Fail, Outcome: flowerrors.KindPanic, State: store.Error, ErrorID: errID}
	}()
	res = h.Handle(ctx, m)
	panicked = false
	return res
}

// respond writes the response for a handled message.
func (rt *route) respond(w http.ResponseWriter, m *message.Message, res channel.Result) {
	// The logger gets the request's attributes only on the paths that log.
	log := func() *slog.Logger {
		return rt.log.With("source", rt.Name(), "id", m.ID, "settle", res.Settle.String(), "state", res.State)
	}
	switch res.Settle {
	case channel.Ack:
		if errors.Is(res.Err, channel.ErrIDReused) {
			log().Debug("http request refused: idempotency key reused")
			writeJSON(w, http.StatusUnprocessableEntity, errorBody{Error: IdempotencyHeader +
				": reused with a different request (method, path, query, content type or body); send a new key", ID: m.ID})
			return
		}
		if res.Outcome == flowerrors.KindWaiting {
			// A durable run parked: the message waits for a timer or a signal.
			log().Debug("http request accepted: the message waits")
			writeJSON(w, http.StatusAccepted, waitingBody{ID: m.ID, State: "waiting"})
			return
		}
		if res.Outcome == flowerrors.KindStop {
			log().Debug("http request rejected", "reason", rejectReason(res.Err))
			writeJSON(w, rt.resp.code("stop", http.StatusUnprocessableEntity), errorBody{Error: rejectReason(res.Err), ID: m.ID})
			return
		}
		if res.Outcome == flowerrors.KindDropped {
			code := rt.resp.code("drop", http.StatusNoContent)
			log().Debug("http request dropped", "reason", dropReason(res.Err))
			if bodyless(code) {
				w.WriteHeader(code)
				return
			}
			writeJSON(w, code, droppedBody{ID: m.ID, Outcome: "dropped", Reason: dropReason(res.Err)})
			return
		}
		code := rt.resp.code("ok", http.StatusOK)
		if bodyless(code) {
			w.WriteHeader(code)
			return
		}
		var out map[string]any
		if res.Message != nil {
			out = res.Message.Context
		}
		if out == nil {
			out = map[string]any{}
		}
		buf := bufs.Get().(*[]byte)
		defer bufs.Put(buf)
		body, ctype, err := rt.resp.body((*buf)[:0], out, jsonenc.Append)
		if body != nil {
			*buf = body[:0]
		}
		if err != nil {
			errID := uuid.NewString()
			log().Error("http response: encode context", "error_id", errID, "err", err)
			writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error", ErrorID: errID, ID: m.ID})
			return
		}
		if ctype == "application/json" {
			writeRaw(w, code, body)
			return
		}
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		_, _ = w.Write(body)
	case channel.Nack:
		w.Header().Set("Retry-After", retryAfter(res.RetryAfter))
		log().Debug("http request nacked", "retry_after", res.RetryAfter)
		writeJSON(w, rt.resp.code("retry", http.StatusServiceUnavailable), errorBody{Error: "temporarily unavailable", ID: m.ID})
	case channel.Fail:
		errID := res.ErrorID
		if errID == "" {
			errID = uuid.NewString()
			log().Error("http request failed", "error_id", errID, "err", res.Err)
		}
		writeJSON(w, rt.resp.code("error", http.StatusInternalServerError), errorBody{Error: "internal error", ErrorID: errID, ID: m.ID})
	case channel.Leave:
		if res.RetryAfter > 0 {
			w.Header().Set("Retry-After", retryAfter(res.RetryAfter))
		}
		log().Debug("http request left unprocessed", "err", res.Err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "not processed, retry", ID: m.ID})
	default:
		errID := uuid.NewString()
		log().Error("http response: unknown settle", "error_id", errID, "err", res.Err)
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: "internal error", ErrorID: errID, ID: m.ID})
	}
}

// droppedBody is the answer to a dropped message whose status code
// (Response.Status drop) has a body.
type droppedBody struct {
	ID      string `json:"id"`
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
}

// dropReason is the Drop error's reason.
func dropReason(err error) string {
	var d *flowerrors.DropError
	if errors.As(err, &d) {
		return d.Reason
	}
	return ""
}

// waitingBody is the answer (202) for a message that waits in state
// waiting (a durable channel's wait or long sleep step).
type waitingBody struct {
	ID    string `json:"id"`
	State string `json:"state"`
}

// bufs holds response buffers.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// rejectReason is what a 422 answer says: the Stop error's reason, else
// the error's text.
func rejectReason(err error) string {
	var stop *flowerrors.StopError
	switch {
	case errors.As(err, &stop) && stop.Reason != "":
		return stop.Reason
	case err != nil:
		return err.Error()
	}
	return "rejected"
}

// retryAfter formats d as a Retry-After value: whole seconds, rounded up,
// at least 1.
func retryAfter(d time.Duration) string {
	s := (d + time.Second - 1) / time.Second
	return strconv.FormatInt(max(int64(s), 1), 10)
}

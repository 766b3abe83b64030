package httpsource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
)

// Defaults used by NewServer for zero Config fields.
const (
	// DefaultAddr is the default Config.Addr: local connections only.
	DefaultAddr = "127.0.0.1:8080"
	// DefaultReadHeaderTimeout is the default Config.ReadHeaderTimeout.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadTimeout is the default Config.ReadTimeout.
	DefaultReadTimeout = 30 * time.Second
	// DefaultWriteTimeout is the default Config.WriteTimeout.
	DefaultWriteTimeout = 60 * time.Second
	// DefaultIdleTimeout is the default Config.IdleTimeout.
	DefaultIdleTimeout = 120 * time.Second
	// DefaultShutdownTimeout is the default Config.ShutdownTimeout.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultMaxBodyBytes is the default Config.MaxBodyBytes: 1 MiB.
	DefaultMaxBodyBytes = 1 << 20
)

// DefaultHeaders are the request headers copied into a message's meta when
// Config.Headers is nil, as "http.header.<lower-case name>".
var DefaultHeaders = []string{"User-Agent", "X-Request-Id", "X-Correlation-Id", "Traceparent", "Tracestate"}

// Reserved paths, always served by the Server itself.
const (
	// HealthPath answers 200 {"status":"ok"} while the server runs.
	HealthPath = "/healthz"
	// ReadyPath answers 200 when every route has a running handler and 503
	// listing the routes that have none otherwise.
	ReadyPath = "/readyz"
)

// Errors returned (wrapped) by Server and route methods.
var (
	// ErrDuplicateRoute means a route with the same method and path exists.
	ErrDuplicateRoute = errors.New("duplicate route")
	// ErrInvalidRoute means the method, path or an option cannot be used.
	ErrInvalidRoute = errors.New("invalid route")
	// ErrServing means Serve or ServeListener was called a second time.
	ErrServing = errors.New("server already serving")
	// ErrRunning means the route's Run was called while an earlier Run of
	// the same route had not returned.
	ErrRunning = errors.New("route already running")
)

// Config configures a Server. Zero fields take the defaults above; a
// negative timeout disables that timeout.
type Config struct {
	// Addr is the TCP address to listen on; ":0" or "127.0.0.1:0" picks a
	// free port (see Server.Addr).
	Addr string
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included: a client
	// that stalls its body longer has its connection closed and the route's
	// handler is never called.
	ReadTimeout time.Duration
	// WriteTimeout bounds the time from the end of the request headers to
	// the end of the response, so it also bounds how long a flow may run
	// for an HTTP request: set it above the slowest flow.
	WriteTimeout time.Duration
	// IdleTimeout bounds how long a keep-alive connection waits for the
	// next request.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown that ends Serve: after
	// it, connections still active are closed.
	ShutdownTimeout time.Duration
	// MaxBodyBytes limits request bodies; larger ones get 413. A route may
	// override it with WithMaxBodyBytes.
	MaxBodyBytes int64
	// Headers lists the request headers copied into every message's meta
	// as "http.header.<lower-case name>" (nil: DefaultHeaders). Routes add
	// more with WithHeaders.
	Headers []string
	// Logger receives the server's logs (nil: slog.Default()).
	Logger *slog.Logger
	// OnResponse, when set, is told of every response the server writes
	// (metrics): the server's address as configured, the route
	// ("POST /orders"; "" for a path no route serves, the health and
	// readiness paths included) and the status code.
	OnResponse func(server, route string, code int)
}

// withDefaults fills zero fields and turns negative timeouts into zero
// (which net/http reads as "no timeout").
func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	timeout := func(d *time.Duration, def time.Duration) {
		switch {
		case *d == 0:
			*d = def
		case *d < 0:
			*d = 0
		}
	}
	timeout(&c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	timeout(&c.ReadTimeout, DefaultReadTimeout)
	timeout(&c.WriteTimeout, DefaultWriteTimeout)
	timeout(&c.IdleTimeout, DefaultIdleTimeout)
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Headers == nil {
		c.Headers = DefaultHeaders
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server is one HTTP server with many routes; each route is a
// [channel.Source] of its own. Create it with NewServer, add routes with
// Route (before or after Serve starts), and run it with Serve.
//
// Besides its routes a Server answers HealthPath and ReadyPath. Unknown
// paths get 404 and a known path with another method 405 (with an Allow
// header); every response body is JSON.
//
// A Server is safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger

	mu      sync.RWMutex
	routes  map[string]map[string]*route // path -> method ("*" for any) -> route
	order   []*route                     // registration order, for /readyz
	ln      net.Listener
	serving bool
	changed chan struct{} // closed and replaced when a route's readiness changes
}

// NewServer returns a Server configured by cfg (see Config for defaults).
// It does not listen until Listen or Serve is called.
func NewServer(cfg Config) *Server {
	cfg = cfg.withDefaults()
	return &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		routes:  make(map[string]map[string]*route),
		changed: make(chan struct{}),
	}
}

// Ready reports whether every route has a running handler (what ReadyPath
// answers). A server with no routes is ready.
func (s *Server) Ready() bool {
	ready, _ := s.readiness()
	return ready
}

// WaitReady blocks until every route has a running handler, or ctx is
// done (then it returns an error wrapping ctx's).
func (s *Server) WaitReady(ctx context.Context) error {
	for {
		ready, changed := s.readiness()
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("httpsource: wait for readiness: %w", context.Cause(ctx))
		case <-changed:
		}
	}
}

// readiness reports whether all routes are ready, and a channel closed at
// the next change.
func (s *Server) readiness() (bool, <-chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, rt := range s.order {
		if !rt.ready() {
			return false, s.changed
		}
	}
	return true, s.changed
}

// notify wakes WaitReady callers after a route's readiness changed.
func (s *Server) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Route adds a route for method and path and returns it as a source: the
// route answers 503 {"error":"not ready"} until the source's Run is
// called, and again after Run's context is done.
//
// method is an HTTP method such as "POST" (case-insensitive), or "*" (or
// "") for any method not routed otherwise on the same path. path must
// begin with "/" and is matched exactly (no patterns; "/a" and "/a/" are
// different routes). HealthPath and ReadyPath are reserved. A second route
// with the same method and path is an error wrapping ErrDuplicateRoute.
func (s *Server) Route(method, path string, opts ...RouteOption) (channel.Source, error) {
	method = strings.ToUpper(strings.TrimSpace(method))
	if method == "" {
		method = "*"
	}
	if err := validRoute(method, path); err != nil {
		return nil, fmt.Errorf("httpsource: route %s %s: %w", method, path, err)
	}
	rt := &route{
		srv:     s,
		method:  method,
		path:    path,
		maxBody: s.cfg.MaxBodyBytes,
		headers: slices.Clone(s.cfg.Headers),
		log:     s.log,
	}
	for _, opt := range opts {
		if err := opt(rt); err != nil {
			return nil, fmt.Errorf("httpsource: route %s %s: %w", method, path, err)
		}
	}
	for _, h := range rt.headers {
		rt.metaKeys = append(rt.metaKeys, "http.header."+strings.ToLower(h))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	methods := s.routes[path]
	if methods == nil {
		methods = make(map[string]*route)
		s.routes[path] = methods
	}
	if _, dup := methods[method]; dup {
		return nil, fmt.Errorf("httpsource: route %s %s: %w", method, path, ErrDuplicateRoute)
	}
	methods[method] = rt
	s.order = append(s.order, rt)
	return rt, nil
}

// validRoute checks a normalized method and a path.
func validRoute(method, path string) error {
	if method != "*" {
		for _, c := range method {
			if c < '!' || c > '~' || strings.ContainsRune(`()<>@,;:\"/[]?={}`, c) {
				return fmt.Errorf("%w: method %q is not an HTTP token", ErrInvalidRoute, method)
			}
		}
	}
	switch {
	case !strings.HasPrefix(path, "/"):
		return fmt.Errorf("%w: path %q must begin with /", ErrInvalidRoute, path)
	case strings.ContainsAny(path, "?# \t\r\n"):
		return fmt.Errorf("%w: path %q must not contain a query, fragment or white space", ErrInvalidRoute, path)
	case path == HealthPath || path == ReadyPath:
		return fmt.Errorf("%w: path %q is reserved", ErrInvalidRoute, path)
	}
	return nil
}

// Listen binds the configured address without serving yet, so that Addr
// is known before Serve is called. Serve calls it when needed; calling it
// twice is a no-op.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("httpsource: listen %s: %w", s.cfg.Addr, err)
	}
	s.ln = ln
	return nil
}

// Addr returns the address the server listens on (with the port chosen
// when Config.Addr ends in ":0"), or "" before Listen or Serve.
func (s *Server) Addr() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Serve listens on Config.Addr (unless Listen already did) and serves
// until ctx is done, then shuts down gracefully: it stops accepting
// connections, waits up to Config.ShutdownTimeout for requests in flight
// to finish, closes what is left, and returns. It returns nil after a
// clean shutdown, and an error if listening or serving failed or the
// shutdown deadline passed. A Server serves once.
//
// Canceling ctx does not stop the routes' sources: requests in flight
// complete with their handler's result. Stop the sources (cancel their
// Run contexts) to refuse new requests with 503 earlier.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.RLock()
	ln := s.ln
	s.mu.RUnlock()
	return s.ServeListener(ctx, ln)
}

// ServeListener is Serve on a listener the caller opened; the server
// closes it when it returns.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return fmt.Errorf("httpsource: serve %s: %w", ln.Addr(), ErrServing)
	}
	s.serving = true
	if s.ln != nil && s.ln != ln {
		_ = s.ln.Close() // bound by Listen, replaced by the caller's
	}
	s.ln = ln
	s.mu.Unlock()

	addr := ln.Addr().String()
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("http server listening", "addr", addr)

	select {
	case err := <-errc:
		return fmt.Errorf("httpsource: serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	s.log.Info("http server shutting down", "addr", addr, "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		_ = hs.Close()
		err = fmt.Errorf("httpsource: shutdown %s: %w", addr, err)
	}
	<-errc // http.ErrServerClosed once Shutdown or Close began
	return err
}

// ServeHTTP implements http.Handler: it answers the reserved paths and
// dispatches to the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.OnResponse != nil {
		cw := statusWriters.Get().(*statusWriter)
		*cw = statusWriter{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			s.cfg.OnResponse(s.cfg.Addr, cw.route, cw.code)
			*cw = statusWriter{}
			statusWriters.Put(cw)
		}()
		w = cw
	}
	switch r.URL.Path {
	case HealthPath:
		if allowGet(w, r) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}
		return
	case ReadyPath:
		if allowGet(w, r) {
			s.serveReady(w)
		}
		return
	}
	s.mu.RLock()
	methods := s.routes[r.URL.Path]
	rt := methods[r.Method]
	if rt == nil {
		rt = methods["*"]
	}
	var allow []string
	if rt == nil && methods != nil {
		for m := range methods {
			allow = append(allow, m)
		}
	}
	s.mu.RUnlock()
	switch {
	case methods == nil:
		writeJSON(w, http.StatusNotFound, errorBody{Error: "not found"})
	case rt == nil:
		slices.Sort(allow)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method not allowed"})
	default:
		if cw, ok := w.(*statusWriter); ok {
			cw.route = rt.String()
		}
		rt.serve(w, r)
	}
}

// statusWriter remembers the status code of a response, for
// Config.OnResponse.
type statusWriter struct {
	http.ResponseWriter
	code  int
	route string
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

// WriteHeader implements http.ResponseWriter.
func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap returns the underlying writer (for http.ResponseController).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// unwrapWriter returns the writer net/http gave the server, which
// http.MaxBytesReader needs to close the connection after a body too large.
func unwrapWriter(w http.ResponseWriter) http.ResponseWriter {
	if cw, ok := w.(*statusWriter); ok {
		return cw.ResponseWriter
	}
	return w
}

// allowGet answers 405 unless r is a GET or HEAD request.
func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method not allowed"})
	return false
}

// readyBody is the JSON answer of ReadyPath.
type readyBody struct {
	Status   string   `json:"status"`
	NotReady []string `json:"not_ready,omitempty"`
}

// serveReady answers ReadyPath.
func (s *Server) serveReady(w http.ResponseWriter) {
	var notReady []string
	s.mu.RLock()
	for _, rt := range s.order {
		if !rt.ready() {
			notReady = append(notReady, rt.String())
		}
	}
	s.mu.RUnlock()
	if len(notReady) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, readyBody{Status: "not ready", NotReady: notReady})
		return
	}
	writeJSON(w, http.StatusOK, readyBody{Status: "ready"})
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error   string `json:"error"`
	ErrorID string `json:"error_id,omitempty"`
	ID      string `json:"id,omitempty"`
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// v is one of this package's own types; this cannot happen.
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	writeRaw(w, status, b)
}

// writeRaw writes body, which is JSON, with the given status.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // body's spare capacity, or a copy
}

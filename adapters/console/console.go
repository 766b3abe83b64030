package console

import (
	"crypto/subtle"
	"embed"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
)

//go:embed assets
var assets embed.FS

// Options configure a [Console].
type Options struct {
	// Channels returns the channels the console shows and steers, in
	// order. It is called on every request, so a set of channels that
	// changes (a reload) is followed. Required.
	Channels func() []*channel.Channel
	// Token is the admin token. Actions (replay, signal, bulk replay)
	// need it as "Authorization: Bearer TOKEN" and are refused (403)
	// when it is empty. Reads need it too when Addr is not a loopback
	// address.
	Token string
	// Addr is the address the console is served on (the admin address,
	// "127.0.0.1:9090"). Reads are open without a token only when its
	// host is a loopback IP or "localhost".
	Addr string
	// Interval is how often live updates (server-sent events) look for
	// changes (default 1s).
	Interval time.Duration
	// WriteTimeout bounds the write of one server-sent event: a stream
	// whose update cannot be written for that long (a browser that stopped
	// reading) is ended (default 10s).
	WriteTimeout time.Duration
	// Logger receives the console's logs (default slog.Default()).
	Logger *slog.Logger
}

// Console is the web console: an http.Handler serving the pages under
// /console/ and the JSON API under /api/ (see the package
// documentation). It is safe for concurrent use. [New] starts one
// goroutine for live updates; [Console.Close] stops it and ends the
// event streams.
type Console struct {
	opts   Options
	public bool // reads need the token
	mux    *http.ServeMux
	hub    *hub
	done   chan struct{}
	wg     sync.WaitGroup
	closed sync.Once
}

// New returns a console over the channels of opts and starts its live
// update loop. Close it when done.
func New(opts Options) *Console {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Channels == nil {
		opts.Channels = func() []*channel.Channel { return nil }
	}
	c := &Console{opts: opts, public: !Loopback(opts.Addr), hub: newHub(), done: make(chan struct{})}
	c.routes()
	c.wg.Go(c.loop)
	return c
}

// Close stops the live update loop and ends the event streams being
// served. It returns once the loop stopped; closing again does nothing.
func (c *Console) Close() {
	c.closed.Do(func() { close(c.done) })
	c.wg.Wait()
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

// Loopback reports whether addr ("host:port" or a host) is served on a
// loopback address only: a loopback IP or "localhost". An empty host
// (":9090", all interfaces) is not.
func Loopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Console) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /api/channels", c.read(c.listChannels))
	m.HandleFunc("GET /api/channels/{channel}", c.read(c.getChannel))
	m.HandleFunc("GET /api/channels/{channel}/messages", c.read(c.searchMessages))
	m.HandleFunc("GET /api/channels/{channel}/messages/events", c.read(c.messageEvents))
	m.HandleFunc("GET /api/channels/{channel}/messages/{id}", c.read(c.getMessage))
	m.HandleFunc("GET /api/channels/{channel}/messages/{id}/trace", c.read(c.getTrace))
	m.HandleFunc("GET /api/channels/{channel}/graph", c.read(c.getGraph))
	m.HandleFunc("GET /api/channels/{channel}/graph.svg", c.read(c.getGraphSVG))
	m.HandleFunc("GET /api/events", c.read(c.channelEvents))
	m.HandleFunc("GET /api/auth", c.read(c.authInfo))
	m.HandleFunc("POST /api/channels/{channel}/messages/{id}/replay", c.act(c.replay))
	m.HandleFunc("POST /api/channels/{channel}/messages/{id}/signals/{signal}", c.act(c.signal))
	m.HandleFunc("POST /api/channels/{channel}/replay", c.act(c.bulkReplay))
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path+" (see GET /api/channels)")
	})
	sub, _ := fs.Sub(assets, "assets")
	files := http.StripPrefix("/console/", http.FileServerFS(sub))
	m.Handle("GET /console/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	m.Handle("GET /console", http.RedirectHandler("/console/", http.StatusFound))
	c.mux = m
}

// tokenOK reports whether r carries the admin token.
func (c *Console) tokenOK(r *http.Request) bool {
	if c.opts.Token == "" {
		return false
	}
	want := "Bearer " + c.opts.Token
	return subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) == 1
}

// read guards a read endpoint: open on a loopback address (to a request
// naming a loopback host, so that a web page cannot reach it by DNS
// rebinding), otherwise only with the token.
func (c *Console) read(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case c.tokenOK(r):
		case r.Header.Get("Authorization") != "" && c.opts.Token != "":
			writeError(w, http.StatusUnauthorized, "wrong admin token")
			return
		case c.public && c.opts.Token == "":
			writeError(w, http.StatusForbidden, "the console is served on a non-loopback address and no admin token is set: reads are refused (set the admin token)")
			return
		case c.public:
			writeError(w, http.StatusUnauthorized, "admin token required (Authorization: Bearer TOKEN): the admin address is not loopback")
			return
		case !Loopback(r.Host):
			writeError(w, http.StatusForbidden, "request for host "+r.Host+" refused: use a loopback address (127.0.0.1, localhost) or the admin token")
			return
		}
		h(w, r)
	}
}

// act guards an action: it needs the token, always.
func (c *Console) act(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case c.opts.Token == "":
			writeError(w, http.StatusForbidden, "actions are disabled: no admin token is set")
			return
		case !c.tokenOK(r):
			writeError(w, http.StatusUnauthorized, "admin token required (Authorization: Bearer TOKEN)")
			return
		}
		h(w, r)
	}
}

// authInfo tells the pages what the token gives: GET /api/auth.
func (c *Console) authInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"token_set":        c.opts.Token != "",
		"authorized":       c.tokenOK(r),
		"reads_need_token": c.public,
	})
}

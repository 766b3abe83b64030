// Package serve runs the channels a configuration declares: it builds each
// channel's sources (HTTP routes, schedules, watched folders), flow and
// store, starts them, exposes health, readiness and Prometheus metrics on an
// admin address, and stops everything gracefully. It is what `flowrun
// serve` runs.
package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/cron"
	"github.com/svcflow/svcflow/adapters/filewatch"
	"github.com/svcflow/svcflow/adapters/httpsource"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/metrics"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/file"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
	"github.com/svcflow/svcflow/branch"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// Options configure a [Server].
type Options struct {
	// DataDir holds the default SQLite stores, one per channel (default
	// "data"). It is created when needed.
	DataDir string
	// Admin is the address of /healthz, /readyz and /metrics (default
	// 127.0.0.1:9090, loopback only; "off" disables it).
	Admin string
	// Drain bounds a graceful stop: messages still running after it are
	// canceled and left owed for the next start (default 30s).
	Drain time.Duration
	// Logger receives the logs (default slog.Default()).
	Logger *slog.Logger
}

// Server runs the channels of one configuration.
type Server struct {
	opts     Options
	log      *slog.Logger
	specs    []Spec
	channels []*channel.Channel
	stores   []store.Store
	https    map[string]*httpsource.Server // by listen address
	metrics  *metrics.Registry
	admin    *http.Server
	adminLn  net.Listener
}

// New builds the channels of cfg: flows with metrics middleware, stores,
// sources. Configuration problems come back as config.Errors with
// positions; nothing is started.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.DataDir == "" {
		opts.DataDir = "data"
	}
	if opts.Admin == "" {
		opts.Admin = "127.0.0.1:9090"
	}
	if opts.Drain <= 0 {
		opts.Drain = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	specs, err := Specs(cfg, opts.DataDir)
	if err != nil {
		return nil, err
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("serve: the configuration declares no channels (add a channels: section)")
	}
	s := &Server{opts: opts, log: opts.Logger, specs: specs, https: map[string]*httpsource.Server{}, metrics: metrics.New()}
	var errs config.Errors
	for _, sp := range specs {
		ch, err := s.build(cfg, sp)
		if err != nil {
			errs = append(errs, config.NodeError(sp.file, sp.node, "channel %s: %v", sp.Name, err))
			continue
		}
		s.channels = append(s.channels, ch)
		s.metrics.AddChannel(ch)
	}
	if len(errs) > 0 {
		s.closeStores()
		return nil, errs
	}
	return s, nil
}

func (s *Server) build(cfg *config.Config, sp Spec) (*channel.Channel, error) {
	b, ok := cfg.Builder(sp.Flow)
	if !ok {
		return nil, fmt.Errorf("unknown flow %q", sp.Flow)
	}
	f, err := b.Use(flow.Measure(s.metrics)).Build()
	if err != nil {
		return nil, err
	}
	st, err := s.openStore(sp.Store)
	if err != nil {
		return nil, err
	}
	var sources []channel.Source
	for _, src := range sp.Sources {
		cs, err := s.source(sp, src)
		if err != nil {
			return nil, fmt.Errorf("source at %s: %w", position(src.file, src.node), err)
		}
		sources = append(sources, cs)
	}
	cc := channel.Config{Name: sp.Name, Flow: f, Sources: sources, Store: st, RetryAfter: sp.RetryAfter,
		Restart: sp.Restart, Logger: s.log, NoTrace: sp.NoTrace, MaxDeliveries: sp.MaxDeliveries}
	if sp.OrderBy != "" {
		key, err := orderKey(sp.OrderBy)
		if err != nil {
			return nil, fmt.Errorf("order_by: %w", err)
		}
		cc.OrderKey = key
	}
	return channel.New(cc)
}

// OpenStore opens a store URL:
//
//	memory:      an in-memory store keeping the last store.DefaultMaxFinished
//	             finished records
//	file:DIR     a directory of JSON files (file.Open), created if needed
//	sqlite:PATH  an SQLite database (sqlite.Open), its folder created if
//	             needed; "sqlite::memory:" for an in-memory database
//	PATH.db      a bare path ending in ".db" is an SQLite database
//
// Any other URL is an error wrapping store.ErrInvalid that names its
// scheme.
func OpenStore(url string) (store.Store, error) {
	scheme, path, ok := strings.Cut(url, ":")
	switch {
	case !ok && strings.HasSuffix(url, ".db"):
		return opened(sqlite.Open(url))
	case !ok:
		return nil, &store.OpError{Store: "?", Op: "open", Err: fmt.Errorf("%w: store url %q has no scheme (want memory:, file:DIR or sqlite:PATH)", store.ErrInvalid, url)}
	}
	switch strings.ToLower(scheme) {
	case "memory", "mem":
		if path != "" {
			return nil, &store.OpError{Store: "memory", Op: "open", Err: fmt.Errorf("%w: unexpected %q after memory:", store.ErrInvalid, path)}
		}
		return store.NewMemory(store.WithMaxFinished(store.DefaultMaxFinished)), nil
	case "file":
		if path == "" {
			return nil, &store.OpError{Store: "file", Op: "open", Err: fmt.Errorf("%w: missing directory in %q", store.ErrInvalid, url)}
		}
		if err := os.MkdirAll(path, 0o755); err != nil {
			return nil, fmt.Errorf("store %s: %w", url, err)
		}
		return opened(file.Open(path))
	case "sqlite", "sqlite3":
		if path == "" {
			return nil, &store.OpError{Store: "sqlite", Op: "open", Err: fmt.Errorf("%w: missing path in %q", store.ErrInvalid, url)}
		}
		if path != ":memory:" {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return nil, fmt.Errorf("store %s: %w", url, err)
			}
		}
		return opened(sqlite.Open(path))
	}
	return nil, &store.OpError{Store: "?", Op: "open", Err: fmt.Errorf("%w: unknown store scheme %q in %q (want memory:, file: or sqlite:)", store.ErrInvalid, scheme, url)}
}

// opened returns what a store's Open returned, with no store (rather than a
// nil pointer in an interface) on error.
func opened[S store.Store](s S, err error) (store.Store, error) {
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) openStore(url string) (store.Store, error) {
	st, err := OpenStore(url)
	if err != nil {
		return nil, err
	}
	s.stores = append(s.stores, st)
	return st, nil
}

func (s *Server) source(sp Spec, src SourceSpec) (channel.Source, error) {
	switch {
	case src.HTTP != nil:
		h := src.HTTP
		srv := s.https[h.Listen]
		if srv == nil {
			srv = httpsource.NewServer(httpsource.Config{Addr: h.Listen, Logger: s.log})
			s.https[h.Listen] = srv
		}
		var opts []httpsource.RouteOption
		if h.MaxBody > 0 {
			opts = append(opts, httpsource.WithMaxBodyBytes(h.MaxBody))
		}
		return srv.Route(h.Method, h.Path, opts...)
	case src.Cron != nil:
		var opts []cron.Option
		if src.Cron.Seconds {
			opts = append(opts, cron.WithSeconds())
		}
		return cron.New(src.Cron.Spec, append(opts, cron.WithLogger(s.log))...)
	case src.Files != nil:
		fs := src.Files
		opts := []filewatch.Option{filewatch.WithLogger(s.log)}
		if fs.Glob != "" {
			opts = append(opts, filewatch.WithGlob(fs.Glob))
		}
		if fs.Done != "" {
			opts = append(opts, filewatch.WithDoneDir(fs.Done))
		}
		if fs.Failed != "" {
			opts = append(opts, filewatch.WithFailedDir(fs.Failed))
		}
		if fs.Settle > 0 {
			opts = append(opts, filewatch.WithSettleDelay(fs.Settle))
		}
		if fs.Rescan > 0 {
			opts = append(opts, filewatch.WithRescanInterval(fs.Rescan))
		}
		if err := os.MkdirAll(fs.Dir, 0o755); err != nil {
			return nil, err
		}
		return filewatch.New(fs.Dir, opts...)
	}
	return nil, errors.New("no source")
}

// orderKey compiles an order_by expression over the message payload.
func orderKey(src string) (func(*message.Message) string, error) {
	e, err := branch.Parse(src)
	if err != nil {
		return nil, err
	}
	known := map[string]reflect.Type{}
	for _, id := range e.Idents() {
		known[id] = nil
	}
	if err := e.Compile(known); err != nil {
		return nil, err
	}
	return func(m *message.Message) string {
		var env map[string]any
		if json.Unmarshal(m.Payload, &env) != nil {
			return ""
		}
		v, err := e.Eval(env)
		if err != nil || v == nil {
			return ""
		}
		return fmt.Sprint(v)
	}, nil
}

// Channels returns the channels, in declaration order.
func (s *Server) Channels() []*channel.Channel { return slices.Clone(s.channels) }

// Channel returns the named channel.
func (s *Server) Channel(name string) (*channel.Channel, bool) {
	for _, c := range s.channels {
		if c.Name() == name {
			return c, true
		}
	}
	return nil, false
}

// Metrics returns the registry behind /metrics.
func (s *Server) Metrics() *metrics.Registry { return s.metrics }

// Listen binds the HTTP sources' and the admin addresses, so that
// [Server.Addrs] is known before [Server.Run] (":0" picks free ports).
// Run calls it if needed.
func (s *Server) Listen() error {
	for addr, srv := range s.https {
		if srv.Addr() == "" {
			if err := srv.Listen(); err != nil {
				return fmt.Errorf("serve: http %s: %w", addr, err)
			}
		}
	}
	if s.opts.Admin != "off" && s.adminLn == nil {
		ln, err := net.Listen("tcp", s.opts.Admin)
		if err != nil {
			return fmt.Errorf("serve: admin %s: %w", s.opts.Admin, err)
		}
		s.adminLn = ln
	}
	return nil
}

// Addrs returns the bound addresses: "admin" and one per HTTP listen
// address as configured.
func (s *Server) Addrs() map[string]string {
	out := map[string]string{}
	for addr, srv := range s.https {
		out[addr] = srv.Addr()
	}
	if s.adminLn != nil {
		out["admin"] = s.adminLn.Addr().String()
	}
	return out
}

// Run starts everything and blocks until ctx is canceled (SIGTERM in
// flowrun), then stops gracefully: intake stops, messages in flight finish
// within the drain time, services close, stores close.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		s.closeStores()
		return err
	}
	var started []*channel.Channel
	var runErr error
	for _, ch := range s.channels {
		if err := ch.Start(ctx); err != nil {
			if ctx.Err() == nil { // else: asked to stop while starting
				runErr = err
			}
			break
		}
		started = append(started, ch)
	}
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	if runErr == nil {
		for addr, srv := range s.https {
			wg.Go(func() {
				if err := srv.Serve(serveCtx); err != nil {
					s.log.Error("http server failed", "listen", addr, "error", err)
				}
			})
		}
		if s.adminLn != nil {
			s.admin = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
			wg.Go(func() {
				if err := s.admin.Serve(s.adminLn); err != nil && err != http.ErrServerClosed {
					s.log.Error("admin server failed", "error", err)
				}
			})
		}
		s.log.Info("serving", "channels", len(s.channels), "addrs", s.Addrs())
		<-ctx.Done()
		s.log.Info("shutting down", "drain", s.opts.Drain)
	}
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.Drain)
	defer cancel()
	var errs []error
	for i := len(started) - 1; i >= 0; i-- {
		if err := started[i].Stop(drainCtx); err != nil {
			errs = append(errs, err)
		}
	}
	if s.admin != nil {
		_ = s.admin.Shutdown(drainCtx)
	} else if s.adminLn != nil {
		_ = s.adminLn.Close()
	}
	stopServing()
	wg.Wait()
	s.closeStores()
	return errors.Join(append([]error{runErr}, errs...)...)
}

// Close releases a server that will not Run (its stores). Run closes
// them itself.
func (s *Server) Close() { s.closeStores() }

func (s *Server) closeStores() {
	for _, st := range s.stores {
		if err := st.Close(); err != nil {
			s.log.Warn("closing store", "error", err)
		}
	}
	s.stores = nil
}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		var notReady []string
		var statuses []channel.Status
		for _, ch := range s.channels {
			st := ch.Status()
			statuses = append(statuses, st)
			if st.State != channel.StateRunning {
				notReady = append(notReady, st.Name)
			}
		}
		for addr, srv := range s.https {
			if !srv.Ready() {
				notReady = append(notReady, "http "+addr)
			}
		}
		code := http.StatusOK
		if len(notReady) > 0 {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, map[string]any{"ready": len(notReady) == 0, "not_ready": notReady, "channels": statuses})
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if err := s.metrics.WritePrometheus(w); err != nil {
			s.log.Warn("writing metrics", "error", err)
		}
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

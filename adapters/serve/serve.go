// Package serve runs the channels a configuration declares: it builds each
// channel's flow, sources and store, starts them, exposes health,
// readiness and Prometheus metrics on an admin address, and stops
// everything gracefully. It is what `flowrun serve` runs.
//
// Sources and stores are components (package component): serve names no
// kind of its own, it looks each `from:` and `store:` entry up in the
// configuration's component registry. A program links the components it
// imports; cmd/flowrun imports the shipped set.
//
// The admin address answers from the start of [Server.Run]: /healthz is
// 200 while the process runs (a liveness probe), before the channels
// start. /readyz is 200 once every channel runs and every HTTP route has
// its channel, and 503 (with the names not ready) while a channel starts,
// restarts its services or stops. A channel re-running the messages a
// previous process left owed is ready: it serves new messages meanwhile
// (Kubernetes readiness means "send traffic"), so /readyz stays 200 and
// lists it under "recovering", with each channel's count of owed
// messages left in its status.
//
// The admin address also takes POST
// /channels/{channel}/messages/{id}/signals/{signal} with a JSON object
// of values: the signal for a message waiting at a wait step of a
// durable channel (`durable: steps`); it answers with the message's
// state, outcome and context once its run resumed, 404 for an unknown
// channel or message, 409 when the message does not wait for that
// signal. Options.AdminToken, when set, is required as a bearer token.
//
// The admin API changes the configuration of a running server (a hot
// reload, see [Server.Apply]): GET /config answers the running
// configuration, normalized, and its fingerprint ([RunningConfig]);
// POST /apply takes a [Plan] (made by [NewPlan] against that
// fingerprint, `flowrun plan`) and POST /rollback a backup an apply
// wrote into DataDir/backups/. Those three require Options.AdminToken,
// when set, through one check (requireAdmin), and an admin address that
// is not loopback is refused without a token ([ErrAdminNotLoopback]).
//
// The admin address serves the web console too (package console): its
// pages under /console/ (/ and /console redirect there) and its JSON API under /api/.
//
// Stores are health-checked. New probes each store it opens (see
// store.Prober): one that cannot be written (a read-only folder or
// database file, a full disk) is refused with an error naming the
// channel, the store and the cause, and nothing starts. While running,
// a channel whose store writes fail reports it (channel.Status's
// StoreError) until a write or a probe, every channel.ProbeInterval,
// succeeds: /readyz answers 503 meanwhile, naming the channel under
// "not_ready" and "store_not_writable", with "store not writable: CAUSE"
// under "reasons". Every 503 of /readyz carries Retry-After.
//
// The services a configuration declares under services: run on a bus
// (package bus): it starts before the channels and stops after them, its
// sources share the channels' servers, /readyz names a service that should
// run and does not ("service NAME"; one the bus state disabled is not
// counted) and /metrics adds the svcflow_bus_* series.
//
// The components a configuration declares under production: run in a
// production (package production): it starts after the bus and before
// the channels and stops after the channels; its business services'
// sources share the channels' servers, their stores default to the
// default store named after the component, /metrics counts their
// channels like the others, the signal endpoint reaches their waiting
// messages (a business service is named like a channel there) and
// /readyz names a component that does not run ("component NAME").
package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/svcflow/svcflow/adapters/bus"
	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/console"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/metrics"
	"github.com/svcflow/svcflow/adapters/production"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/branch"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/internal/jsonenc"
	"github.com/svcflow/svcflow/internal/redact"
	"github.com/svcflow/svcflow/provide"
)

// Options configure a [Server].
type Options struct {
	// DataDir holds the default stores, one per channel (default "data").
	// It is created when a store needs it.
	DataDir string
	// DefaultStore is the store of a channel that names none, as a store
	// URL in which {data} is DataDir and {channel} the channel's name
	// (default "sqlite:{data}/{channel}.db").
	DefaultStore string
	// Admin is the address of /healthz, /readyz and /metrics (default
	// 127.0.0.1:9090, loopback only; "off" disables it).
	Admin string
	// Drain bounds a graceful stop: messages still running after it are
	// canceled and left owed for the next start (default 30s).
	Drain time.Duration
	// Logger receives the logs (default slog.Default()).
	Logger *slog.Logger
	// AdminToken, when set, is required (Authorization: Bearer TOKEN) by
	// the admin endpoints that change something (sending a signal to a
	// waiting message, apply, rollback) and by GET /config. Without it
	// the admin address must be loopback (Listen refuses another with
	// ErrAdminNotLoopback). LoadOrCreateToken keeps one in a file. The console's actions need it and are refused
	// without one; its reads need it when Admin is not loopback (see
	// package console).
	AdminToken string
	// Middleware wraps every step of every channel's flow, inside the
	// metrics middleware (tracing: a span per step attempt).
	Middleware []flow.Middleware
	// Observer observes every channel's runs (tracing: a span per run);
	// see channel.RunObserver.
	Observer channel.RunObserver
	// Channel, when set, makes [New] open the store of this channel only
	// and make only it (a tool reading one channel's messages); the
	// other channels are still checked.
	Channel string
	// ExistingStores makes [New] open only stores that exist: a missing
	// database or folder is an error naming it (component.ErrNoStore),
	// and nothing is created.
	ExistingStores bool
}

func (o Options) withDefaults() Options {
	if o.DataDir == "" {
		o.DataDir = "data"
	}
	if o.DefaultStore == "" {
		o.DefaultStore = "sqlite:{data}/{channel}.db"
	}
	if o.Admin == "" {
		o.Admin = "127.0.0.1:9090"
	}
	if o.Drain <= 0 {
		o.Drain = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Server runs the channels of one configuration.
type Server struct {
	opts      Options
	log       *slog.Logger
	channels  []*channel.Channel
	stores    []store.Store
	servers   *component.Servers // shared by the sources (HTTP servers)
	metrics   *metrics.Registry
	admin     *http.Server
	adminLn   net.Listener
	providers *provide.Container // the configuration's, closed after the channels
	bus       *bus.Built         // the services: of the configuration; nil: none
	reload    reloadState        // the running configuration and what a hot reload needs (reload.go)
	console   *console.Console   // the web console on the admin address

	production *production.Built // the production: of the configuration; nil: none
}

// Check builds every channel of cfg exactly as [New] does (flows with
// their middleware, sources, store specs, order_by expressions) and
// starts and opens nothing: a configuration that checks is one that New
// accepts, ports in use and unwritable stores aside. Problems come back as
// config.Errors, each at file:line:col, in file order. It is what
// `flowrun validate` runs.
func Check(cfg *config.Config, opts Options) error {
	_, err := build(cfg, opts, false)
	return err
}

// New builds the channels of cfg as [Check] does, then opens their stores
// and makes the channels. Configuration problems come back as
// config.Errors with positions; nothing is started.
func New(cfg *config.Config, opts Options) (*Server, error) {
	return build(cfg, opts, true)
}

// plan is one channel, built but not made.
type plan struct {
	spec    Spec
	flow    *flow.Flow
	sources []channel.Source
	sinks   []channel.Sink
	open    component.StoreOpener
	order   func(*message.Message) string
	hooks   channel.Hooks
	at      *config.Decoded
}

func build(cfg *config.Config, opts Options, open bool) (*Server, error) {
	opts = opts.withDefaults()
	s := &Server{opts: opts, log: opts.Logger, servers: &component.Servers{}, metrics: metrics.New(), providers: cfg.Providers()}
	s.metrics.AddText(s.writeServerMetrics)
	sections := cfg.Channels()
	if len(sections) == 0 && len(cfg.Services()) == 0 && len(cfg.Production()) == 0 {
		return nil, fmt.Errorf("serve: the configuration declares no channels, services or production (add a channels:, services: or production: section)")
	}
	var errs config.Errors
	var plans []plan
	seen := map[string]bool{}
	for _, sec := range sections {
		if seen[sec.Name] {
			errs = append(errs, sec.Error("channel %q declared twice", sec.Name))
			continue
		}
		seen[sec.Name] = true
		p, perrs := s.plan(cfg, sec)
		errs = append(errs, perrs...)
		if len(perrs) == 0 {
			plans = append(plans, p)
		}
	}
	built, err := s.buildBus(cfg, open)
	if err != nil {
		var berrs config.Errors
		if !errors.As(err, &berrs) {
			return nil, err
		}
		errs = append(errs, berrs...)
	}
	prod, err := s.buildProduction(cfg, open)
	if err != nil {
		var perrs config.Errors
		if !errors.As(err, &perrs) {
			if built != nil {
				_ = built.Close()
			}
			return nil, err
		}
		errs = append(errs, perrs...)
	}
	if len(errs) > 0 {
		if built != nil {
			_ = built.Close()
		}
		if prod != nil {
			_ = prod.Close()
		}
		return nil, errs.Sorted()
	}
	if !open {
		return nil, nil
	}
	s.bus = built
	s.production = prod
	for _, ch := range s.productionChannels() {
		s.metrics.AddChannel(ch)
	}
	if built != nil {
		s.metrics.AddText(built.Bus.WritePrometheus) // the svcflow_bus_* series
	}
	for _, p := range plans {
		if opts.Channel != "" && p.spec.Name != opts.Channel {
			continue
		}
		st, err := p.open()
		if err != nil {
			errs = append(errs, p.at.Errorf("store", "channel %q: %s", p.spec.Name, storeError(p.spec.Store.Component.Name, err)))
			continue
		}
		if _, err := store.Probe(context.Background(), st); err != nil {
			errs = append(errs, p.at.Errorf("store", "channel %q: %v: %s", p.spec.Name, channel.ErrStoreNotWritable, storeError(p.spec.Store.Component.Name, err)))
			if cerr := st.Close(); cerr != nil {
				s.log.Warn("closing store", "error", cerr)
			}
			continue
		}
		s.stores = append(s.stores, st)
		durable := p.spec.durable()
		if _, ok := st.(store.Journal); durable && !ok {
			errs = append(errs, p.at.Errorf("durable", "channel %q: durable: steps: store %s keeps no journal of durable runs (it does not implement store.Journal); use one that does, such as sqlite:, file: or memory:",
				p.spec.Name, p.spec.Store.Component.Name))
			continue
		}
		ch, err := channel.New(s.channelConfig(p, st))
		if err != nil {
			errs = append(errs, p.at.Errorf("", "channel %q: %v", p.spec.Name, err))
			continue
		}
		s.channels = append(s.channels, ch)
		s.metrics.AddChannel(ch)
		s.track(ch, p, st)
	}
	if len(errs) > 0 {
		s.closeStores()
		return nil, errs.Sorted()
	}
	s.setRunning(cfg)
	return s, nil
}

// channelConfig is the configuration of the channel p describes, on
// store st.
func (s *Server) channelConfig(p plan, st store.Store) channel.Config {
	return channel.Config{Name: p.spec.Name, Flow: p.flow, Sources: p.sources, Sinks: p.sinks, Store: st,
		RetryAfter: p.spec.RetryAfter, Restart: p.spec.Restart, Logger: s.log, NoTrace: !p.spec.Trace, Observer: s.opts.Observer,
		MaxDeliveries: p.spec.MaxDeliveries, MaxCrashes: p.spec.MaxCrashes, MaxInFlight: p.spec.MaxInFlight, OrderKey: p.order,
		Durable: p.spec.durable(), JournalEffects: p.spec.Durable == "effects", RestartOnChange: p.spec.OnChange == "restart",
		Redact: p.spec.Redact, Hooks: p.hooks}
}

// storeError is the text of an error of the named store, which names the
// store once: store errors (store.OpError) name it already.
func storeError(name string, err error) string {
	if msg := err.Error(); strings.HasPrefix(msg, "store "+name+": ") {
		return msg
	}
	return fmt.Sprintf("store %s: %v", name, err)
}

// plan decodes one channel and builds its parts; every problem is
// returned, positioned.
func (s *Server) plan(cfg *config.Config, sec config.Section) (plan, config.Errors) {
	p := plan{spec: Spec{Name: sec.Name}}
	// A spec with problems is still checked as far as it was read, so that
	// every problem is reported at once.
	at, err := sec.Decode(&p.spec)
	var errs config.Errors
	if err != nil && !errors.As(err, &errs) {
		return p, config.Errors{sec.Error("channel %q: %v", sec.Name, err)}
	}
	if at == nil {
		return p, errs
	}
	p.at = at
	sp := &p.spec
	env := component.Env{Name: sp.Name, Logger: s.log, DataDir: s.opts.DataDir, Servers: s.sourceServers(), Existing: s.opts.ExistingStores}.
		WithValue(component.ResponseObserver(s.metrics.ObserveResponse))
	if sp.Flow == "" {
		// none: the channel records and answers each message as it came
	} else if b, ok := cfg.Builder(sp.Flow); !ok {
		known := "the configuration declares none"
		switch names := cfg.Flows(); len(names) {
		case 0:
		case 1:
			known = "expected " + names[0]
		default:
			known = "expected one of " + strings.Join(names, ", ")
		}
		errs = append(errs, at.Errorf("flow", "channel %q: unknown flow %q: %s", sp.Name, sp.Flow, known))
	} else if f, err := b.Use(flow.Measure(s.metrics)).Use(s.opts.Middleware...).Build(); err != nil {
		errs = append(errs, at.Errorf("flow", "channel %q: flow %q: %v", sp.Name, sp.Flow, err))
	} else {
		p.flow = f
	}
	for _, h := range []struct {
		key  string
		name string
		to   **flow.Flow
	}{{"on_ok", sp.OnOK.Call, &p.hooks.OnOK}, {"on_failure", sp.OnFailure.Call, &p.hooks.OnFailure},
		{"on_reject", sp.OnReject.Call, &p.hooks.OnReject}, {"on_drop", sp.OnDrop.Call, &p.hooks.OnDrop},
		{"finally", sp.Finally.Call, &p.hooks.Finally}} {
		if h.name == "" {
			continue
		}
		b, ok := cfg.Builder(h.name)
		if !ok {
			errs = append(errs, at.Errorf(h.key, "channel %q: %s: unknown flow %q: %s", sp.Name, h.key, h.name, expectedFlows(cfg.Flows())))
			continue
		}
		f, err := b.Use(flow.Measure(s.metrics)).Use(s.opts.Middleware...).Build()
		if err != nil {
			errs = append(errs, at.Errorf(h.key, "channel %q: %s: flow %q: %v", sp.Name, h.key, h.name, err))
			continue
		}
		*h.to = f
	}
	for i, ref := range sp.From {
		if ref.IsZero() {
			continue // reported by Decode
		}
		src, err := ref.Source(env)
		if err != nil {
			errs = append(errs, at.Errorf(fmt.Sprintf("from.%d", i), "channel %q: from: %s: %v", sp.Name, ref.Component.Name, err))
			continue
		}
		p.sources = append(p.sources, src)
	}
	for i, ref := range sp.To {
		if ref.IsZero() {
			continue // reported by Decode
		}
		v, err := ref.Build(env)
		if err != nil {
			errs = append(errs, at.Errorf(fmt.Sprintf("to.%d", i), "channel %q: to: %s: %v", sp.Name, ref.Component.Name, err))
			continue
		}
		p.sinks = append(p.sinks, v.(channel.Sink))
	}
	if sp.Store.IsZero() && !at.Has("store") {
		url := strings.NewReplacer("{data}", s.opts.DataDir, "{channel}", sp.Name).Replace(s.opts.DefaultStore)
		ref, err := cfg.Components().ParseURL(component.KindStore, url)
		if err != nil {
			errs = append(errs, at.Errorf("", "channel %q: default store: %v", sp.Name, err))
		}
		sp.Store = ref
	}
	if !sp.Store.IsZero() {
		open, err := sp.Store.Store(env)
		if err != nil {
			errs = append(errs, at.Errorf("store", "channel %q: store: %s: %v", sp.Name, sp.Store.Component.Name, err))
		}
		p.open = open
	}
	switch sp.Durable {
	case "", "steps", "effects":
	default:
		errs = append(errs, at.Errorf("durable", "channel %q: durable: expected steps or effects, got %q", sp.Name, sp.Durable))
	}
	switch sp.OnChange {
	case "", "error", "restart":
	default:
		errs = append(errs, at.Errorf("on_change", "channel %q: on_change: expected error or restart, got %q", sp.Name, sp.OnChange))
	}
	if sp.OrderBy != "" {
		key, err := orderKey(sp.OrderBy)
		if err != nil {
			errs = append(errs, at.Errorf("order_by", "channel %q: order_by: %v", sp.Name, err))
		}
		p.order = key
	}
	if _, err := redact.Parse(sp.Redact); err != nil {
		errs = append(errs, at.Errorf("redact", "channel %q: %v", sp.Name, err))
	}
	return p, errs
}

// OpenStore opens a store from a URL ("sqlite:data/intake.db", "memory:",
// "file:DIR") with the components of reg (component.Default() when nil).
func OpenStore(reg *component.Registry, url string) (store.Store, error) {
	if reg == nil {
		reg = component.Default()
	}
	ref, err := reg.ParseURL(component.KindStore, url)
	if err != nil {
		return nil, err
	}
	open, err := ref.Store(component.Env{})
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", url, err)
	}
	st, err := open()
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", url, err)
	}
	return st, nil
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
		if jsonenc.Unmarshal(m.Payload, &env) != nil { // numbers keep their digits
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
func (s *Server) Channels() []*channel.Channel {
	s.reload.chMu.RLock()
	defer s.reload.chMu.RUnlock()
	return slices.Clone(s.channels)
}

// Channel returns the named channel.
func (s *Server) Channel(name string) (*channel.Channel, bool) {
	for _, c := range append(s.Channels(), s.productionChannels()...) {
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
	for key, srv := range s.servers.All() {
		if srv.Addr() == "" {
			if err := srv.Listen(); err != nil {
				return fmt.Errorf("serve: %s: %w", key, err)
			}
		}
	}
	if s.opts.Admin != "off" && s.adminLn == nil {
		if err := s.checkAdminAddr(); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", s.opts.Admin)
		if err != nil {
			return fmt.Errorf("serve: admin %s: %w", s.opts.Admin, err)
		}
		s.adminLn = ln
	}
	return nil
}

// Addrs returns the bound addresses: "admin", and one per server the
// sources share, keyed by kind and address as configured ("http
// 127.0.0.1:0").
func (s *Server) Addrs() map[string]string {
	out := map[string]string{}
	for key, srv := range s.servers.All() {
		out[key] = srv.Addr()
	}
	if s.adminLn != nil {
		out["admin"] = s.adminLn.Addr().String()
	}
	return out
}

// readyWait bounds how long a server's first requests wait for its routes
// at start; after it the server serves, and routes not ready answer 503
// with Retry-After.
const readyWait = 10 * time.Second

// Run starts everything and blocks until ctx is canceled (SIGTERM in
// flowrun), then stops gracefully: intake stops, messages in flight finish
// within the drain time, services close, stores close.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		s.closeStores()
		return err
	}
	// The admin address answers at once: /healthz while channels start
	// and recover, /readyz once they run.
	wg := &s.reload.wg
	if s.adminLn != nil {
		s.admin = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
		wg.Go(func() {
			if err := s.admin.Serve(s.adminLn); err != nil && err != http.ErrServerClosed {
				s.log.Error("admin server failed", "error", err)
			}
		})
	}
	var started []*channel.Channel
	runErr := s.startBus(ctx)
	if runErr == nil {
		runErr = s.startProduction(ctx)
	}
	for _, ch := range s.channels {
		if runErr != nil {
			break
		}
		if err := ch.Start(ctx); err != nil {
			if ctx.Err() == nil { // else: asked to stop while starting
				runErr = err
			}
			break
		}
		started = append(started, ch)
	}
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	if runErr == nil {
		s.startReloads(serveCtx)
		for key, srv := range s.servers.All() {
			// Requests wait in the listener's backlog until every route of
			// the server has its channel: none is answered "not ready".
			waitCtx, cancel := context.WithTimeout(ctx, readyWait)
			if err := srv.WaitReady(waitCtx); err != nil && ctx.Err() == nil {
				s.log.Warn("serving before every route is ready", "server", key, "error", err)
			}
			cancel()
			wg.Go(func() {
				if err := srv.Serve(serveCtx); err != nil {
					s.log.Error("server failed", "server", key, "error", err)
				}
			})
		}
		s.log.Info("serving", "channels", len(s.channels), "addrs", s.Addrs())
		<-ctx.Done()
		s.log.Info("shutting down", "drain", s.opts.Drain)
		started = s.endReloads() // the channels running now: a plan applied may have changed them
	}
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.Drain)
	defer cancel()
	var errs []error
	for i := len(started) - 1; i >= 0; i-- {
		if err := started[i].Stop(drainCtx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.stopProduction(drainCtx); err != nil {
		errs = append(errs, err)
	}
	if err := s.stopBus(drainCtx); err != nil {
		errs = append(errs, err)
	}
	if s.admin != nil {
		s.console.Close() // ends its event streams, which Shutdown would wait for
		_ = s.admin.Shutdown(drainCtx)
	} else if s.adminLn != nil {
		_ = s.adminLn.Close()
	}
	stopServing()
	wg.Wait()
	s.closeStores()
	s.closeProviders(drainCtx)
	return errors.Join(append([]error{runErr}, errs...)...)
}

// Close releases a server that will not Run (its stores, the
// configuration's providers). Run closes them itself.
func (s *Server) Close() {
	s.closeStores()
	s.closeProviders(context.Background())
}

// closeProviders closes the values of the configuration's providers:
// section, after the channels that use them stopped.
func (s *Server) closeProviders(ctx context.Context) {
	s.closeOldProviders(ctx) // of configurations a plan replaced
	if s.providers == nil {
		return
	}
	if err := s.providers.Close(ctx); err != nil {
		s.log.Warn("closing providers", "error", err)
	}
}

// writeServerMetrics writes the metrics of the shared servers that have
// some of their own (a nats source's deliveries and its consumer's
// pending count), in the Prometheus text format.
func (s *Server) writeServerMetrics(w io.Writer) error {
	all := s.servers.All()
	var errs []error
	for _, key := range s.servers.Keys() {
		if mw, ok := all[key].(interface{ WritePrometheus(io.Writer) error }); ok {
			if err := mw.WritePrometheus(w); err != nil {
				errs = append(errs, fmt.Errorf("server %s: %w", key, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (s *Server) closeStores() {
	if s.bus != nil {
		if err := s.bus.Close(); err != nil {
			s.log.Warn("closing store", "error", err)
		}
	}
	if s.production != nil {
		if err := s.production.Close(); err != nil {
			s.log.Warn("closing store", "error", err)
		}
	}
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
		var notReady, recovering, unwritable []string
		statuses := []channel.Status{}
		for _, ch := range s.Channels() {
			st := ch.Status()
			statuses = append(statuses, st)
			switch {
			case st.State != channel.StateRunning:
				notReady = append(notReady, st.Name)
			case st.StoreError != "":
				// Its deliveries are refused until a write succeeds.
				notReady = append(notReady, st.Name)
				unwritable = append(unwritable, st.Name)
			}
			if st.Recovering > 0 {
				recovering = append(recovering, st.Name)
			}
		}
		for key, srv := range s.servers.All() {
			if !srv.Ready() {
				notReady = append(notReady, key)
			}
		}
		notReady = append(notReady, s.busNotReady()...)
		notReady = append(notReady, s.productionNotReady()...)
		code := http.StatusOK
		if len(notReady) > 0 {
			code = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "1")
		}
		// Recovering is not "not ready": new messages are served while
		// owed ones run again, so traffic may come (Kubernetes readiness).
		body := map[string]any{"ready": len(notReady) == 0, "not_ready": notReady,
			"recovering": recovering, "channels": statuses}
		if len(unwritable) > 0 {
			body["store_not_writable"] = unwritable
			reasons := map[string]string{}
			for _, st := range statuses {
				if st.StoreError != "" {
					reasons[st.Name] = "store not writable: " + st.StoreError
				}
			}
			body["reasons"] = reasons
		}
		writeJSON(w, code, body)
	})
	mux.Handle("POST /channels/{channel}/messages/{id}/signals/{signal}", s.requireAdmin(http.HandlerFunc(s.signal)))
	s.adminRoutes(mux) // admin.go: the running configuration, apply and rollback
	mux.Handle("GET /metrics", s.metrics.Handler())
	channels := func() []*channel.Channel { return append(s.Channels(), s.productionChannels()...) }
	s.console = console.New(console.Options{Channels: channels, Token: s.opts.AdminToken, Addr: s.adminLn.Addr().String(), Logger: s.log})
	mux.Handle("/api/", s.console)
	mux.Handle("POST /api/", s.requireAdmin(s.console)) // the console's actions; it refuses them too when no token is set
	mux.Handle("/console/", s.console)
	mux.Handle("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
	mux.Handle("GET /console", http.RedirectHandler("/console/", http.StatusFound))
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

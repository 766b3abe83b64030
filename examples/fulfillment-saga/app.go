package fulfillmentsaga

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/svcflow/svcflow/adapters/cache"
	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/httpsource"
	"github.com/svcflow/svcflow/adapters/store/sqlite"
	"github.com/svcflow/svcflow/provide"
)

// Options configure an [App].
type Options struct {
	// Addr is where the HTTP source listens (default 127.0.0.1:8080; ":0"
	// picks a free port).
	Addr string
	// DataDir holds purchases.db (the channel's messages) and cache.db
	// (the cache provider's SQLite file). Required.
	DataDir string
	// VendorURL is the vendor API's base URL. Required.
	VendorURL string
	// CacheTTL is how long a cached tenant lives (default 10m).
	CacheTTL time.Duration
	// Logger receives the logs (default slog.Default()).
	Logger *slog.Logger
}

// App is the fulfillment extension: POST /purchases runs the purchase
// saga on the request, answers with the request's context (200), the
// vendor's refusal (422), or a failure (500) after compensating.
type App struct {
	Audit     *AuditLog
	Providers *provide.Container

	srv   *httpsource.Server
	ch    *channel.Channel
	store *sqlite.Store
}

// NewProviders returns the container of the transactions' services: the
// vendor client, and the cache in an SQLite file (opened on first use,
// closed with the container), as the fulfillment framework's
// CacheServiceProvider does.
func NewProviders(vendorURL, cacheFile string, ttl time.Duration) (*provide.Container, error) {
	c := provide.New()
	if err := provide.Value(c, &Vendor{URL: vendorURL}); err != nil {
		return nil, err
	}
	err := provide.Register[cache.Cache](c, func() (cache.Cache, error) {
		cc, err := cache.OpenSQLite(cacheFile, cache.Options{TTL: ttl})
		if err != nil {
			return nil, err
		}
		return cc, nil
	})
	return c, err
}

// New builds the app and binds its address; [App.Run] serves.
func New(opts Options) (*App, error) {
	if opts.DataDir == "" || opts.VendorURL == "" {
		return nil, errors.New("fulfillment: DataDir and VendorURL are required")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:8080"
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, err
	}
	a := &App{Audit: &AuditLog{log: opts.Logger}}
	var err error
	if a.Providers, err = NewProviders(opts.VendorURL, filepath.Join(opts.DataDir, "cache.db"), opts.CacheTTL); err != nil {
		return nil, err
	}
	f, err := NewPurchaseSaga(a.Providers, a.Audit)
	if err != nil {
		return nil, err
	}
	a.srv = httpsource.NewServer(httpsource.Config{Addr: opts.Addr, Logger: opts.Logger})
	route, err := a.srv.Route("POST", "/purchases")
	if err != nil {
		return nil, err
	}
	if a.store, err = sqlite.Open(filepath.Join(opts.DataDir, "purchases.db")); err != nil {
		return nil, err
	}
	a.ch, err = channel.New(channel.Config{Name: "purchases", Flow: f, Sources: []channel.Source{route}, Store: a.store, Logger: opts.Logger})
	if err == nil {
		err = a.srv.Listen()
	}
	if err != nil {
		return nil, errors.Join(err, a.store.Close())
	}
	return a, nil
}

// Addr returns the address the HTTP source listens on.
func (a *App) Addr() string { return a.srv.Addr() }

// Channel returns the channel of the purchase requests.
func (a *App) Channel() *channel.Channel { return a.ch }

// Run serves until ctx is done, then stops the channel (in-flight requests
// finish), and closes the store and the providers.
func (a *App) Run(ctx context.Context) error {
	err := a.ch.Start(ctx)
	if err == nil {
		// Serve once the route has its handler: before, it answers 503.
		err = a.srv.WaitReady(ctx)
	}
	serveCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	if err == nil {
		go func() { done <- a.srv.Serve(serveCtx) }()
		<-ctx.Done()
	} else {
		done <- nil
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if serr := a.ch.Stop(stopCtx); serr != nil {
		err = errors.Join(err, fmt.Errorf("stop channel: %w", serr))
	}
	stop()
	err = errors.Join(err, <-done, a.store.Close(), a.Providers.Close(stopCtx))
	return err
}

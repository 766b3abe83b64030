package nats

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// endpoint is one component's connection to NATS: the embedded server it
// holds, if it names no URL, and a client connection, opened by its first
// holder and closed after its last.
//
// It is a component.Server: `flowrun serve` opens it before the channels
// start (so a bad URL or a stream that differs from its declaration fails
// the start, naming them), reports its connection in /readyz and its
// counters in /metrics (through the group of the configuration's nats
// sources), and closes it after the channels stopped.
type endpoint struct {
	name    string // what logs and errors call it
	where   where
	dataDir string
	log     *slog.Logger
	setup   func(ctx context.Context, js jetstream.JetStream) error // run at each open; nil for none

	mu     sync.Mutex
	holds  int
	served bool // Listen holds it until Serve ends
	emb    *embedded
	nc     *natsgo.Conn
	js     jetstream.JetStream
}

// acquire opens the endpoint when nobody holds it and returns its
// JetStream context; each acquire is paired with a release.
func (e *endpoint) acquire(ctx context.Context) (jetstream.JetStream, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.holds > 0 {
		e.holds++
		return e.js, nil
	}
	urls, err := e.where.urls()
	if err != nil {
		return nil, err
	}
	opts := []natsgo.Option{
		natsgo.Name("svcflow " + e.name),
		natsgo.Timeout(5 * time.Second),
		natsgo.MaxReconnects(-1),
		natsgo.CustomReconnectDelay(reconnectDelay),
		natsgo.DisconnectErrHandler(func(_ *natsgo.Conn, err error) {
			if err != nil {
				e.log.Warn("nats disconnected; reconnecting", "endpoint", e.name, "error", err)
			}
		}),
		natsgo.ReconnectHandler(func(c *natsgo.Conn) {
			e.log.Info("nats reconnected", "endpoint", e.name, "url", c.ConnectedUrlRedacted())
		}),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
			e.log.Warn("nats error", "endpoint", e.name, "error", err)
		}),
	}
	var emb *embedded
	target := strings.Join(urls, ",")
	if len(urls) == 0 {
		emb, err = acquireEmbedded(e.embeddedDir(), e.where.Listen, e.log)
		if err != nil {
			return nil, err
		}
		target = emb.url()
		opts = append(opts, natsgo.InProcessServer(emb.srv))
	}
	nc, err := natsgo.Connect(target, opts...)
	if err != nil {
		if emb != nil {
			emb.release()
		}
		return nil, fmt.Errorf("nats: connect %s: %w", target, err)
	}
	js, err := jetstream.New(nc)
	if err == nil && e.setup != nil {
		err = e.setup(ctx, js)
	}
	if err != nil {
		nc.Close()
		if emb != nil {
			emb.release()
		}
		return nil, err
	}
	e.holds, e.emb, e.nc, e.js = 1, emb, nc, js
	return js, nil
}

// embeddedDir is where the embedded server stores: under the data folder
// given, or, for a component built without one (a step), the server the
// process runs already.
func (e *endpoint) embeddedDir() string {
	if e.dataDir == "" {
		return ""
	}
	return storeDir(e.dataDir)
}

// release drops a hold; the last closes the connection and releases the
// embedded server.
func (e *endpoint) release() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.holds == 0 {
		return
	}
	e.holds--
	if e.holds > 0 {
		return
	}
	e.nc.Close()
	if e.emb != nil {
		e.emb.release()
	}
	e.nc, e.js, e.emb = nil, nil, nil
}

// conn returns the connection while the endpoint is held.
func (e *endpoint) conn() *natsgo.Conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nc
}

// reconnectDelay is the backoff between reconnection attempts: 100ms
// doubling to 5s.
func reconnectDelay(attempts int) time.Duration {
	d := 100 * time.Millisecond
	for range min(attempts, 6) {
		d *= 2
	}
	return min(d, 5*time.Second)
}

// Listen opens the endpoint (component.Server): it starts the embedded
// server or connects, and makes or checks the stream and consumer. The
// endpoint stays open until Serve returns.
func (e *endpoint) Listen() error {
	e.mu.Lock()
	served := e.served
	e.mu.Unlock()
	if served {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.acquire(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	e.served = true
	e.mu.Unlock()
	return nil
}

// Addr returns the URL connected to ("" when closed).
func (e *endpoint) Addr() string {
	if nc := e.conn(); nc != nil {
		return nc.ConnectedUrlRedacted()
	}
	return ""
}

// Serve keeps the endpoint open until ctx ends (serve cancels it after
// the channels stopped).
func (e *endpoint) Serve(ctx context.Context) error {
	<-ctx.Done()
	e.mu.Lock()
	served := e.served
	e.served = false
	e.mu.Unlock()
	if served {
		e.release()
	}
	return nil
}

// Ready reports whether the connection is up.
func (e *endpoint) Ready() bool {
	nc := e.conn()
	return nc != nil && nc.IsConnected()
}

// WaitReady returns once the connection is up, or with ctx's error.
func (e *endpoint) WaitReady(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !e.Ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

package nats

import (
	"context"
	"log/slog"
	"sync"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Conn is a connection to NATS made by [Connect] for code outside this
// package (the nats backend of node persistence, adapters/kv/natskv).
type Conn struct {
	ep   *endpoint
	js   jetstream.JetStream
	once sync.Once
}

// Connect connects to the servers at urls (nats://host:4222, one or
// several, comma-separated also works), or, with none, to the nats-server
// embedded in this process with JetStream stored under dataDir/nats: the
// same server the nats sources, sinks and bus transport of the process
// use, started on listen (default 127.0.0.1:4222; port 0: any free port)
// when none runs there yet and shut down after its last user. A dataDir
// of "" means the embedded server the process runs already, when it runs
// exactly one, else one under ./data/nats. name is what logs call the
// connection; log may be nil.
func Connect(ctx context.Context, name string, urls []string, listen, dataDir string, log *slog.Logger) (*Conn, error) {
	if log == nil {
		log = slog.Default()
	}
	if listen == "" {
		listen = "127.0.0.1:4222"
	}
	w := where{URL: urls, Listen: listen}
	if err := w.check(); err != nil {
		return nil, err
	}
	ep := &endpoint{name: name, where: w, dataDir: dataDir, log: log}
	js, err := ep.acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &Conn{ep: ep, js: js}, nil
}

// JetStream returns the connection's JetStream context.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// NATS returns the client connection (nil after Close).
func (c *Conn) NATS() *natsgo.Conn { return c.ep.conn() }

// Close closes the connection and releases the embedded server, which
// shuts down when nothing else of the process uses it. Closing twice is
// harmless.
func (c *Conn) Close() {
	c.once.Do(c.ep.release)
}

// CheckWhere checks urls and, with none, the embedded server's listen
// address ("" is the default) as [Connect] would, without connecting; an
// error names the field (url or listen) for the configuration reader.
func CheckWhere(urls []string, listen string) error {
	if listen == "" {
		listen = "127.0.0.1:4222"
	}
	return where{URL: urls, Listen: listen}.check()
}

package nats

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// embedded is an in-process nats-server with JetStream, shared by every
// component of the process that names no url and the same store folder:
// started by its first user, shut down after its last.
type embedded struct {
	dir    string // JetStream's store folder
	listen string // as configured
	srv    *server.Server
	refs   int
}

// embeddedServers are the process's embedded servers by store folder.
var embeddedServers = struct {
	sync.Mutex
	m map[string]*embedded
}{m: map[string]*embedded{}}

// storeDir is the JetStream folder of the embedded server under a data
// folder ("" means the serve default, ./data).
func storeDir(dataDir string) string {
	if dataDir == "" {
		dataDir = "data"
	}
	return filepath.Join(dataDir, "nats")
}

// acquireEmbedded returns the embedded server storing under dir, started
// on listen when none runs there yet. With dir "" it is the server the
// process runs already, when it runs exactly one (a step built without a
// data folder inside `flowrun serve`), else one under ./data/nats.
func acquireEmbedded(dir, listen string, log *slog.Logger) (*embedded, error) {
	embeddedServers.Lock()
	defer embeddedServers.Unlock()
	if dir == "" {
		if len(embeddedServers.m) == 1 {
			for _, e := range embeddedServers.m {
				e.refs++
				return e, nil
			}
		}
		dir = storeDir("")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded nats server: store %s: %w", dir, err)
	}
	if e := embeddedServers.m[abs]; e != nil {
		if e.listen != listen {
			return nil, fmt.Errorf("embedded nats server under %s: listen %q differs from %q, where it runs already: one server per store folder", dir, listen, e.listen)
		}
		e.refs++
		return e, nil
	}
	srv, err := startEmbedded(abs, listen, log)
	if err != nil {
		return nil, err
	}
	e := &embedded{dir: abs, listen: listen, srv: srv, refs: 1}
	embeddedServers.m[abs] = e
	return e, nil
}

// release drops one reference; the last shuts the server down.
func (e *embedded) release() {
	embeddedServers.Lock()
	e.refs--
	last := e.refs == 0
	if last {
		delete(embeddedServers.m, e.dir)
	}
	embeddedServers.Unlock()
	if last {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
}

// url is the embedded server's client URL.
func (e *embedded) url() string { return e.srv.ClientURL() }

// startEmbedded starts a nats-server with JetStream on listen (port 0: a
// free port), storing under dir, and waits until it takes connections.
func startEmbedded(dir, listen string, log *slog.Logger) (*server.Server, error) {
	host, port, err := splitListen(listen)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "svcflow",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		// The HTTP monitoring and cluster ports stay closed.
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats server on %s: %w", listen, err)
	}
	srv.SetLoggerV2(serverLog{log}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats server on %s (store %s): not ready after 30s (is the address in use?)", listen, dir)
	}
	log.Info("embedded nats server listening", "url", srv.ClientURL(), "store", dir)
	return srv, nil
}

// splitListen checks a host:port address without binding it.
func splitListen(listen string) (string, int, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("listen %q: expected host:port, such as 127.0.0.1:4222", listen)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("listen %q: port %q is not a number from 0 to 65535", listen, p)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// serverLog sends nats-server's logs to slog: notices at debug level (its
// start-up banner is long), warnings and errors as such.
type serverLog struct{ l *slog.Logger }

func (s serverLog) Noticef(format string, v ...any) {
	s.l.Debug("nats-server: " + fmt.Sprintf(format, v...))
}
func (s serverLog) Warnf(format string, v ...any) {
	s.l.Warn("nats-server: " + fmt.Sprintf(format, v...))
}
func (s serverLog) Fatalf(format string, v ...any) {
	s.l.Error("nats-server: " + fmt.Sprintf(format, v...))
}
func (s serverLog) Errorf(format string, v ...any) {
	s.l.Error("nats-server: " + fmt.Sprintf(format, v...))
}
func (s serverLog) Debugf(format string, v ...any) {}
func (s serverLog) Tracef(format string, v ...any) {}

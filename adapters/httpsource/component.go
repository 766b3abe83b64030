package httpsource

import (
	"fmt"
	"net"
	"strconv"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
)

// Spec is the configuration of an HTTP route as a channel's source:
//
//	from: {http: {listen: "127.0.0.1:8080", path: /orders, method: POST, max_body: 1048576}}
//	from: {http: /orders}      # the path alone: every other key takes its default
//	from: {http: {path: /orders, response: {keys: [id, total], status: {ok: 201}}}}
//
// The answer to a done message is its output context without meta, unless
// response: says otherwise (see [Response]).
//
// Routes of every channel that name the same listen address share one
// server.
type Spec struct {
	Listen  string `yaml:"listen" default:"127.0.0.1:8080" doc:"the address to listen on, host:port (port 0: any free port)"`
	Path    string `yaml:"path" spec:"required,scalar" doc:"the route's path, matched exactly; begins with /"`
	Method  string `yaml:"method" default:"POST" doc:"the HTTP method, or * for any"`
	MaxBody int64  `yaml:"max_body" doc:"the largest accepted body in bytes (0: the server's default, 1 MiB)"`
	// Response shapes the answers (default: the output context without
	// meta; 422 for a rejection, 204 for a drop).
	Response Response `yaml:"response" doc:"shape the answers: keys: [...] or template: ..., include_meta, content_type, status: {ok, stop, drop, error, retry}"`
}

// Component is the http source component: a route on the HTTP server of
// its listen address.
var Component = component.Source("http", "HTTP requests to a route: the body is the payload; the answer is the run's outcome",
	func(env component.Env, s Spec) (channel.Source, error) {
		if err := checkListen(s.Listen); err != nil {
			return nil, err
		}
		srv, err := env.Server("http "+s.Listen, func() (component.Server, error) {
			cfg := Config{Addr: s.Listen, Logger: env.Logger}
			if obs, ok := component.Value[component.ResponseObserver](env); ok {
				cfg.OnResponse = obs
			}
			return NewServer(cfg), nil
		})
		if err != nil {
			return nil, err
		}
		hs, ok := srv.(*Server)
		if !ok {
			return nil, fmt.Errorf("listen %s: the address is taken by a %T, not an HTTP server", s.Listen, srv)
		}
		var opts []RouteOption
		if s.MaxBody > 0 {
			opts = append(opts, WithMaxBodyBytes(s.MaxBody))
		}
		if _, err := s.Response.compile(); err != nil {
			return nil, fmt.Errorf("response: %w", err)
		}
		opts = append(opts, WithResponse(s.Response))
		return hs.Route(s.Method, s.Path, opts...)
	})

// checkListen checks a listen address without binding it.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen %q: expected host:port, such as 127.0.0.1:8080: %w", addr, ErrInvalidRoute)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("listen %q: port %q is not a number from 0 to 65535: %w", addr, port, ErrInvalidRoute)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("listen %q: host %q is not an IP address or a host name: %w", addr, host, ErrInvalidRoute)
	}
	return nil
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, c := range h {
		if !(c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func init() { component.Register(Component) }

package httpsource

import (
	"fmt"
	"slices"

	"github.com/svcflow/svcflow/adapters/component"
)

// Adopt moves the routes of other, a Server built for a new
// configuration that does not serve (a hot reload of `flowrun serve`),
// into s, atomically: from the moment Adopt returns, requests go to
// other's routes. A route of s with the same method and path is replaced:
// the requests it already took finish with its handler (those it took
// when its handler had stopped go to its successor), it takes no new
// one, and it no longer counts for readiness. other's routes are added
// to s in their order; other is left empty. other must be a *Server that
// never served; it is not changed on error.
func (s *Server) Adopt(other component.Server) error {
	o, ok := other.(*Server)
	if !ok {
		return fmt.Errorf("httpsource: adopt: expected a *httpsource.Server, got %T", other)
	}
	if o == s {
		return nil
	}
	o.mu.Lock()
	if o.serving {
		o.mu.Unlock()
		return fmt.Errorf("httpsource: adopt: the other server serves already: %w", ErrServing)
	}
	moved := o.order
	o.order, o.routes = nil, make(map[string]map[string]*route)
	if o.ln != nil {
		_ = o.ln.Close() // bound by Listen for nothing
		o.ln = nil
	}
	o.mu.Unlock()

	s.mu.Lock()
	for _, rt := range moved {
		rt.mu.Lock()
		rt.srv = s
		rt.mu.Unlock()
		methods := s.routes[rt.path]
		if methods == nil {
			methods = make(map[string]*route)
			s.routes[rt.path] = methods
		}
		if old := methods[rt.method]; old != nil {
			s.order = slices.DeleteFunc(s.order, func(r *route) bool { return r == old })
			old.mu.Lock()
			old.next = rt // requests it took once its Run ended go on to rt
			old.mu.Unlock()
		}
		methods[rt.method] = rt
		s.order = append(s.order, rt)
	}
	s.mu.Unlock()
	s.notify()
	return nil
}

// Detach removes the route from its server, when it is still the
// server's route for its method and path: new requests for it get 404
// (or another method's route) while the requests it took finish with its
// handler. It is for a channel removed from a running configuration;
// the route cannot be added back.
func (rt *route) Detach() {
	rt.mu.Lock()
	s := rt.srv
	rt.mu.Unlock()
	s.mu.Lock()
	if methods := s.routes[rt.path]; methods[rt.method] == rt {
		delete(methods, rt.method)
		if len(methods) == 0 {
			delete(s.routes, rt.path)
		}
		s.order = slices.DeleteFunc(s.order, func(r *route) bool { return r == rt })
	}
	s.mu.Unlock()
	s.notify()
}

// Routes returns the number of routes the server has.
func (s *Server) Routes() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.order)
}

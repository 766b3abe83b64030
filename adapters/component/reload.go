package component

// Adopter is a [Server] that can take over, while it serves, the routes
// of a server of its kind and address built for a new configuration:
// what `flowrun serve` does when a plan is applied (a hot reload). The
// HTTP source's server is one: the routes of other replace its own of
// the same method and path atomically. A server that is no Adopter
// cannot have the sources of a running configuration changed: the apply
// is refused, naming it.
type Adopter interface {
	Adopt(other Server) error
}

// Detacher is a source that holds a place in a shared server (an HTTP
// route): Detach gives the place up, for a channel removed from a
// running configuration (new requests get 404 while those taken finish).
type Detacher interface {
	Detach()
}

// Add adds srv under key, unless a server is there already; it reports
// whether srv was added (serve's hot reload: a server the new
// configuration needs that the running one had not).
func (s *Servers) Add(key string, srv Server) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[key]; ok {
		return false
	}
	if s.m == nil {
		s.m = map[string]Server{}
	}
	s.m[key] = srv
	return true
}

// Remove removes the server under key (serve's hot reload: a server no
// channel uses any more, stopped by whoever served it).
func (s *Servers) Remove(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

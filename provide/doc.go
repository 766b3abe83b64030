// Package provide is a small typed container of the values services are
// given: a cache, a client, a configuration, a logger. It is the service
// container of the fulfillment framework, in Go: providers are plain
// constructors keyed by the Go type they return (and an optional name),
// their parameters are the values they depend on, and the container only
// wires them.
//
//	c := provide.New()
//	provide.Register[*Config](c, loadConfig)                      // func() (*Config, error)
//	provide.Register[cache.Cache](c, func(cfg *Config) (cache.Cache, error) { ... })
//	provide.Register[*Audit](c, newAudit, provide.PerRun())        // one per run, closed after it
//
// A flow given the container ([flow.Builder.Provide]) injects provided
// values into the input fields of its [flow.Func] steps that carry a
// provide tag (`provide:""`, or `provide:"name"` for a named provider).
// The flow's build checks that every such field has a provider, that
// every provider's dependencies have one, and that none depends on
// itself: a missing provider or a cycle is a build error naming the step
// and the type.
//
// # Scopes
//
// A singleton (the default) is constructed once, on first use, and
// shared by every run; it is closed by [Container.Close]. A per-run value
// ([PerRun]) is constructed at most once per run, on first use within it,
// and closed when the run ends. Values are closed in reverse order of
// construction: with [WithClose], or their own Close method (Close() error,
// or Close(context.Context) error). A singleton may not depend on a
// per-run value.
//
// # Costs
//
// Registration and checks use reflection; a run does not. A singleton is
// one atomic load per use once constructed; constructing a value calls its
// constructor directly when it takes no dependencies (or only a
// context.Context), through reflection otherwise.
package provide

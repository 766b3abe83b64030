// Package component is the one way to add a source, a store, a step, a
// sink, a provider or a bus transport to svcflow: a component is a kind, a name, a typed
// spec and a constructor from spec to value, registered in a [Registry].
// Configurations name components; the packages that read them
// (adapters/config, adapters/serve) look them up here and name no kind of
// their own.
//
//	type Spec struct {
//		Path   string `yaml:"path" spec:"required,scalar" doc:"the route's path"`
//		Listen string `yaml:"listen" default:"127.0.0.1:8080" doc:"host:port"`
//	}
//
//	var Component = component.Source("http", "HTTP requests to a route",
//		func(env component.Env, s Spec) (channel.Source, error) { ... })
//
//	func init() { component.Register(Component) }
//
// The spec is a plain struct whose tags say how YAML fills it (see
// [Field]): one decoder, in adapters/config, reads every spec with the
// same errors flows get: file:line:col, unknown keys with a "did you
// mean", wrong types, bad durations, missing required keys, all at once
// and in file order. The same tags give `flowrun services` its catalog
// and `flowrun schema` the JSON Schema of each component.
//
// # Steps
//
// A step component's constructor makes the service of one step of a YAML
// flow, named env.Name ([Step]). Its spec reads the run's context through
// [Expr] and [Cond] (expr-lang expressions), [Template] (text/templates
// with the configuration's functions) and [Key] (a key's name), parsed
// when the file is read and reported at their line and column; [Pairs]
// keeps a mapping in the order written, and an inline field makes the
// whole mapping the spec (`set: {total: "..."}`). A spec may name its steps
// ([StepNamer]); a constructor points an error at a field with
// [FieldError]; a restricted component ([Component.Restrict]) is off unless
// enabled; [Env.WithValue] and [Value] carry what the reader provides
// (the http step's client). The built-in step kinds are in adapters/steps.
//
// # Build, then start
//
// A constructor checks its spec and returns a value that has opened
// nothing: a source listens or watches only when its channel runs it
// (shared listeners, such as the HTTP server behind many routes, are
// [Server]s that serve starts), and a store component returns a
// [StoreOpener] called when the channel is made. So `flowrun validate`
// builds every component exactly as `flowrun serve` does, and starts,
// opens and creates nothing.
//
// # Registries
//
// Component packages register themselves in [Default] from init
// functions, as database/sql drivers do: a program links the components
// it imports. Package adapters/component/all imports every shipped one,
// the built-in step kinds included (cmd/flowrun uses it); a program that
// needs only some imports those.
// A [Registry] of one's own, given to config.WithComponents, holds
// exactly what it is given. The memory store ([MemoryStore]) and the null
// store ([NoneStore]) are in Default always.
//
// # Who owns what
//
// A constructor's result belongs to whoever built it: serve builds a
// channel's sources and store for that channel alone, closes the stores
// it opened, and starts and stops the shared servers.
package component

package cache

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/provide"
)

// Spec is the configuration of a cache provider:
//
//	providers:
//	  cache: {cache: {backend: sqlite, path: cache.db, ttl: 10m}}
//	  scratch: {cache: {ttl: 30s}}          # in memory
type Spec struct {
	Backend string        `yaml:"backend" default:"memory" enum:"memory,sqlite" doc:"where values live: memory (lost on exit) or sqlite (a file that outlives restarts)"`
	Path    string        `yaml:"path" doc:"the SQLite file of backend sqlite; a relative path is in the data folder of the configuration (the working directory unless set); default <name>.cache.db; :memory: for one in memory"`
	TTL     time.Duration `yaml:"ttl" doc:"how long a value lives unless put with its own ttl (0: until deleted)"`
}

// Component is the cache provider component: it provides a [Cache] (a
// singleton, closed with its container), opened on first use.
var Component = component.Provider("cache", "a key-value cache with expiry, in memory or in an SQLite file, for Func inputs of type cache.Cache",
	func(env component.Env, s Spec) (any, error) {
		if s.TTL < 0 {
			return nil, component.FieldErrorf("ttl", "must not be negative, got %s", s.TTL)
		}
		opts := Options{TTL: s.TTL}
		var open func(context.Context) (Cache, error)
		switch s.Backend {
		case "", "memory":
			if s.Path != "" {
				return nil, component.FieldErrorf("path", "only backend sqlite has a path")
			}
			open = func(context.Context) (Cache, error) { return NewMemory(opts), nil }
		case "sqlite":
			path := s.Path
			if path == "" {
				path = env.Name + ".cache.db"
			}
			if path != ":memory:" && !filepath.IsAbs(path) && env.DataDir != "" {
				path = filepath.Join(env.DataDir, path)
			}
			open = func(context.Context) (Cache, error) {
				if path != ":memory:" {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						return nil, err
					}
				}
				c, err := OpenSQLite(path, opts)
				if err != nil {
					return nil, err // not a nil *SQLite in the interface
				}
				return c, nil
			}
		default:
			return nil, component.FieldErrorf("backend", "unknown backend %q: expected memory or sqlite", s.Backend)
		}
		return provide.Define[Cache](open)
	})

func init() { component.Register(Component) }

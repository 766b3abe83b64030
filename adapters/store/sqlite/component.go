package sqlite

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/store"
)

// Spec is the configuration of an SQLite store:
//
//	store: sqlite:data/intake.db
//	store: sqlite:data/intake.db?sync=full
//	store: {sqlite: {path: data/intake.db, sync: full}}
//
// Options may follow the path after a '?' (sync, batch, wait: see
// [ParseDSN]) or be given as fields; a field set to other than its
// default wins over the same option in the path.
type Spec struct {
	Path     string        `yaml:"path" spec:"required,scalar,path" doc:"the database file, relative to the configuration file's folder (its folder is created); :memory: for a database in memory; options may follow a '?': sync=full, batch=N, wait=DURATION"`
	Sync     string        `yaml:"sync" default:"normal" doc:"normal: a write that returned survives a crash of the process; full: it survives a power loss too, at the cost of an fsync per batch of writes"`
	MaxBatch int           `yaml:"max_batch" default:"256" doc:"the most writes one transaction commits (writes of concurrent callers are committed together)"`
	MaxWait  time.Duration `yaml:"max_wait" doc:"how long a batch that is not full waits for more writes (unset: it does not wait)"`
}

// options returns the database path and the options s gives.
func (s Spec) options() (string, Options, error) {
	path, o, err := ParseDSN(s.Path)
	if err != nil {
		return "", o, err
	}
	if s.Sync != "" && s.Sync != string(SyncNormal) {
		o.Sync = Sync(s.Sync)
	}
	if s.MaxBatch != 0 && s.MaxBatch != DefaultMaxBatch {
		o.MaxBatch = s.MaxBatch
	}
	if s.MaxWait != 0 {
		o.MaxWait = s.MaxWait
	}
	o, err = o.withDefaults()
	return path, o, err
}

// Component is the sqlite store component.
var Component = component.Store("sqlite", "messages in an SQLite database file: survives restarts and crashes (the default store of serve); concurrent writes are group-committed",
	func(env component.Env, s Spec) (component.StoreOpener, error) {
		path, opts, err := s.options()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", component.ErrInvalid, err)
		}
		if path == "" {
			return nil, fmt.Errorf("empty path: %w", component.ErrInvalid)
		}
		return func() (store.Store, error) {
			if env.Existing && path != ":memory:" {
				if _, err := os.Stat(path); err != nil {
					return nil, fmt.Errorf("%w: %s: %w (nothing was created)", component.ErrNoStore, path, err)
				}
			}
			if path != ":memory:" {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					return nil, err
				}
			}
			st, err := OpenOptions(path, opts)
			if err != nil {
				return nil, err // not a nil *Store in the interface
			}
			return st, nil
		}, nil
	})

func init() { component.Register(Component) }

package sqlite

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/store"
)

// Spec is the configuration of an SQLite store:
//
//	store: sqlite:data/intake.db
//	store: {sqlite: {path: data/intake.db}}
type Spec struct {
	Path string `yaml:"path" spec:"required,scalar,path" doc:"the database file, relative to the configuration file's folder (its folder is created); :memory: for a database in memory"`
}

// Component is the sqlite store component.
var Component = component.Store("sqlite", "messages in an SQLite database file: survives restarts and crashes (the default store of serve)",
	func(env component.Env, s Spec) (component.StoreOpener, error) {
		if s.Path == "" {
			return nil, fmt.Errorf("empty path: %w", component.ErrInvalid)
		}
		return func() (store.Store, error) {
			if env.Existing && s.Path != ":memory:" {
				if _, err := os.Stat(s.Path); err != nil {
					return nil, fmt.Errorf("%w: %s: %w (nothing was created)", component.ErrNoStore, s.Path, err)
				}
			}
			if s.Path != ":memory:" {
				if err := os.MkdirAll(filepath.Dir(s.Path), 0o755); err != nil {
					return nil, err
				}
			}
			st, err := Open(s.Path)
			if err != nil {
				return nil, err // not a nil *Store in the interface
			}
			return st, nil
		}, nil
	})

func init() { component.Register(Component) }

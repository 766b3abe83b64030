package file

import (
	"fmt"
	"os"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/store"
)

// Spec is the configuration of a file store:
//
//	store: file:data/intake
//	store: file:data/intake?sync=full
//	store: {file: {dir: data/intake, sync: full}}
type Spec struct {
	Dir  string `yaml:"dir" spec:"required,scalar,path" doc:"the folder of the JSON files, one per message, relative to the configuration file's folder (created if missing); ?sync=full may follow"`
	Sync string `yaml:"sync" default:"normal" doc:"normal: a write that returned survives a crash of the process; full: it survives a power loss too, at the cost of an fsync of the folder per group of writes"`
}

// Component is the file store component.
var Component = component.Store("file", "messages as JSON files in a folder, one per message",
	func(env component.Env, s Spec) (component.StoreOpener, error) {
		dir, opts, err := ParseDSN(s.Dir)
		if err == nil && s.Sync != "" && s.Sync != string(SyncNormal) {
			opts, err = Options{Sync: Sync(s.Sync)}.withDefaults()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", component.ErrInvalid, err)
		}
		if dir == "" {
			return nil, fmt.Errorf("empty folder: %w", component.ErrInvalid)
		}
		return func() (store.Store, error) {
			if env.Existing {
				if _, err := os.Stat(dir); err != nil {
					return nil, fmt.Errorf("%w: %s: %w (nothing was created)", component.ErrNoStore, dir, err)
				}
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
			st, err := OpenOptions(dir, opts)
			if err != nil {
				return nil, err // not a nil *Store in the interface
			}
			return st, nil
		}, nil
	})

func init() { component.Register(Component) }

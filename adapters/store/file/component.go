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
//	store: {file: {dir: data/intake}}
type Spec struct {
	Dir string `yaml:"dir" spec:"required,scalar,path" doc:"the folder of the JSON files, one per message, relative to the configuration file's folder (created if missing)"`
}

// Component is the file store component.
var Component = component.Store("file", "messages as JSON files in a folder, one per message",
	func(env component.Env, s Spec) (component.StoreOpener, error) {
		if s.Dir == "" {
			return nil, fmt.Errorf("empty folder: %w", component.ErrInvalid)
		}
		return func() (store.Store, error) {
			if env.Existing {
				if _, err := os.Stat(s.Dir); err != nil {
					return nil, fmt.Errorf("%w: %s: %w (nothing was created)", component.ErrNoStore, s.Dir, err)
				}
			}
			if err := os.MkdirAll(s.Dir, 0o755); err != nil {
				return nil, err
			}
			st, err := Open(s.Dir)
			if err != nil {
				return nil, err // not a nil *Store in the interface
			}
			return st, nil
		}, nil
	})

func init() { component.Register(Component) }

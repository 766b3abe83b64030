package component

import (
	"fmt"

	"github.com/svcflow/svcflow/adapters/store"
)

// MemorySpec is the configuration of an in-memory store:
//
//	store: memory:
//	store: {memory: {max_finished: 1000}}
type MemorySpec struct {
	MaxFinished int `yaml:"max_finished" default:"10000" doc:"finished (done or rejected) records kept; older ones are dropped first"`
}

// MemoryStore is the memory store component: records kept in memory, lost
// when the process ends. It is in every registry made by [Default].
var MemoryStore = Store("memory", "messages kept in memory: lost when the process ends; keeps the last max_finished finished records",
	func(env Env, s MemorySpec) (StoreOpener, error) {
		n := s.MaxFinished
		if n == 0 {
			n = store.DefaultMaxFinished
		}
		if n < 0 {
			return nil, fmt.Errorf("max_finished %d: %w", n, ErrInvalid)
		}
		return func() (store.Store, error) {
			if env.Existing {
				return nil, fmt.Errorf("%w: a memory store keeps nothing once its process ends", ErrNoStore)
			}
			return store.NewMemory(store.WithMaxFinished(n)), nil
		}, nil
	})

func init() { Register(MemoryStore) }

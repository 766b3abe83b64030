package component

import (
	"fmt"

	"github.com/svcflow/svcflow/adapters/store"
)

// NoneSpec is the configuration of the null store, which has none:
//
//	store: none
type NoneSpec struct{}

// NoneStore is the null store component (store.None): nothing survives,
// nothing is recorded. A channel on it runs and answers its messages, but
// keeps none of them: nothing to recover, replay or search, no
// deduplication of a message delivered twice. It is in every registry
// made by [Default].
var NoneStore = Store("none", "the null store: nothing survives, nothing recorded; the channel runs and answers, but keeps no message (no recovery, replay, search or deduplication)",
	func(env Env, s NoneSpec) (StoreOpener, error) {
		return func() (store.Store, error) {
			if env.Existing {
				return nil, fmt.Errorf("%w: the channel has no store (store: none): nothing is recorded", ErrNoStore)
			}
			return store.None(), nil
		}, nil
	})

func init() { Register(NoneStore) }

package store

import (
	"context"
	"fmt"

	"github.com/svcflow/svcflow/adapters/message"
)

// None returns the null store: nothing survives, nothing is recorded.
// Its writes (Put, Begin, Transition) succeed and keep nothing; Get finds
// nothing (ErrNotFound), Search and Count find nothing, so a channel on
// it still runs and answers every message, but has nothing to recover
// after a crash, nothing to replay, nothing to search, and does not know
// a message delivered twice (it runs it again). It keeps no journal, so
// durable runs need another store. Use it for channels whose messages
// are worth nothing once answered (health pings, idempotent lookups).
//
// The null store is safe for concurrent use, and its zero cost is the
// point: no copy of any message is made.
func None() Store { return noneStore{} }

// IsNone reports whether s is the null store ([None]).
func IsNone(s Store) bool {
	_, ok := s.(noneStore)
	return ok
}

type noneStore struct{}

func (noneStore) Put(ctx context.Context, m *message.Message) error   { return checkNone(ctx, m) }
func (noneStore) Begin(ctx context.Context, m *message.Message) error { return checkNone(ctx, m) }

func (noneStore) Transition(ctx context.Context, id string, to State, u Update) error {
	if !to.Valid() {
		return fmt.Errorf("store none: transition to %q: %w", to, ErrInvalid)
	}
	return ctx.Err()
}

func (noneStore) Get(ctx context.Context, id string) (*Record, error) {
	return nil, fmt.Errorf("store none: get %q: %w (the null store records nothing)", id, ErrNotFound)
}

func (noneStore) Search(ctx context.Context, q Query) ([]*Record, error) { return nil, ctx.Err() }
func (noneStore) Count(ctx context.Context, q Query) (int, error)        { return 0, ctx.Err() }
func (noneStore) Close() error                                           { return nil }

func checkNone(ctx context.Context, m *message.Message) error {
	if m == nil || m.ID == "" {
		return fmt.Errorf("store none: a message without an ID: %w", ErrInvalid)
	}
	return ctx.Err()
}

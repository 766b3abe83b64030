// Package storeutil holds what this module's message stores share beyond
// the store contract: a guard that lets Close wait for the operations
// running, the clock they record times with, and the decoding of a stored
// context.
package storeutil

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/svcflow/svcflow/internal/jsonenc"
)

// Life tracks whether a store is open. Operations hold it shared while
// they run; Close takes it exclusively, so it waits for them. The zero
// value is an open store.
type Life struct {
	mu     sync.RWMutex
	closed bool
}

// Enter reports whether the store is open; if so the caller must call
// Exit when its operation ends.
func (l *Life) Enter() bool {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return false
	}
	return true
}

// Exit ends an operation started by a successful Enter.
func (l *Life) Exit() { l.mu.RUnlock() }

// Close marks the store closed, after the operations running have
// exited, and reports whether it was open.
func (l *Life) Close() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.closed = true
	return true
}

// Now returns the current time in UTC without a monotonic reading: the
// time stores record.
func Now() time.Time { return time.Now().UTC() }

// CtxErr returns ctx's error if it is done, and nil for a nil ctx.
func CtxErr(ctx context.Context) error {
	if ctx == nil {
		return nil
	}
	return ctx.Err()
}

// OrBackground returns ctx, or context.Background() when ctx is nil.
func OrBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}

// DecodeContext decodes a context stored as JSON, as the store package's
// Normalize encodes it; nil data (no context) gives a nil map.
func DecodeContext(data []byte) (map[string]any, error) {
	if data == nil {
		return nil, nil
	}
	var m map[string]any
	if err := jsonenc.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decode context: %w", err)
	}
	return m, nil
}

package channel

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
)

// ProbeInterval is how often a running channel whose store writes fail
// probes the store (see store.Prober), so that it reports the store
// writable again without waiting for traffic.
var ProbeInterval = time.Second

// ErrStoreNotWritable is wrapped by the error of a channel that cannot
// start because its store cannot be written (a read-only folder or
// database, a full disk).
var ErrStoreNotWritable = errors.New("store not writable")

// health tracks whether the channel's store can be written: a write that
// fails for a reason other than the message (a full disk, a read-only
// database, an I/O error) marks it not writable, and the next write or
// probe that succeeds marks it writable again.
type health struct {
	c       *Channel
	bad     atomic.Bool // err != "": the fast path of a write that succeeds
	mu      sync.Mutex
	err     string // the latest write failure; "" while writable
	probing bool   // a probe loop runs
}

// watched is the channel's store with its writes watched by health.
type watched struct {
	store.Store
	h *health
}

func (w *watched) Put(ctx context.Context, m *message.Message) error {
	err := w.Store.Put(ctx, m)
	w.h.wrote(err)
	return err
}

func (w *watched) Begin(ctx context.Context, m *message.Message) error {
	err := w.Store.Begin(ctx, m)
	w.h.wrote(err)
	return err
}

func (w *watched) Transition(ctx context.Context, id string, to store.State, u store.Update) error {
	err := w.Store.Transition(ctx, id, to, u)
	w.h.wrote(err)
	return err
}

// unwatched returns the store s watches, or s.
func unwatched(s store.Store) store.Store {
	if w, ok := s.(*watched); ok {
		return w.Store
	}
	return s
}

// writeFailed reports whether err says the store could not write, rather
// than refusing the write for its arguments (a known ID, an unknown one,
// an unstorable value), being closed, or being canceled.
func writeFailed(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, store.ErrExists), errors.Is(err, store.ErrNotFound),
		errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrClosed),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true
}

// wrote records the outcome of a write.
func (h *health) wrote(err error) {
	switch {
	case err == nil:
		h.ok()
	case writeFailed(err):
		h.failed(err)
	}
}

func (h *health) ok() {
	if !h.bad.Load() {
		return
	}
	h.mu.Lock()
	was := h.err
	h.err = ""
	h.bad.Store(false)
	h.mu.Unlock()
	if was != "" {
		h.c.log.Info("store writable again")
	}
}

// failed marks the store not writable and, while the channel runs and
// the store can be probed, starts probing it.
func (h *health) failed(err error) {
	h.mu.Lock()
	was := h.err
	h.err = err.Error()
	h.bad.Store(true)
	start := !h.probing
	if start {
		h.probing = true
	}
	h.mu.Unlock()
	if was == "" {
		h.c.log.Error("store not writable: messages are refused until a write succeeds", "error", err)
	}
	if start {
		go h.probe()
	}
}

// probe probes the store every ProbeInterval until a probe or a write
// succeeds, or the channel stops.
func (h *health) probe() {
	defer func() {
		h.mu.Lock()
		h.probing = false
		h.mu.Unlock()
	}()
	h.c.mu.Lock()
	hard, running := h.c.hard, h.c.state == StateRunning || h.c.state == StateRestarting || h.c.state == StateStarting
	h.c.mu.Unlock()
	if hard == nil || !running {
		return // not running: the next write tells
	}
	t := time.NewTicker(ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-hard.Done():
			return
		case <-t.C:
		}
		if h.error() == "" {
			return // a write succeeded meanwhile
		}
		probed, err := store.Probe(hard, unwatched(h.c.store))
		if !probed || errors.Is(err, store.ErrClosed) {
			return // a write must tell
		}
		if err == nil {
			h.ok()
			return
		}
		if writeFailed(err) {
			h.mu.Lock()
			if h.err != "" { // else a write succeeded meanwhile
				h.err = err.Error()
			}
			h.mu.Unlock()
		}
	}
}

// error is the latest write failure, "" while the store is writable.
func (h *health) error() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// probeStore checks at start that the store can be written.
func (c *Channel) probeStore(ctx context.Context) error {
	probed, err := store.Probe(ctx, unwatched(c.store))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStoreNotWritable, err)
	}
	if probed {
		c.health.ok()
	}
	return nil
}

package channel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"log/slog"

	"github.com/google/uuid"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	ferrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// Record records every run that reaches step in st: pypeman's
// message_store_factory of a sub-channel (case, when, fork), for any
// step or block (`record: STORE` in YAML). Each run entering step is
// stored as a message in state processing, then moved to done (the step
// succeeded, or a Drop consumed the run), rejected (a Stop, with its
// reason) or error (any other error, with its text) when the step ends.
// The record's message:
//
//   - ID: the run's message ID (see [MessageFrom]; else the run's meta.id)
//     followed by "@" and the step's path in the flow, e.g.
//     "7f3a...@orders/when(total > 100)"; a run with neither gets a new
//     UUID;
//   - Context: the run's context as it entered the step (the record's
//     final transition stores it as the step left it);
//   - Meta: the run's meta (the string values of its "meta" map).
//
// A run reaching the step again under the same ID (a replay, a loop)
// moves the existing record back to processing. A failure of the store
// is logged and never fails the run. The step's outcome is unchanged.
//
// st belongs to the caller: the flow does not close it. Use [RecordOpen]
// for a store the flow opens and closes. Build checks, graphs and the
// lifecycle of the services inside step see through the wrapper (see
// flow.Around); around a flow.Tap it records the tapped run.
func Record(st store.Store, step flow.Service) flow.Service {
	return flow.Around(step, &recorder{st: st})
}

// RecordOpen is [Record] with a store that open makes: the flow opens it
// in its Init (or at the first run, when nobody called Init) and closes
// it in its Close. Each flow built with the step opens its own.
func RecordOpen(open func() (store.Store, error), step flow.Service) flow.Service {
	return flow.Around(step, &recorder{open: open, owned: true})
}

type recorder struct {
	open  func() (store.Store, error)
	owned bool

	mu  sync.Mutex
	st  store.Store
	err error
}

func (r *recorder) Init(context.Context) error {
	_, err := r.store()
	return err
}

func (r *recorder) Close(context.Context) error {
	if !r.owned {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	r.st, r.err = nil, nil
	if st == nil {
		return nil
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("record: close store: %w", err)
	}
	return nil
}

func (r *recorder) store() (store.Store, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st != nil || r.open == nil {
		return r.st, nil
	}
	st, err := r.open()
	if err != nil {
		return nil, fmt.Errorf("record: open store: %w", err)
	}
	r.st = st
	return st, nil
}

func (r *recorder) Around(ctx context.Context, path string, c *fc.Context, next func(context.Context, *fc.Context) error) error {
	st, err := r.store()
	if err != nil || st == nil {
		if err == nil {
			err = errors.New("record: no store")
		}
		slog.Default().ErrorContext(ctx, "record: store unavailable", "step", path, "error", err)
		return next(ctx, c)
	}
	id, meta := recordID(ctx, c, path)
	m := &message.Message{ID: id, Time: time.Now().UTC(), ContentType: message.ContentTypeJSON, Meta: meta, Context: c.Map()}
	if err := st.Begin(ctx, m); errors.Is(err, store.ErrExists) {
		err = st.Transition(ctx, id, store.Processing, store.Update{Context: m.Context})
		r.report(ctx, path, err)
	} else {
		r.report(ctx, path, err)
	}
	runErr := next(ctx, c)
	to, u := store.Done, store.Update{Outcome: ferrors.KindOf(runErr), Context: c.Map()}
	var stop *ferrors.StopError
	var drop *ferrors.DropError
	switch {
	case runErr == nil:
	case errors.As(runErr, &drop):
		u.Reason = drop.Reason
	case errors.As(runErr, &stop):
		to, u.Reason, u.Err = store.Rejected, stop.Reason, runErr.Error()
	default:
		to, u.Err = store.Error, runErr.Error()
	}
	// The run's context may be canceled by now: record the end anyway.
	r.report(ctx, path, st.Transition(context.WithoutCancel(ctx), id, to, u))
	return runErr
}

func (r *recorder) report(ctx context.Context, path string, err error) {
	if err != nil {
		slog.Default().ErrorContext(ctx, "record: store write failed", "step", path, "error", err)
	}
}

// recordID is the ID and meta of the record of a run at path.
func recordID(ctx context.Context, c *fc.Context, path string) (string, map[string]string) {
	meta := map[string]string{}
	if v, ok := c.Get("meta"); ok {
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				if s, ok := x.(string); ok {
					meta[k] = s
				}
			}
		} else if m, ok := v.(map[string]string); ok {
			maps.Copy(meta, m)
		}
	}
	_, id, ok := MessageFrom(ctx)
	if !ok || id == "" {
		id = meta["id"]
	}
	if id == "" {
		return uuid.NewString(), meta
	}
	return id + "@" + strings.TrimPrefix(path, "/"), meta
}

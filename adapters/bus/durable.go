package bus

import (
	"context"
	"fmt"
	"maps"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// The meta entries of a stored bus message.
const (
	// MetaDestination is the service the message was submitted to.
	MetaDestination = "bus.destination"
	// MetaAction is the action it runs.
	MetaAction = "bus.action"
	// MetaFrom is the service that submitted it ("" from outside).
	MetaFrom = "bus.from"
)

// record stores e as pending, before it enters the mailbox.
func (s *service) record(ctx context.Context, e *envelope) error {
	payload, err := fc.AppendJSON(nil, e.body)
	if err != nil {
		return fmt.Errorf("encode body: %w", err)
	}
	if len(e.body) == 0 {
		payload = []byte("{}")
	}
	meta := make(map[string]string, 3+len(e.meta))
	maps.Copy(meta, e.meta)
	meta[MetaDestination], meta[MetaAction], meta[MetaFrom] = s.def.Name, e.action, e.from
	m := message.New(message.ContentTypeJSON, payload, meta)
	m.ID = e.id
	if err := s.recorder.Put(ctx, m); err != nil {
		return err
	}
	e.recorded = true
	return nil
}

// unrecord ends the record of a message that was not queued after all.
func (s *service) unrecord(ctx context.Context, e *envelope, cause error) {
	if !e.recorded {
		return
	}
	e.recorded = false
	if err := s.recorder.Transition(context.WithoutCancel(ctx), e.id, store.Error,
		store.Update{Outcome: errors.KindOf(cause), Err: "not queued: " + cause.Error()}); err != nil {
		s.fail("store transition failed", err, "id", e.id)
	}
}

// recover returns the service's messages a previous process left pending
// or processing, oldest first.
func (s *service) recover(ctx context.Context) ([]*store.Record, error) {
	recs, err := s.recorder.Search(ctx, store.Query{States: []store.State{store.Pending, store.Processing},
		Meta: map[string]string{MetaDestination: s.def.Name}})
	if err != nil {
		return nil, fmt.Errorf("recover mailbox: %w", err)
	}
	return recs, nil
}

// fromRecord makes the envelope of a recovered message, or sets aside a
// message whose runs keep crashing the process.
func (s *service) fromRecord(ctx context.Context, rec *store.Record) (*envelope, bool) {
	m := rec.Message
	if n := store.CrashedRuns(rec); n >= MaxCrashes {
		msg := fmt.Sprintf("gave up after %d crashed runs", n)
		if err := s.recorder.Transition(context.WithoutCancel(ctx), m.ID, store.Error,
			store.Update{Outcome: errors.KindFatal, Err: msg}); err != nil {
			s.fail("store transition failed", err, "id", m.ID)
		}
		s.failed.Add(1)
		s.fail("message set aside: its runs keep crashing the process", errors.New(msg), "id", m.ID)
		return nil, false
	}
	e := &envelope{id: m.ID, from: m.Meta[MetaFrom], action: m.Meta[MetaAction], recorded: true}
	for k, v := range m.Meta {
		if k != MetaDestination && k != MetaAction && k != MetaFrom {
			if e.meta == nil {
				e.meta = map[string]string{}
			}
			e.meta[k] = v
		}
	}
	c, err := fc.FromJSON(m.Payload)
	if err == nil {
		e.body = c.Map()
	}
	if err != nil || s.def.Actions[e.action] == nil {
		if err == nil {
			err = fmt.Errorf("%w %q: %s", ErrUnknownAction, e.action, actionList(s.def.Actions))
		}
		if terr := s.recorder.Transition(context.WithoutCancel(ctx), m.ID, store.Error,
			store.Update{Outcome: errors.KindFailed, Err: "recover: " + err.Error()}); terr != nil {
			s.fail("store transition failed", terr, "id", m.ID)
		}
		s.failed.Add(1)
		s.fail("recovered message cannot run", err, "id", m.ID)
		return nil, false
	}
	s.log.Info("recovered message", "id", m.ID, "action", e.action)
	return e, true
}

// finish records the outcome of a run.
func (s *service) finish(ctx context.Context, e *envelope, c *fc.Context, err error) {
	kind := errors.KindOf(err)
	st := store.Done
	switch kind {
	case errors.KindOK:
	case errors.KindStop:
		st = store.Rejected
	default:
		st = store.Error
	}
	u := store.Update{Outcome: kind}
	if c != nil {
		u.Context = c.View()
	}
	if e.trace != nil {
		u.Trace = e.trace.AppendJSON(nil)
	}
	if err != nil {
		u.Err = err.Error()
		if se, ok := errors.AsType[*errors.StopError](err); ok {
			u.Reason = se.Reason
		}
	}
	terr := s.recorder.Transition(context.WithoutCancel(ctx), e.id, st, u)
	if terr != nil && errors.Is(terr, store.ErrInvalid) && u.Context != nil {
		// a context the store cannot keep (+Inf, a cycle): keep the outcome
		u.Context = nil
		u.Err = fmt.Sprintf("the result cannot be stored: %v (the run: %s)", terr, u.Err)
		st = store.Error
		terr = s.recorder.Transition(context.WithoutCancel(ctx), e.id, st, u)
	}
	if terr != nil {
		s.fail("store transition failed", terr, "id", e.id, "to", st)
	}
}

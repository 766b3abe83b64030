package channel

import (
	"context"
	"fmt"
	"time"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/internal/jsonenc"
	"github.com/svcflow/svcflow/internal/redact"
)

// ErrStopped is wrapped by the error of a delivery to a channel that is
// not running (stopped, never started, starting or stopping): Handle and
// Inject refuse it at once, record nothing and run nothing. The result is
// Leave (HTTP 503 with Retry-After; a broker redelivers the message, a
// file stays where it is) and its error is a Retry (errors.KindRetry).
var ErrStopped = errors.New("channel not running")

// Hooks are flows a channel runs after a message's outcome is settled:
// recorded in the store as done, rejected, dropped, error or dead. Each
// runs on a copy of the run's final context with the outcome under the
// key [OutcomeKey] (see [Outcome]); what a hook writes is discarded. A
// hook that fails is logged and counted (Status.HookErrors) and never
// changes the message's outcome, its state in the store or its answer.
//
// Hooks run before Handle returns (a source answers after them, and a
// graceful Stop waits for them), one after the other: the hook of the
// outcome, then Finally. A message left to run again (a Fatal, a
// canceled run, a store that cannot be written), one that parks
// (durable waits), one refused (busy, stopped) and a delivery answered
// from the store (a duplicate) run no hook: their outcome is not settled
// by this delivery.
//
// The channel initialises the hooks' services when it starts and closes
// them when it stops, after the flow's.
type Hooks struct {
	// OnOK runs after a message is done (outcome ok).
	OnOK *flow.Flow
	// OnFailure runs after a message failed (state error or dead:
	// failed, panic, retry-exhausted, dead-lettered).
	OnFailure *flow.Flow
	// OnReject runs after a message was rejected (a Stop).
	OnReject *flow.Flow
	// OnDrop runs after a message was dropped (errors.Drop).
	OnDrop *flow.Flow
	// Finally runs after every settled message, after the hook of its
	// outcome.
	Finally *flow.Flow
}

// all returns the hooks that are set, in the order they are initialised.
func (h Hooks) all() []*flow.Flow {
	var out []*flow.Flow
	for _, f := range []*flow.Flow{h.OnOK, h.OnFailure, h.OnReject, h.OnDrop, h.Finally} {
		if f != nil {
			out = append(out, f)
		}
	}
	return out
}

// OutcomeKey is the context key under which a hook finds the outcome of
// the message it runs for, an [Outcome] as a map:
//
//	outcome: {id: "...", kind: "stop", state: "rejected", reason: "no items", error: "stop: no items"}
const OutcomeKey = "outcome"

// Outcome is what a hook is told of the message it runs for, under
// [OutcomeKey] in its context (as a map with these keys).
type Outcome struct {
	// ID is the message's ID.
	ID string `json:"id"`
	// Kind is the outcome's name (errors.Kind: ok, stop, dropped,
	// failed, panic, retry-exhausted, ...).
	Kind string `json:"kind"`
	// State is the message's state in the store (done, rejected, error,
	// dead).
	State string `json:"state"`
	// Reason is the reason of a Stop or a Drop ("" for others).
	Reason string `json:"reason"`
	// Error is the run's error text, masked as the store keeps it (""
	// when done).
	Error string `json:"error"`
}

func (o Outcome) asMap() map[string]any {
	return map[string]any{"id": o.ID, "kind": o.Kind, "state": o.State, "reason": o.Reason, "error": o.Error}
}

// runHooks runs the hooks of a settled message: the hook of its outcome,
// then Finally. out is the run's final context, which the hooks get a
// copy of.
func (c *Channel) runHooks(ctx context.Context, m *message.Message, out map[string]any, kind errors.Kind, st store.State, u store.Update, secrets redact.Secrets) {
	var first *flow.Flow
	switch {
	case st == store.Done && kind == errors.KindDropped:
		first = c.cfg.Hooks.OnDrop
	case st == store.Done:
		first = c.cfg.Hooks.OnOK
	case st == store.Rejected:
		first = c.cfg.Hooks.OnReject
	case st == store.Error || st == store.Dead:
		first = c.cfg.Hooks.OnFailure
	default:
		return
	}
	if first == nil && c.cfg.Hooks.Finally == nil {
		return
	}
	// The hooks run after the outcome is recorded, whatever became of
	// the delivery's own context (an HTTP client gone), until a Stop's
	// deadline passes.
	ctx = context.WithoutCancel(ctx)
	if c.hard != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(c.hard, cancel)()
	}
	o := Outcome{ID: m.ID, Kind: kind.String(), State: string(st), Reason: u.Reason, Error: u.Err}
	for _, h := range []struct {
		name string
		f    *flow.Flow
	}{{hookName(st, kind), first}, {"finally", c.cfg.Hooks.Finally}} {
		if h.f == nil {
			continue
		}
		err := c.runHook(ctx, h.f, out, o)
		switch errors.KindOf(err) {
		case errors.KindOK, errors.KindStop, errors.KindDropped:
			// a hook that ends on purpose did not fail
		default:
			c.hookErrs.Add(1)
			c.log.Error("hook failed; the message's outcome stands", "hook", h.name, "flow", h.f.Name(),
				"id", m.ID, "outcome", o.Kind, "error", secrets.Text(err.Error()))
		}
	}
}

// hookName is the YAML name of the hook of an outcome.
func hookName(st store.State, kind errors.Kind) string {
	switch {
	case st == store.Done && kind == errors.KindDropped:
		return "on_drop"
	case st == store.Done:
		return "on_ok"
	case st == store.Rejected:
		return "on_reject"
	}
	return "on_failure"
}

// runHook runs one hook flow on a copy of out with the outcome.
func (c *Channel) runHook(ctx context.Context, f *flow.Flow, out map[string]any, o Outcome) error {
	b, err := jsonenc.Append(nil, out)
	if err != nil {
		return fmt.Errorf("copy the context: %w", err)
	}
	hc, err := fc.FromJSON(b)
	if err != nil {
		return fmt.Errorf("copy the context: %w", err)
	}
	hc.Set(OutcomeKey, o.asMap())
	return f.RunContext(ctx, hc)
}

// StateChange is a change of a channel's state, told to
// Config.OnStateChange.
type StateChange struct {
	// Channel is the channel's name.
	Channel string
	// From and To are the states left and entered (StateStopped,
	// StateStarting, StateRunning, StateRestarting, StateStopping).
	From, To string
	// Cause says why, when there is one: the error that failed a start
	// (starting to stopped), the Fatal error that restarts the services
	// (running to restarting), the error of a restart that failed or of
	// a stop (its drain deadline, a service's Close).
	Cause error
	// At is when the state changed.
	At time.Time
}

// transition moves the channel from one of the states from to state to,
// and tells Config.OnStateChange. It reports whether the state was one
// of from (nil: any). Changes are told in the order they happen, one at
// a time.
func (c *Channel) transition(to string, cause error, from ...string) bool {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	c.mu.Lock()
	was := c.state
	ok := len(from) == 0
	for _, f := range from {
		ok = ok || was == f
	}
	if ok {
		c.state = to
	}
	c.mu.Unlock()
	if ok && was != to && c.cfg.OnStateChange != nil {
		c.cfg.OnStateChange(StateChange{Channel: c.cfg.Name, From: was, To: to, Cause: cause, At: time.Now()})
	}
	return ok
}

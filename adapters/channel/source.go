package channel

import (
	"context"
	"time"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
)

// Source is where a channel's messages come from: an HTTP route, a cron
// schedule, a watched folder, a broker subscription, a polling function.
//
// A source hands every message to the channel's [Handler] and settles it
// according to the [Result]: an HTTP source writes a status code, a broker
// acks, naks with a delay, or leaves the message unacknowledged, a file
// source moves the file to a done or failed folder. The contract is the
// same for all of them, so a new source needs no change to the channel.
type Source interface {
	// Name identifies the source in logs and metrics ("http /orders").
	Name() string
	// Run takes messages and calls h for each, possibly concurrently, until
	// ctx is canceled (stop intake) or the source fails. It returns nil
	// after a cancellation, once every h call it started has returned and
	// been settled. Run is called once per Start of the channel.
	Run(ctx context.Context, h Handler) error
}

// Handler processes one message and tells the source how to settle it.
// The channel's Handle method is a Handler. Handle is safe for concurrent
// use; ctx is the source's per-message context (an HTTP request's, say):
// when it ends, the run ends, and the message is left for redelivery.
type Handler interface {
	Handle(ctx context.Context, m *message.Message) Result
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(ctx context.Context, m *message.Message) Result

// Handle implements [Handler].
func (f HandlerFunc) Handle(ctx context.Context, m *message.Message) Result { return f(ctx, m) }

// Settle says what a source must do with a message after the channel
// handled it.
type Settle int

const (
	// Ack: the message is finished (done, or rejected on purpose); never
	// deliver it again. HTTP: 200 for done, 422 for rejected.
	Ack Settle = iota
	// Nack: deliver the message again after Result.RetryAfter (a transient
	// failure whose retries ran out in this run). HTTP: 503 with
	// Retry-After.
	Nack
	// Fail: the message failed; deliver it again only if the source is
	// configured to (or dead-letter it). HTTP: 500 with an error id.
	Fail
	// Leave: do not acknowledge; the message is still owed (the processor
	// was broken, or the run was canceled by shutdown) and is processed
	// again, from the store on restart or by the broker's redelivery.
	// HTTP: 503.
	Leave
)

// String returns "ack", "nack", "fail" or "leave".
func (s Settle) String() string {
	switch s {
	case Ack:
		return "ack"
	case Nack:
		return "nack"
	case Fail:
		return "fail"
	case Leave:
		return "leave"
	}
	return "settle(?)"
}

// Result is the outcome of handling one message.
type Result struct {
	// Settle says what the source must do with the message.
	Settle Settle
	// Outcome is how the handling ended, errors.KindOf(Err): ok, stop (a
	// rejection: the Stop's reason is in Err), retry-exhausted, failed,
	// panic, fatal or canceled. Sources read it, with Settle, instead of
	// parsing State or the error's text: Ack with errors.KindStop is a
	// rejection.
	Outcome errors.Kind
	// State is the message's state in the store after the run
	// (store.Done, store.Rejected, store.Error, store.Dead for a message
	// set aside; store.Pending when the
	// message is left with its outcome recorded, store.Processing when it
	// is left without).
	State store.State
	// Message is the handled message with the run's context. Its trace,
	// when recorded, is in the store (Store.Get).
	Message *message.Message
	// Err is the run's error (nil when done). For a rejection it is the
	// Stop error: errors.As finds its *errors.StopError, whose Reason is
	// the reason.
	Err error
	// RetryAfter is how long to wait before redelivery, for Nack (and a
	// hint for Leave).
	RetryAfter time.Duration
	// ErrorID identifies the failure in logs, to show to clients instead of
	// internals (HTTP 500 bodies).
	ErrorID string
}

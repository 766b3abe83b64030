package bus

import (
	"context"
	"fmt"
)

// Message is a message that crosses processes: what a [Transport]
// carries.
type Message struct {
	// From is the sending service ("" from outside the bus).
	From string `json:"from,omitempty"`
	// Destination is the service, or Broadcast.
	Destination string `json:"destination"`
	// Action is the action to run.
	Action string `json:"action"`
	// Body is the run's input.
	Body map[string]any `json:"body"`
	// ID is the message's id (meta.id of its run). The bus sets it on
	// the messages it hands to its Transport, so that the run in the
	// other process, and every redelivery of it, has the sender's id:
	// effects made idempotent by meta.id stay so across processes. Empty
	// on a received message: the receiving bus makes one.
	ID string `json:"id,omitempty"`
	// Done, when set on a message handed to [Receiver.Receive] without
	// reply, is called once with the run's error (nil when it succeeded)
	// after the message ran to its outcome in this process, so that a
	// transport acknowledges it only then. It is not called when Receive
	// returns an error (the message was not queued), nor for a message a
	// stop left unrun: the transport delivers that one again.
	Done func(err error) `json:"-"`
}

// Transport carries messages between the buses of several processes, so
// that services declared with the same Go and YAML code can run in
// different processes. A bus hands its Transport the messages whose
// destination is not one of its own services, and Broadcast messages
// (after delivering them to its own services); the Transport delivers
// the messages other processes send to this one through the [Receiver]
// it was started with.
//
// Package adapters/nats ships one (nats.Transport, the YAML
// `bus: {transport: {nats: {...}}}`): submits travel on the subjects
// svc.<destination>.<action> of a JetStream stream, each service reading
// them with a durable consumer of its own, and requests use NATS
// request/reply. Errors of a remote run come back with their
// errors.Kind ([EncodeReply], [DecodeReply]), so errors.KindOf, a Stop's
// reason and the bus's errors (ErrUnknownAction, ...) hold on both
// sides.
type Transport interface {
	// Start subscribes to the messages for the local services and hands
	// each to r until Stop.
	Start(ctx context.Context, local []string, r Receiver) error
	// Submit sends m and returns once the transport has it.
	Submit(ctx context.Context, m *Message) error
	// Request sends m and waits for the reply until ctx ends.
	Request(ctx context.Context, m *Message) (map[string]any, error)
	// Stop unsubscribes; the messages being received finish first.
	Stop(ctx context.Context) error
}

// Receiver takes the messages a [Transport] receives for this process.
// *Bus implements it.
type Receiver interface {
	// Receive submits m to a local service (or, for Broadcast, to every
	// local running service that has the action), never back to the
	// transport. With reply it waits for the run and returns its output,
	// as Request does; else it returns once m is queued.
	Receive(ctx context.Context, m *Message, reply bool) (map[string]any, error)
}

// Receive implements [Receiver].
func (b *Bus) Receive(ctx context.Context, m *Message, reply bool) (map[string]any, error) {
	if m == nil {
		return nil, fmt.Errorf("bus: receive: nil message")
	}
	if m.Destination == Broadcast {
		if reply {
			return nil, fmt.Errorf("bus: request to %q: a request has one destination; submit to broadcast", Broadcast)
		}
		return nil, b.localBroadcast(ctx, m.From, m.Action, m.Body)
	}
	s, err := b.local(m.Destination)
	if err != nil {
		return nil, err
	}
	if !reply {
		return nil, s.deliver(ctx, &envelope{id: m.ID, from: m.From, action: m.Action, body: m.Body, done: m.Done})
	}
	return b.requestLocalID(ctx, s, m.ID, m.From, m.Action, m.Body)
}

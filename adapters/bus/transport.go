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
}

// Transport carries messages between the buses of several processes, so
// that services declared with the same Go and YAML code can run in
// different processes. A bus hands its Transport the messages whose
// destination is not one of its own services, and Broadcast messages
// (after delivering them to its own services); the Transport delivers
// the messages other processes send to this one through the [Receiver]
// it was started with.
//
// A NATS transport maps a message to the subject
// svc.<destination>.<action> (svc.*.<action> for a broadcast, which every
// process subscribes to); Submit publishes (to JetStream, for durability
// across a crash of the receiving process), Request uses NATS
// request/reply with the context's deadline, and Start subscribes to
// svc.<name>.> for each local service, with a queue group per service so
// that one process of several runs each message. Errors of a remote run
// come back as text with their errors.Kind, so errors.KindOf holds on
// both sides.
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
		return nil, s.deliver(ctx, &envelope{from: m.From, action: m.Action, body: m.Body})
	}
	return b.requestLocal(ctx, s, m.From, m.Action, m.Body)
}

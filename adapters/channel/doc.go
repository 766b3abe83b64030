// Package channel runs a flow behind sources with nothing lost: a Channel
// is a set of sources (HTTP routes, schedules, watched folders, brokers), a
// flow, a message store and a supervisor.
//
// For every message a source delivers, the channel records it in the store
// (pending), runs the flow on it (processing) and records the outcome, the
// run's context and trace (done, rejected, error). A message a crash left
// pending or processing runs again when the channel starts; a finished
// message delivered again is answered from the store, not run twice.
//
// The supervisor applies the control errors of package errors and tells
// the source how to settle the message ([Settle]):
//
//	the flow returned        state      settle   HTTP
//	nil                      done       Ack      200 with the output context
//	Stop                     rejected   Ack      422 with the reason
//	Retry, retries ran out   error      Nack     503 with Retry-After (Fail after MaxDeliveries)
//	Fatal                    -          -        services closed and re-initialised under the
//	                                             restart backoff; the message runs again
//	canceled (shutdown)      processing Leave    503; runs again on the next start
//	any other error, panic   error      Fail     500 with an error id, never a stack
//
// Sources implement [Source]: they call the channel's Handle for each
// message and settle it by the [Result]. The run's context is the message's
// JSON payload (or its text under "body"), with the message's meta under
// "meta" and its id as meta.id, the key to make a flow's effects
// idempotent.
//
// Lifecycle: [Channel.Start] initialises the flow's services, runs the
// owed messages, then starts the sources; [Channel.Stop] stops intake,
// drains the messages in flight (bounded by its context) and closes the
// services. [Channel.Handle], [Channel.Inject] and [Channel.Replay] also
// work on a channel without sources.
package channel

// Package mllp carries HL7 v2 messages over MLLP (the Minimal Lower
// Layer Protocol: each message framed by 0x0B ... 0x1C 0x0D on a TCP
// connection): a channel source that receives them and answers each
// with an HL7 ACK, a client that sends them, and a step that sends one
// from a flow.
//
// # The source
//
//	src, err := mllp.NewSource(mllp.Spec{Address: "0.0.0.0:2575"})
//
// In YAML: `from: {mllp: {address: "0.0.0.0:2575", max_size: 1048576,
// read_timeout: 5m}}`. Each connection is served on a goroutine of its
// own, one message at a time: a message is handed to the channel and its
// ACK written before the next message of that connection is read.
//
// The payload is the HL7 text as received (content type ContentType, so
// a flow reads it as the string `body`); the meta holds the MSH fields
// (MetaType "ADT^A01", MetaControlID, MetaSendingApp, ...), read with
// the field separator and encoding characters the message declares in
// its MSH. The message ID is made of the sending application, sending
// facility and control ID (MessageID), so a message sent again after a
// lost ACK is answered from the channel's store and not run again; the
// same control ID with different content is refused (AR). Senders that
// reuse control IDs set Spec.IDs to "random".
//
// The ACK (see Ack) has the MSH of the message with sender and receiver
// swapped, message type ACK^<event>^ACK and a new control ID, and an MSA
// with the message's control ID and a code from the channel's result
// (AckCode):
//
//	AA  done (or parked waiting by a durable channel)
//	AR  rejected: the flow ended with a Stop; MSA-3 is its reason. Also
//	    a frame that holds no MSH segment, and a message over max_size
//	AE  any other outcome: a failure (MSA-3 names the error id, never
//	    the error), retries that ran out, a message left for later;
//	    the sender may send it again
//
// Faults, and what the source does:
//
//	bytes outside a frame    discarded (line breaks, noise), at most
//	                         max_size in a row; more: disconnected
//	0x0B inside a frame      the frame starts again; the bytes before
//	                         are discarded
//	message over max_size    answered AR (with its control ID when its
//	                         MSH was read), then disconnected: the rest
//	                         of the frame is not read
//	no MSH in a frame        answered AR with an empty MSA-2
//	idle connection          closed after read_timeout (default 5m)
//	slow sender              a message begun must be complete within
//	                         message_timeout (default 30s), else
//	                         disconnected
//	too many connections     beyond max_connections (256): closed at once
//
// When the channel stops, the source stops listening and reading; the
// messages being handled finish and are answered, then the connections
// close. A message read but not yet handed over is not answered: its
// sender sends it again.
//
// # The client and the step
//
// Send (or Dial and Client.Send for many messages on one connection)
// sends a message and returns its parsed ACK; a negative one comes with
// an *AckError that matches ErrRejected (AR, CR) or ErrApplication (AE,
// CE). The mllp step sends the context's message (`body` by default) on
// a connection of its own per call:
//
//	steps: [{mllp: {address: "lab.example.com:2575", into: ack}}]
//
// A connection failure and an AE are Retry errors (sent again under the
// step's retry policy), an AR ends the run with a Stop whose reason
// names the receiver and holds the ACK's text; into gets {code,
// control_id, text, raw}.
package mllp

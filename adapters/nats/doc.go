// Package nats connects channels to NATS JetStream, so that many flowrun
// processes share one stream's work: a nats source (a durable pull
// consumer), a publish step, a nats sink and a bus transport, each a
// component registered from init (import the package, or
// adapters/component/all).
//
// # Where the server is
//
// A component with a url connects to it (several URLs: a cluster; the
// client reconnects for ever, with a backoff from 100ms to 5s). Without
// one, it runs a nats-server inside the process, with JetStream stored
// under the data folder (`flowrun serve --data DIR` keeps it in DIR/nats)
// and clients on listen (default 127.0.0.1:4222): one binary runs alone,
// and the same YAML moves to a cluster by setting url. The components of
// one process that name no url share one embedded server (per store
// folder), started by the first and stopped after the last.
//
// # Streams and consumers
//
// A source declares its stream (subjects, retention, storage, replicas,
// duplicate window) and its durable consumer (name, filter subject,
// max_deliver, ack_wait, max_ack_pending). Both are made when missing,
// and checked when they exist: a setting that differs is a
// [MismatchError] naming the stream or consumer, the setting and both
// values; the server's objects are never changed. `flowrun serve` opens
// the sources before the channels start, so a bad URL or a mismatch
// fails the start with the URL or the setting in the message.
//
// # Settling
//
// See [Source]: done and Stop ack; retries ran out nak with a delay that
// grows with the deliveries; failures, and retries on the last delivery,
// are terminated and published to the dead-letter subject with the error
// (headers [HeaderError], [HeaderOutcome], ...); Fatal errors and
// cancellation leave the message unacknowledged for redelivery. Long runs
// send in-progress heartbeats. A message's id is its Nats-Msg-Id header,
// else STREAM-SEQUENCE, so the channel's store knows a redelivery and
// flows make their effects idempotent with meta.id. The W3C trace context
// headers traceparent and tracestate are kept in the meta under their
// names, so a traced run (package telemetry) continues the trace; the
// publish step sends the trace context of its span in those headers.
//
// # The bus across processes
//
// [Transport] carries the messages of a bus (package adapters/bus)
// between processes: submits on the subjects svc.<destination>.<action>
// of a JetStream stream, read by a durable consumer per service and
// acknowledged once run, so an accepted submit survives the receiving
// process's crash; requests by request/reply. YAML declares it as
// `bus: {transport: {nats: {...}}}` ([TransportSpec]); without url it uses
// the embedded server, as the sources do.
//
// # Node persistence
//
// Package adapters/kv/natskv keeps node persistence (package adapters/kv,
// `kv: {backend: nats}`) in a JetStream key-value bucket; it connects
// with [Connect], which shares the embedded server with this package's
// components.
//
// # Health and metrics
//
// In `flowrun serve`, /readyz answers 503 naming "nats" while a source is
// disconnected, and /metrics has svcflow_nats_messages_total{event=
// delivered|redelivered|acked|nacked|terminated|left},
// svcflow_nats_connected, svcflow_nats_consumer_pending and
// svcflow_nats_consumer_ack_pending per source ([WritePrometheus]).
package nats

package serve

import (
	"strings"
	"time"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/errors"
)

// Spec is one channel as declared under `channels:` in a configuration.
// Its sources and store are components (package component), named by
// their registered names:
//
//	channels:
//	  intake:
//	    from:                          # one source, or a list of them
//	      http: {listen: "127.0.0.1:8080", path: /orders, method: POST, max_body: 1048576}
//	      # cron: "@every 1m"          (or {spec: "*/5 * * * * *", seconds: true})
//	      # files: {dir: inbox, glob: "*.json", done: inbox/done, failed: inbox/failed, settle: 1s, rescan: 5s}
//	      # poll: {url: "http://crm.local/new", every: 30s}
//	      # nats: {url: "nats://10.0.0.5:4222", stream: ORDERS, subjects: [orders.>], consumer: workers}
//	    flow: orders                   # none: the channel records and answers each message as it came
//	    to: {nats: {subject: orders.done}}   # sinks: the output of each run that succeeds, before the ack
//	    store: sqlite:data/intake.db   # memory:, none, file:DIR, sqlite:PATH[?sync=full], postgres://..., or {sqlite: {path: ...}}; default sqlite:<data dir>/<name>.db
//	    order_by: customer.id          # expression over the payload: same value, one at a time, in order
//	    retry_after: 5s                # redelivery delay when retries ran out
//	    restart: {initial: 100ms, max: 30s, max_attempts: 10}   # after Fatal errors; the keys of a flow's retry:
//	    trace: false                   # do not store each run's trace (default true)
//	    max_deliveries: 5              # dead-letter (state dead) after 5 failed deliveries (file -> failed/)
//	    max_in_flight: 1024            # messages run at once; beyond, HTTP answers 503 + Retry-After (default 1024)
//	    max_crashes: 3                 # set aside a message whose last 3 runs crashed the process (default 3)
//	    durable: steps                 # journal each completed step; resume after it (the store must keep a journal)
//	                                   # (effects: steps without effects, such as set, are written with the next write)
//	    on_change: error               # a durable message whose flow changed: error (default) or restart from the top
//	    redact: [password, card.number] # secrets: masked in the stored context, errors, traces and logs
//	    on_ok: notify                  # hooks: a flow run after the outcome is settled (also on_failure,
//	    on_failure: {call: alert}      # on_reject, on_drop, finally); the outcome is under the key outcome
//
// `flowrun services` lists the components and their fields.
type Spec struct {
	// Name is the channel's name (its key under channels:).
	Name string `yaml:"-"`
	// From are the channel's sources.
	From []component.Ref `yaml:"from" kind:"source" spec:"required,oneormany" doc:"the sources: one {kind: spec} or a list of them"`
	// Flow names the flow every message runs; "" for none (the channel
	// records and answers each message as it came).
	Flow string `yaml:"flow" doc:"the flow every message runs (none: each message is recorded and answered as it came)"`
	// To are the channel's sinks: where the output of each run that
	// succeeds is sent before the message is acknowledged.
	To []component.Ref `yaml:"to" kind:"sink" spec:"oneormany" doc:"sinks the output of each successful run is sent to, in order, before the message is acknowledged (a sink's failure is a retriable failure of the message): one {kind: spec} or a list"`
	// Store is the message store (zero: SQLite under the data folder).
	Store component.Ref `yaml:"store" kind:"store" doc:"where messages and outcomes are recorded (default: sqlite:<data dir>/<channel>.db)"`
	// OrderBy is an expression over the payload; "" for none.
	OrderBy string `yaml:"order_by" doc:"an expression over the payload: messages with the same value run one at a time, in order"`
	// RetryAfter is the redelivery delay when retries ran out.
	RetryAfter time.Duration `yaml:"retry_after" doc:"redelivery delay when a message's retries ran out and the error gave no hint (default 5s)"`
	// Restart is the backoff between restarts after Fatal errors.
	Restart *errors.Policy `yaml:"restart" doc:"backoff between restarts of the flow's services after a Fatal error (the keys of a flow's retry:)"`
	// Trace records each run's trace with its message.
	Trace bool `yaml:"trace" default:"true" doc:"record each run's trace with its message"`
	// MaxDeliveries dead-letters a message after this many failed
	// deliveries (0: redeliver for ever).
	MaxDeliveries int `yaml:"max_deliveries" doc:"dead-letter a message after this many failed deliveries (0: redeliver for ever)"`
	// MaxInFlight bounds the messages the channel runs at once (0:
	// channel.DefaultMaxInFlight; -1: no bound).
	MaxInFlight int `yaml:"max_in_flight" default:"1024" min:"-1" doc:"how many messages the channel runs at once, new and recovered; beyond it HTTP requests get 503 with Retry-After and other sources wait; -1: no bound"`
	// MaxCrashes sets aside a message after this many runs in a row that
	// ended with the process (0: channel.DefaultMaxCrashes; -1: never).
	MaxCrashes int `yaml:"max_crashes" default:"3" min:"-1" doc:"set a message aside (state dead, outcome fatal, \"gave up after N crashed runs\"; replay it by hand) after this many runs in a row crashed the process with no outcome recorded; -1: never"`
	// Durable is "steps" for durable runs (channel.Config.Durable),
	// "effects" for durable runs that journal steps without effects
	// lazily (channel.Config.JournalEffects), "" for none.
	Durable string `yaml:"durable" enum:"steps,effects" doc:"steps: journal each completed step in the store (its context delta) and resume a message after its completed steps after a crash, a redelivery or a replay; wait and long sleep steps park the message (state waiting) with no goroutine held. effects: the same, but a step without effects (set, stop, template, log) is written with the next write instead of before the next step (a crash may run it again; a step with effects never runs again once completed)"`
	// OnChange says what becomes of a durable message whose flow changed
	// since its journal was written: "error" or "restart".
	OnChange string `yaml:"on_change" default:"error" enum:"error,restart" doc:"a durable message whose flow changed since its steps were journaled: error (state error, naming the change) or restart (run it from the top)"`
	// Redact lists the context keys (dotted paths) whose values are
	// secrets: masked in the stored context, and their text in stored
	// errors, traces and the channel's logs (see channel.Config.Redact).
	Redact []string `yaml:"redact" doc:"context keys (dotted paths: password, card.number) masked as [redacted] in the stored context, and their values masked in stored errors, traces and logs"`
	// OnOK, OnFailure, OnReject, OnDrop and Finally are the channel's
	// outcome hooks (channel.Hooks): named flows run after a message's
	// outcome is settled, on a copy of its final context with the
	// outcome under the key outcome.
	OnOK      Hook `yaml:"on_ok" doc:"a flow run after a message is done (on a copy of its context; the outcome under outcome)"`
	OnFailure Hook `yaml:"on_failure" doc:"a flow run after a message failed (state error or dead)"`
	OnReject  Hook `yaml:"on_reject" doc:"a flow run after a message was rejected (a stop)"`
	OnDrop    Hook `yaml:"on_drop" doc:"a flow run after a message was dropped (a drop)"`
	Finally   Hook `yaml:"finally" doc:"a flow run after every settled message, after the hook of its outcome"`
}

// Hook names the flow of an outcome hook: `on_ok: notify` or
// `on_ok: {call: notify}`.
type Hook struct {
	// Call names the flow.
	Call string `yaml:"call" spec:"scalar" doc:"the flow to run"`
}

// expectedFlows is "expected one of a, b" for an unknown flow.
func expectedFlows(names []string) string {
	switch len(names) {
	case 0:
		return "the configuration declares none"
	case 1:
		return "expected " + names[0]
	}
	return "expected one of " + strings.Join(names, ", ")
}

// durable reports whether the channel's runs are durable (durable: steps
// or effects).
func (sp *Spec) durable() bool { return sp.Durable == "steps" || sp.Durable == "effects" }

// Package channel runs a flow behind sources with nothing lost: a Channel
// is a set of sources (HTTP routes, schedules, watched folders, brokers), a
// flow, a message store and a supervisor.
//
// For every message a source delivers, the channel records it in the store
// (pending), runs the flow on it (processing) and records the outcome, the
// run's context and trace (done, rejected, error, dead). A message a crash left
// pending or processing runs again when the channel starts; a finished
// message delivered again is answered from the store, not run twice.
//
// The supervisor applies the control errors of package errors and tells
// the source how to settle the message ([Settle]). A [Result] carries the
// outcome as an errors.Kind and the store's state as a store.State:
//
//	the flow returned        outcome          state       settle   HTTP
//	nil                      ok               done        Ack      200 with the output context
//	Stop                     stop             rejected    Ack      422 with the reason
//	Drop                     dropped          done        Ack      204, no body (consumed silently)
//	Retry, retries ran out   retry-exhausted  error       Nack     503 with Retry-After (after MaxDeliveries: dead, Fail, 500)
//	Fatal                    -                -           -        services closed and re-initialised under the
//	                                                               restart backoff; the message runs again
//	canceled (shutdown)      canceled         pending     Leave    503; runs again on the next start
//	any other error, panic   failed, panic    error       Fail     500 with an error id, never a stack
//
// (A Fatal that outlasts the restart budget leaves the message: outcome
// fatal, state pending, Leave.) A message left so goes back to pending
// with its outcome recorded; one left processing with no outcome was
// running when its process died. A message whose runs keep killing the
// process is set aside after Config.MaxCrashes such runs in a row (default
// 3): state dead, outcome fatal, error "gave up after N crashed runs";
// it is not run again, at a start or a redelivery, until replayed by hand
// ([SetAside], [Channel.Replay], [Channel.ReplayFrom] to resume at a
// step). Config.Redact masks secrets in what is stored and logged. A result the store cannot keep (a context holding +Inf or
// NaN) ends the message in state error with the reason, without its
// context, and fails it (HTTP 500 with an error id). A rejected message delivered again is
// answered from the store with the same Stop reason, which the store
// records as data beside the run's outcome (store.Record's Outcome and
// Reason), with or without traces.
//
// Sources implement [Source]: they call the channel's Handle for each
// message and settle it by the [Result]'s Settle and Outcome, never by
// the text of its error. The run's context is the message's
// JSON payload (or its text under "body"), with the message's meta under
// "meta" and its id as meta.id, the key to make a flow's effects
// idempotent.
//
// Sinks ([Sink], Config.Sinks) get the output of every run that succeeds
// before its outcome is recorded and its source is answered; a sink's
// failure is a Retry failure of the message, which its source delivers
// again (and the sinks get again: they deduplicate by message id).
//
// A Drop (errors.Drop: a filter, "not for us") is not a rejection: the
// message is stored as done with outcome dropped and the reason
// (store.Record's Outcome and Reason), counted under "dropped" in
// Status.Outcomes, and a duplicate delivery is answered dropped again.
//
// Hooks (Config.Hooks: on ok, on failure, on reject, on drop, finally)
// are flows run after a message's outcome is recorded, on a copy of its
// final context with the outcome under [OutcomeKey]; a failing hook is
// logged and counted (Status.HookErrors) and changes nothing.
// Config.OnStateChange is told each state change of the channel
// (stopped, starting, running, restarting, stopping) with its cause. A
// channel without a flow (Config.Flow nil) records and answers each
// message as it came.
//
// Lifecycle: [Channel.Start] initialises the flow's services, starts the
// sources and returns; the owed messages run again in the background,
// concurrently (at most RecoverConcurrency, and half of MaxInFlight, at a
// time), while new ones are served; [Status] counts them in Recovering.
// [Channel.Stop] stops intake, drains the messages in flight (bounded by
// its context) and closes the services; owed messages recovery had not
// taken yet stay owed for the next start.
//
// Config.MaxInFlight bounds the messages run at once (default 1024): a
// delivery beyond it is left unrecorded with [ErrBusy] (HTTP 503 with
// Retry-After), unless its context comes from [WaitWhenBusy].
// [Channel.Handle], [Channel.Inject] and [Channel.Replay] also work on a
// channel without sources. Handle and Inject take messages only while the
// channel runs: on a channel stopped, never started, starting or
// stopping they refuse at once with [ErrStopped] (Leave: HTTP 503,
// redelivery) and record nothing, so that no message is left processing
// by a race with Stop. Replay also works on a stopped channel (`flowrun
// messages replay`).
//
// Durable runs: with Config.Durable (`durable: steps`) each completed step
// of a run is journaled in the store (store.Journal) before the next
// starts, so a run of the message again (recovery after a crash, a Fatal
// restart, a redelivery of an owed message, [Channel.Resume]) restores
// the context and continues at the first step not completed; elements of
// an Each and branches of an All are units of their own. A `wait` step,
// or a `sleep` over a second, parks the message in state waiting: no
// goroutine is held, a timer goroutine of the channel asks the store for
// the next due wait, and [Channel.Signal] (the admin API of flowrun
// serve, `flowrun messages ... signal`) wakes a message waiting for a
// signal. A message whose flow changed since its steps were journaled is
// left in state error naming the change (or run from the top with
// Config.RestartOnChange). [Channel.Replay] of a finished message runs it
// from the top. Taps are not journaled. A saga's completed steps are, so
// a failure after a crash compensates them, and so is its compensation: a
// message whose saga began compensating finishes it when it runs again,
// each undo once, without running the saga forward. A wait inside an
// element, a branch or a loop parks the whole message and resumes into
// that unit (see flow.Journal). With Config.JournalEffects (`durable:
// effects`) a step without effects (flow.Pure) is written with the next
// write instead of before the next step starts.
//
// Store health: [Channel.Start] probes the store (store.Prober) and fails
// with [ErrStoreNotWritable] and the cause when it cannot be written. A
// store write that fails for a reason other than the message (a full
// disk, a read-only database, an I/O error; not ErrExists, ErrNotFound,
// ErrInvalid, ErrClosed or a canceled context) leaves the delivery with
// its source (HTTP 503 with Retry-After) and marks the store not
// writable: [Channel.Status] reports the failure in StoreError until a write
// succeeds, or a probe does; a running channel probes every
// [ProbeInterval] meanwhile, so that it recovers without traffic.
//
// A store per block: [Record] and [RecordOpen] wrap any step or block
// (flow.When, flow.Fork, flow.Tap, ...) so that every run reaching it is
// recorded in a store of its own with its state (processing, then done,
// rejected or error), under the ID "message ID@path of the block":
// pypeman's message_store_factory of a sub-channel, `record: STORE` in
// YAML.
package channel

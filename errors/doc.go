// Package errors is a drop-in superset of the standard library's errors
// package (New, Is, As, AsType, Join, Unwrap and ErrUnsupported are
// re-exported unchanged) that adds the control errors of the service-flow
// engine and a retry Policy.
//
// # Control errors
//
// A service tells the engine what to do with a failure by the kind of
// error it returns. Each control error matches its sentinel with errors.Is
// however deeply it is wrapped, and KindOf classifies any error.
//
//   - Stop (Stop, Stopf, ErrStop): the run ends on purpose — invalid input,
//     nothing to do. It is never retried. HTTP adapters answer 422
//     Unprocessable Entity; message adapters reject the message and ack it,
//     so it is not redelivered.
//
//   - Drop (Drop, Dropf, ErrDrop, KindDropped): the run ends on purpose
//     and the message is consumed silently (a filter): not a rejection.
//     Channels ack it, count it and store it as done with outcome
//     dropped; HTTP adapters answer 204 No Content; inside an Each only
//     the element that dropped is left out. It is never retried.
//
//   - Retry (Retry, RetryAfter, ErrRetry): a transient failure. The engine
//     runs the step again under its Policy, waiting the backoff interval or
//     the RetryAfter hint. When the retries are exhausted the result is an
//     *ExhaustedError (ErrExhausted, KindRetryExhausted) that still matches
//     ErrRetry, and HTTP adapters answer 503 Service Unavailable with a
//     Retry-After header (see RetryAfterHint).
//
//   - Fatal (Fatal, ErrFatal): the processor itself is broken. It is never
//     retried; the engine stops the processor and its owner restarts it. The
//     message is not acked, so it is redelivered to the restarted processor.
//
// Two more kinds are not created by services directly:
//
//   - A panic in a service is recovered by the engine and turned into an
//     error with Recovered: a *PanicError (ErrPanic) whose Error is
//     "panic: <value>" and whose Stack field holds the goroutine stack for
//     logging. It is not retried.
//
//   - Cancellation (context.Canceled or context.DeadlineExceeded, KindCanceled)
//     stops the run at once, including in the middle of a retry wait. The
//     message is not acked.
//
// When an error carries several kinds (for example a Join of a Retry and a
// Stop), the most severe wins: Fatal > Canceled > Stop > Dropped > Panic >
// Retry > Failed (KindOf gives the full order). KindFailed is any other error: by
// default it is not retried.
//
// # Outcomes
//
// Kind is the one vocabulary of outcomes, used by traces, logs, metrics
// labels, test tables and channel results. Besides the kinds of errors
// above (KindOK for success, KindStop, KindDropped, KindRetry, KindFatal,
// KindCanceled, KindPanic, KindFailed), it names what becomes of retried work:
//
//   - KindWillRetry ("will-retry"): an attempt that failed and is retried;
//     its error is a *WillRetryError (ErrWillRetry).
//   - KindRetryExhausted ("retry-exhausted"): a Retry error whose retries
//     ran out: an *ExhaustedError whose last error is a Retry.
//   - KindSkipped ("skipped"): a step that did not run.
//
// A step that succeeds on its third attempt has two attempts of kind
// will-retry and one ok; one whose three attempts all fail with Retry has
// two will-retry and one retry-exhausted. A Kind encodes as its name in
// text and JSON and decodes from it (ParseKind).
//
// # Policy
//
// Policy.Do runs a step with retries. Policy is plain data and its zero
// value means the defaults: first wait 100ms, doubling each time, capped at
// 10s, 3 attempts in total, no limit on elapsed time, no jitter, and only
// Retry errors retried. NoRetry makes a single attempt. Waits use timers and
// honor context cancellation, and Do allocates nothing when the first attempt
// succeeds. An engine that makes the attempts itself drives the same
// decisions with Retries (Policy.Retries, Retries.Next, Retries.Wait).
package errors

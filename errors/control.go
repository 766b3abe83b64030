package errors

import (
	"fmt"
	"runtime/debug"
	"strconv"
	"time"
)

// Sentinels for the control errors. Every control error type reports itself
// as its sentinel through an Is method, so errors.Is(err, ErrRetry) holds for
// a *RetryError wrapped at any depth (fmt.Errorf with %w, Join, ...).
// The sentinels themselves classify as their kind too: KindOf(ErrStop) is
// KindStop.
var (
	// ErrStop matches every *StopError.
	ErrStop = New("stop")
	// ErrDrop matches every *DropError.
	ErrDrop = New("dropped")
	// ErrRetry matches every *RetryError.
	ErrRetry = New("retry")
	// ErrFatal matches every *FatalError.
	ErrFatal = New("fatal")
	// ErrExhausted matches every *ExhaustedError.
	ErrExhausted = New("retries exhausted")
	// ErrPanic matches every *PanicError.
	ErrPanic = New("panic")
	// ErrWillRetry matches every *WillRetryError.
	ErrWillRetry = New("will retry")
	// ErrWaiting matches the error of a durable run that parked at a step
	// to wait for a timer or a signal (package flow's *ParkError).
	ErrWaiting = New("waiting")
)

// StopError ends a run on purpose: the input is invalid or there is nothing
// to do. It is never retried. Create it with Stop or Stopf.
type StopError struct {
	// Reason says why the run stopped, for humans.
	Reason string
	// Cause is the underlying error, if any.
	Cause error

	// causeInReason is set by Stopf when Reason already contains the text
	// of Cause (it came from a %w verb), so Error does not repeat it.
	causeInReason bool
}

// Stop returns a *StopError with the given reason.
func Stop(reason string) error { return &StopError{Reason: reason} }

// Stopf returns a *StopError whose Reason is formatted as by fmt.Sprintf.
// Errors given to %w verbs become the Cause (joined when there are several),
// so errors.Is and errors.As see them.
func Stopf(format string, args ...any) error {
	w := fmt.Errorf(format, args...)
	e := &StopError{Reason: w.Error()}
	switch u := w.(type) {
	case interface{ Unwrap() error }:
		e.Cause = u.Unwrap()
	case interface{ Unwrap() []error }:
		e.Cause = Join(u.Unwrap()...)
	}
	e.causeInReason = e.Cause != nil
	return e
}

// Error returns "stop: <reason>", followed by ": <cause>" when there is a
// Cause that the reason does not already spell out.
func (e *StopError) Error() string {
	msg := "stop"
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Cause != nil && !e.causeInReason {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Is reports whether target is ErrStop.
func (e *StopError) Is(target error) bool { return target == ErrStop }

// Unwrap returns the Cause.
func (e *StopError) Unwrap() error { return e.Cause }

// DropError ends a run on purpose and consumes the message silently: the
// message is not for this flow (a filter), nothing is wrong with it, and
// no one is told. Unlike a Stop it is not a rejection: a channel acks the
// message, counts it as dropped and stores it as done with outcome
// KindDropped and the reason; an HTTP source answers 204 No Content by
// default. Inside an Each, an element whose steps drop is left out of the
// collected results and the other elements go on. It is never retried.
// Create it with Drop or Dropf.
type DropError struct {
	// Reason says why the message was dropped, for humans.
	Reason string
	// Cause is the underlying error, if any.
	Cause error
}

// Drop returns a *DropError with the given reason.
func Drop(reason string) error { return &DropError{Reason: reason} }

// Dropf returns a *DropError whose Reason is formatted as by
// fmt.Sprintf; an error given to a %w verb becomes the Cause.
func Dropf(format string, args ...any) error {
	w := fmt.Errorf(format, args...)
	e := &DropError{Reason: w.Error()}
	switch u := w.(type) {
	case interface{ Unwrap() error }:
		e.Cause = u.Unwrap()
	case interface{ Unwrap() []error }:
		e.Cause = Join(u.Unwrap()...)
	}
	return e
}

// Error returns "dropped: <reason>" ("dropped" without a reason).
func (e *DropError) Error() string {
	if e.Reason == "" {
		return "dropped"
	}
	return "dropped: " + e.Reason
}

// Is reports whether target is ErrDrop.
func (e *DropError) Is(target error) bool { return target == ErrDrop }

// Unwrap returns the Cause.
func (e *DropError) Unwrap() error { return e.Cause }

// RetryError marks a transient failure: the step should run again under a
// Policy. Create it with Retry or RetryAfter.
type RetryError struct {
	// Cause is the transient failure; it may be nil.
	Cause error
	// After, when positive, is a hint (such as an HTTP Retry-After) that
	// replaces the next backoff interval.
	After time.Duration
}

// Retry returns a *RetryError wrapping cause. A nil cause is allowed.
func Retry(cause error) error { return &RetryError{Cause: cause} }

// RetryAfter returns a *RetryError wrapping cause with a hint to wait
// after before the next attempt. A nil cause is allowed.
func RetryAfter(cause error, after time.Duration) error {
	return &RetryError{Cause: cause, After: after}
}

// Error returns "retry: <cause>", or "retry" when there is no Cause.
func (e *RetryError) Error() string {
	if e.Cause == nil {
		return "retry"
	}
	return "retry: " + e.Cause.Error()
}

// Is reports whether target is ErrRetry.
func (e *RetryError) Is(target error) bool { return target == ErrRetry }

// Unwrap returns the Cause.
func (e *RetryError) Unwrap() error { return e.Cause }

// FatalError means the processor is broken. It is never retried; the owner
// of the processor is expected to restart it. Create it with Fatal.
type FatalError struct {
	// Cause is what broke; it may be nil.
	Cause error
}

// Fatal returns a *FatalError wrapping cause. A nil cause is allowed.
func Fatal(cause error) error { return &FatalError{Cause: cause} }

// Error returns "fatal: <cause>", or "fatal" when there is no Cause.
func (e *FatalError) Error() string {
	if e.Cause == nil {
		return "fatal"
	}
	return "fatal: " + e.Cause.Error()
}

// Is reports whether target is ErrFatal.
func (e *FatalError) Is(target error) bool { return target == ErrFatal }

// Unwrap returns the Cause.
func (e *FatalError) Unwrap() error { return e.Cause }

// PanicError is a panic recovered from a service. Create it with Recovered.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the goroutine stack captured when the panic was recovered.
	// It is not part of Error; log it separately.
	Stack []byte
}

// Recovered turns the result of recover() into a *PanicError, capturing the
// current goroutine's stack. Call it in the deferred function that recovers,
// so the stack still shows the panicking frames:
//
//	defer func() {
//		if r := recover(); r != nil {
//			err = errors.Recovered(r)
//		}
//	}()
//
// Recovered(nil) returns nil (since Go 1.21 recover returns nil only when
// there was no panic), and a *PanicError passed in is returned unchanged so
// a re-panic keeps its original stack.
func Recovered(v any) error {
	switch v := v.(type) {
	case nil:
		return nil
	case *PanicError:
		return v
	}
	return &PanicError{Value: v, Stack: debug.Stack()}
}

// Error returns "panic: <value>". The stack is not included.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Is reports whether target is ErrPanic.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns Value if it is an error, else nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// ExhaustedError is returned by Policy.Do when a retryable error persisted
// until the attempts or the elapsed-time budget ran out.
type ExhaustedError struct {
	// Attempts is how many times the function was called.
	Attempts int
	// Last is the error returned by the last attempt.
	Last error
}

// Error returns "retries exhausted after N attempts: <last>".
func (e *ExhaustedError) Error() string {
	msg := "retries exhausted after " + strconv.Itoa(e.Attempts) + " attempt"
	if e.Attempts != 1 {
		msg += "s"
	}
	if e.Last != nil {
		msg += ": " + e.Last.Error()
	}
	return msg
}

// Is reports whether target is ErrExhausted.
func (e *ExhaustedError) Is(target error) bool { return target == ErrExhausted }

// Unwrap returns Last, so errors.Is(err, ErrRetry) still holds when the last
// attempt returned a Retry error.
func (e *ExhaustedError) Unwrap() error { return e.Last }

// WillRetryError is the error of an attempt that failed and is retried
// under a Policy: Retries.Next returns it. It never ends an execution.
// Package flow passes it out through the middleware around the attempt,
// so loggers and metrics see the attempt as KindWillRetry. It wraps the
// attempt's error.
type WillRetryError struct {
	// Attempt is the number of the attempt that failed, counted from 1.
	Attempt int
	// After is the wait before the next attempt.
	After time.Duration
	// Err is the error the attempt returned.
	Err error
}

// Error returns "attempt N failed, retrying in D: <err>".
func (e *WillRetryError) Error() string {
	msg := "attempt " + strconv.Itoa(e.Attempt) + " failed, retrying in " + e.After.String()
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is reports whether target is ErrWillRetry.
func (e *WillRetryError) Is(target error) bool { return target == ErrWillRetry }

// Unwrap returns Err.
func (e *WillRetryError) Unwrap() error { return e.Err }

package errors

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Kind is an outcome: how a run, a step or one attempt of a step ended.
// It is the one vocabulary of outcomes: traces, logs, metrics labels, test
// tables and channel results all use it. KindOf classifies an error; the
// engine adds the outcomes that no single error carries (KindSkipped).
//
// A Kind encodes as its name (see String) in text and JSON, and decodes
// from it (see ParseKind).
type Kind int

// The kinds. The zero Kind is KindOK.
const (
	// KindOK ("ok"): success; the kind of a nil error.
	KindOK Kind = iota
	// KindStop ("stop"): the run ended on purpose (StopError); it is not
	// retried.
	KindStop
	// KindRetry ("retry"): a transient failure (RetryError) that no Policy
	// has retried (yet).
	KindRetry
	// KindFatal ("fatal"): the processor is broken (FatalError); its owner
	// restarts it.
	KindFatal
	// KindCanceled ("canceled"): context.Canceled or
	// context.DeadlineExceeded: not the input's fault.
	KindCanceled
	// KindPanic ("panic"): a recovered panic (PanicError).
	KindPanic
	// KindFailed ("failed"): any other error.
	KindFailed
	// KindSkipped ("skipped"): a step that did not run because its
	// condition did not hold. No error has this kind.
	KindSkipped
	// KindWillRetry ("will-retry"): an attempt that failed and is retried
	// (WillRetryError). Only the attempts of a retried step have this kind
	// (middleware sees it); a run never ends with it.
	KindWillRetry
	// KindRetryExhausted ("retry-exhausted"): a transient failure whose
	// retries ran out (an ExhaustedError whose last attempt returned a Retry
	// error).
	KindRetryExhausted
	// KindWaiting ("waiting"): a durable run that parked at a step waiting
	// for a timer or a signal (an error wrapping ErrWaiting); it is
	// neither a success nor a failure: it resumes at that step later.
	KindWaiting
	// KindResumed ("resumed"): a step of a durable run that completed in
	// an earlier run and was not run again; its trace span keeps the
	// original times. No error has this kind.
	KindResumed
	// KindDropped ("dropped"): the run ended on purpose and the message
	// is consumed silently (DropError): not an error, not a rejection; a
	// channel counts it and stores it as done with this outcome. Inside
	// an Each, the element that dropped is left out and the others go on.
	KindDropped
)

var kindNames = [...]string{
	KindOK:             "ok",
	KindStop:           "stop",
	KindRetry:          "retry",
	KindFatal:          "fatal",
	KindCanceled:       "canceled",
	KindPanic:          "panic",
	KindFailed:         "failed",
	KindSkipped:        "skipped",
	KindWillRetry:      "will-retry",
	KindRetryExhausted: "retry-exhausted",
	KindWaiting:        "waiting",
	KindResumed:        "resumed",
	KindDropped:        "dropped",
}

// Kinds returns every kind, in the order of their values.
func Kinds() []Kind {
	out := make([]Kind, len(kindNames))
	for i := range out {
		out[i] = Kind(i)
	}
	return out
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool { return k >= 0 && int(k) < len(kindNames) }

// String returns the kind's name: "ok", "stop", "retry", "fatal",
// "canceled", "panic", "failed", "skipped", "will-retry",
// "retry-exhausted", "waiting", "resumed" or "dropped"; "Kind(N)" for a value that is
// not a kind.
func (k Kind) String() string {
	if k.Valid() {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText encodes the kind as its name. A value that is not a kind is
// an error.
func (k Kind) MarshalText() ([]byte, error) {
	if !k.Valid() {
		return nil, New("errors: cannot encode " + k.String() + ": not a kind")
	}
	return []byte(kindNames[k]), nil
}

// UnmarshalText decodes a kind's name (see ParseKind).
func (k *Kind) UnmarshalText(text []byte) error {
	v, err := ParseKind(string(text))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// ParseKind returns the kind named s, as String spells it. "failure", the
// former name of KindFailed, is accepted too, so older traces and test
// tables still decode. Any other text is an error that lists the names.
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if s == name {
			return Kind(k), nil
		}
	}
	if s == "failure" {
		return KindFailed, nil
	}
	return 0, New("errors: unknown kind " + strconv.Quote(s) + ": want one of " + strings.Join(kindNames[:], ", "))
}

// KindOf classifies err, looking through its whole tree (fmt.Errorf %w
// wrapping, Join, and the control errors' own causes). When several kinds
// are present the most severe wins:
//
//	Fatal > Canceled > Waiting > Stop > Dropped > Panic > WillRetry > RetryExhausted > Retry > Failed
//
// A nil error is KindOK. KindOf never returns KindSkipped or KindResumed.
func KindOf(err error) Kind {
	switch {
	case err == nil:
		return KindOK
	case Is(err, ErrFatal):
		return KindFatal
	case Is(err, context.Canceled), Is(err, context.DeadlineExceeded):
		return KindCanceled
	case Is(err, ErrWaiting):
		return KindWaiting
	case Is(err, ErrStop):
		return KindStop
	case Is(err, ErrDrop):
		return KindDropped
	case Is(err, ErrPanic):
		return KindPanic
	case Is(err, ErrWillRetry):
		return KindWillRetry
	case Is(err, ErrRetry):
		if Is(err, ErrExhausted) {
			return KindRetryExhausted
		}
		return KindRetry
	default:
		return KindFailed
	}
}

// IsStop reports whether err classifies as KindStop.
func IsStop(err error) bool { return KindOf(err) == KindStop }

// IsDrop reports whether err classifies as KindDropped.
func IsDrop(err error) bool { return KindOf(err) == KindDropped }

// IsRetry reports whether err is a transient failure, whatever became of
// it: it classifies as KindRetry or KindRetryExhausted, or as KindWillRetry
// around a Retry error.
func IsRetry(err error) bool {
	switch KindOf(err) {
	case KindRetry, KindRetryExhausted:
		return true
	case KindWillRetry:
		return Is(err, ErrRetry)
	}
	return false
}

// IsFatal reports whether err classifies as KindFatal.
func IsFatal(err error) bool { return KindOf(err) == KindFatal }

// RetryAfterHint returns the After of the first *RetryError in err's tree
// (pre-order, as errors.As finds it), if that After is positive.
func RetryAfterHint(err error) (time.Duration, bool) {
	re, ok := AsType[*RetryError](err)
	if !ok || re.After <= 0 {
		return 0, false
	}
	return re.After, true
}

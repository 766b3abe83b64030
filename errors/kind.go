package errors

import (
	"context"
	"strconv"
	"time"
)

// Kind classifies an error by what an engine should do with it.
type Kind int

// The kinds, as returned by KindOf.
const (
	// KindOK is the kind of a nil error.
	KindOK Kind = iota
	// KindStop: the run ended on purpose (StopError); do not retry.
	KindStop
	// KindRetry: a transient failure (RetryError); retry under a Policy.
	KindRetry
	// KindFatal: the processor is broken (FatalError); restart it.
	KindFatal
	// KindCanceled: context.Canceled or context.DeadlineExceeded.
	KindCanceled
	// KindPanic: a recovered panic (PanicError).
	KindPanic
	// KindFailure: any other error.
	KindFailure
)

var kindNames = [...]string{
	KindOK:       "ok",
	KindStop:     "stop",
	KindRetry:    "retry",
	KindFatal:    "fatal",
	KindCanceled: "canceled",
	KindPanic:    "panic",
	KindFailure:  "failure",
}

// String returns the lower-case name of the kind ("ok", "stop", "retry",
// "fatal", "canceled", "panic", "failure"), or "Kind(N)" for unknown values.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// KindOf classifies err, looking through its whole tree (fmt.Errorf %w
// wrapping, Join, and the control errors' own causes). When several kinds
// are present the most severe wins:
//
//	Fatal > Canceled > Stop > Panic > Retry > Failure
//
// A nil error is KindOK.
func KindOf(err error) Kind {
	switch {
	case err == nil:
		return KindOK
	case Is(err, ErrFatal):
		return KindFatal
	case Is(err, context.Canceled), Is(err, context.DeadlineExceeded):
		return KindCanceled
	case Is(err, ErrStop):
		return KindStop
	case Is(err, ErrPanic):
		return KindPanic
	case Is(err, ErrRetry):
		return KindRetry
	default:
		return KindFailure
	}
}

// IsStop reports whether err classifies as KindStop.
func IsStop(err error) bool { return KindOf(err) == KindStop }

// IsRetry reports whether err classifies as KindRetry.
func IsRetry(err error) bool { return KindOf(err) == KindRetry }

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

package bus

import (
	"context"
	"encoding/json"
	"fmt"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// wireReply is a reply as a [Transport] carries it.
type wireReply struct {
	Out    json.RawMessage `json:"out,omitempty"`
	Error  string          `json:"error,omitempty"`
	Kind   errors.Kind     `json:"kind,omitempty"`
	Reason string          `json:"reason,omitempty"`
	Code   string          `json:"code,omitempty"`
}

// codes name the bus's errors on the wire.
var codes = []struct {
	code string
	err  error
}{
	{"unknown_destination", ErrUnknownDestination},
	{"unknown_action", ErrUnknownAction},
	{"stopped", ErrStopped},
	{"disabled", ErrDisabled},
	{"mailbox_full", ErrMailboxFull},
	{"bus_stopped", ErrBusStopped},
}

// EncodeReply encodes the outcome of a request for a [Transport] to carry
// back: the output context as JSON, or the error's text, its errors.Kind,
// a Stop's reason and which of the bus's errors it wraps, if any.
// [DecodeReply] reverses it.
func EncodeReply(out map[string]any, err error) ([]byte, error) {
	var w wireReply
	if err != nil {
		w.Error, w.Kind = err.Error(), errors.KindOf(err)
		if se, ok := errors.AsType[*errors.StopError](err); ok {
			w.Reason = se.Reason
		}
		for _, c := range codes {
			if errors.Is(err, c.err) {
				w.Code = c.code
				break
			}
		}
	} else {
		body, merr := fc.AppendJSON(nil, out)
		if merr != nil {
			return nil, fmt.Errorf("bus: encode reply: %w", merr)
		}
		w.Out = body
	}
	return json.Marshal(w)
}

// DecodeReply decodes what [EncodeReply] made: the output context, or an
// error that keeps the remote error's text and classifies as it did:
// errors.KindOf gives its kind, errors.As finds a Stop's *errors.StopError
// with its reason, and errors.Is finds the bus's error it wrapped
// (ErrUnknownAction, ErrStopped, ...).
func DecodeReply(data []byte) (map[string]any, error) {
	var w wireReply
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("bus: decode reply: %w", err)
	}
	if w.Error == "" && w.Kind == errors.KindOK {
		if len(w.Out) == 0 {
			return map[string]any{}, nil
		}
		c, err := fc.FromJSON(w.Out)
		if err != nil {
			return nil, fmt.Errorf("bus: decode reply: %w", err)
		}
		return c.Map(), nil
	}
	re := &RemoteError{Text: w.Error, Kind: w.Kind}
	for _, c := range codes {
		if c.code == w.Code {
			re.code = c.err
		}
	}
	if w.Kind == errors.KindStop {
		return nil, &errors.StopError{Reason: w.Reason, Cause: re}
	}
	return nil, re
}

// RemoteError is the error of a run in another process, as
// [DecodeReply] returns it: its text and its kind. errors.KindOf(err)
// is Kind, and errors.Is finds the bus's error the remote one wrapped.
type RemoteError struct {
	// Text is the remote error's text.
	Text string
	// Kind is its errors.Kind.
	Kind errors.Kind
	code error
}

// Error implements error: the remote error's text.
func (e *RemoteError) Error() string { return e.Text }

// Is reports whether target is the sentinel of Kind (errors.ErrFatal,
// errors.ErrRetry, context.Canceled, ...) or the bus's error the remote one wrapped.
func (e *RemoteError) Is(target error) bool {
	if e.code != nil && target == e.code {
		return true
	}
	switch e.Kind {
	case errors.KindFatal:
		return target == errors.ErrFatal
	case errors.KindStop:
		return target == errors.ErrStop
	case errors.KindPanic:
		return target == errors.ErrPanic
	case errors.KindRetry:
		return target == errors.ErrRetry
	case errors.KindRetryExhausted:
		return target == errors.ErrRetry || target == errors.ErrExhausted
	case errors.KindWaiting:
		return target == errors.ErrWaiting
	case errors.KindCanceled:
		return target == context.Canceled
	}
	return false
}

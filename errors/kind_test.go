package errors_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/errors"
)

func TestKindString(t *testing.T) {
	want := map[errors.Kind]string{
		errors.KindOK:             "ok",
		errors.KindStop:           "stop",
		errors.KindRetry:          "retry",
		errors.KindFatal:          "fatal",
		errors.KindCanceled:       "canceled",
		errors.KindPanic:          "panic",
		errors.KindFailed:         "failed",
		errors.KindSkipped:        "skipped",
		errors.KindWillRetry:      "will-retry",
		errors.KindRetryExhausted: "retry-exhausted",
		errors.KindWaiting:        "waiting",
		errors.KindResumed:        "resumed",
		errors.KindDropped:        "dropped",
		errors.Kind(42):           "Kind(42)",
		errors.Kind(-1):           "Kind(-1)",
	}
	for k, s := range want {
		assert.Equal(t, s, k.String())
		assert.Equal(t, k >= 0 && k < 42, k.Valid(), "%v", k)
	}
	assert.Len(t, errors.Kinds(), len(want)-2, "every kind is listed once")
	for i, k := range errors.Kinds() {
		assert.Equal(t, errors.Kind(i), k)
	}
}

func TestKindTextRoundTrip(t *testing.T) {
	for _, k := range errors.Kinds() {
		text, err := k.MarshalText()
		require.NoError(t, err)
		assert.Equal(t, k.String(), string(text))
		var back errors.Kind
		require.NoError(t, back.UnmarshalText(text))
		assert.Equal(t, k, back)

		// In JSON, as a value and as a map key.
		type doc struct {
			Outcome errors.Kind         `json:"outcome"`
			Counts  map[errors.Kind]int `json:"counts"`
		}
		in := doc{Outcome: k, Counts: map[errors.Kind]int{k: 2}}
		b, err := json.Marshal(in)
		require.NoError(t, err)
		assert.JSONEq(t, `{"outcome":"`+k.String()+`","counts":{"`+k.String()+`":2}}`, string(b))
		var out doc
		require.NoError(t, json.Unmarshal(b, &out))
		assert.Equal(t, in, out)
	}
}

func TestKindTextErrors(t *testing.T) {
	_, err := errors.Kind(42).MarshalText()
	assert.EqualError(t, err, "errors: cannot encode Kind(42): not a kind")
	_, err = json.Marshal(struct{ K errors.Kind }{errors.Kind(-1)})
	assert.ErrorContains(t, err, "not a kind")

	for _, bad := range []string{"", "OK", "Stop", "retry_exhausted", "any", "none"} {
		k := errors.KindStop
		err := k.UnmarshalText([]byte(bad))
		assert.EqualError(t, err, `errors: unknown kind "`+bad+`": want one of ok, stop, retry, fatal, canceled, panic, failed, skipped, will-retry, retry-exhausted, waiting, resumed, dropped`)
		assert.Equal(t, errors.KindStop, k, "unchanged on error")
	}
	var v struct{ K errors.Kind }
	assert.Error(t, json.Unmarshal([]byte(`{"K":"nope"}`), &v))
	assert.Error(t, json.Unmarshal([]byte(`{"K":3}`), &v), "a kind is its name, not its number")
}

func TestParseKindAcceptsFormerFailureName(t *testing.T) {
	k, err := errors.ParseKind("failure")
	require.NoError(t, err)
	assert.Equal(t, errors.KindFailed, k)
	b, err := k.MarshalText()
	require.NoError(t, err)
	assert.Equal(t, "failed", string(b), "encoded under its one name")
	for _, k := range errors.Kinds() {
		got, err := errors.ParseKind(k.String())
		require.NoError(t, err)
		assert.Equal(t, k, got)
	}
}

func TestKindOf(t *testing.T) {
	var (
		stop     = errors.Stop("s")
		retry    = errors.Retry(io.EOF)
		fatal    = errors.Fatal(io.EOF)
		panicErr = &errors.PanicError{Value: "p"}
		plain    = io.EOF
		wrap     = func(err error) error { return fmt.Errorf("step: %w", err) }
	)
	tests := []struct {
		name string
		err  error
		want errors.Kind
	}{
		{"nil", nil, errors.KindOK},
		{"plain", plain, errors.KindFailed},
		{"stop", stop, errors.KindStop},
		{"retry", retry, errors.KindRetry},
		{"fatal", fatal, errors.KindFatal},
		{"panic", panicErr, errors.KindPanic},
		{"canceled", context.Canceled, errors.KindCanceled},
		{"deadline", context.DeadlineExceeded, errors.KindCanceled},
		{"sentinel stop", errors.ErrStop, errors.KindStop},
		{"sentinel retry", errors.ErrRetry, errors.KindRetry},
		{"sentinel fatal", errors.ErrFatal, errors.KindFatal},
		{"sentinel panic", errors.ErrPanic, errors.KindPanic},
		{"sentinel exhausted", errors.ErrExhausted, errors.KindFailed},
		{"sentinel will retry", errors.ErrWillRetry, errors.KindWillRetry},

		{"wrapped stop", wrap(stop), errors.KindStop},
		{"wrapped retry", wrap(wrap(retry)), errors.KindRetry},
		{"wrapped canceled", wrap(context.Canceled), errors.KindCanceled},
		{"exhausted retry", &errors.ExhaustedError{Attempts: 3, Last: retry}, errors.KindRetryExhausted},
		{"wrapped exhausted retry", wrap(&errors.ExhaustedError{Attempts: 3, Last: wrap(retry)}), errors.KindRetryExhausted},
		{"exhausted plain", &errors.ExhaustedError{Attempts: 3, Last: plain}, errors.KindFailed},
		{"will retry", &errors.WillRetryError{Attempt: 1, Err: retry}, errors.KindWillRetry},
		{"will retry plain", wrap(&errors.WillRetryError{Attempt: 2, Err: plain}), errors.KindWillRetry},

		// Precedence: Fatal > Canceled > Stop > Panic > WillRetry >
		// RetryExhausted > Retry > Failed.
		{"fatal>canceled", errors.Join(context.Canceled, fatal), errors.KindFatal},
		{"fatal>all", errors.Join(plain, retry, panicErr, stop, context.Canceled, wrap(fatal)), errors.KindFatal},
		{"canceled>stop", errors.Join(stop, wrap(context.DeadlineExceeded)), errors.KindCanceled},
		{"stop>panic", errors.Join(panicErr, stop), errors.KindStop},
		{"panic>retry", errors.Join(retry, panicErr), errors.KindPanic},
		{"retry>failed", errors.Join(plain, wrap(retry)), errors.KindRetry},
		{"will retry>exhausted", errors.Join(&errors.ExhaustedError{Last: retry}, &errors.WillRetryError{Err: retry}), errors.KindWillRetry},
		{"exhausted>retry", errors.Join(retry, &errors.ExhaustedError{Last: retry}), errors.KindRetryExhausted},
		{"stop>will retry", errors.Join(&errors.WillRetryError{Err: retry}, stop), errors.KindStop},
		{"retry wrapping fatal", errors.Retry(fatal), errors.KindFatal},
		{"stop wrapping retry", errors.Stopf("gave up: %w", retry), errors.KindStop},
		{"retry wrapping canceled", errors.Retry(context.Canceled), errors.KindCanceled},
		{"panic with fatal value", &errors.PanicError{Value: fatal}, errors.KindFatal},
		{"fatal in %w pair", fmt.Errorf("%w; %w", retry, fatal), errors.KindFatal},
		{"drop", errors.Drop("not ours"), errors.KindDropped},
		{"wrapped drop", wrap(errors.Dropf("type %q", "x")), errors.KindDropped},
		{"sentinel drop", errors.ErrDrop, errors.KindDropped},
		{"stop>drop", errors.Join(errors.Drop("d"), stop), errors.KindStop},
		{"drop>panic", errors.Join(panicErr, errors.Drop("d")), errors.KindDropped},
		{"drop>retry", errors.Join(retry, errors.Drop("d")), errors.KindDropped},
		{"canceled>drop", errors.Join(errors.Drop("d"), context.Canceled), errors.KindCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errors.KindOf(tt.err)
			assert.Equal(t, tt.want, got, "got %v want %v", got, tt.want)
			assert.Equal(t, tt.want == errors.KindStop, errors.IsStop(tt.err), "IsStop")
			wantRetry := tt.want == errors.KindRetry || tt.want == errors.KindRetryExhausted ||
				(tt.want == errors.KindWillRetry && errors.Is(tt.err, errors.ErrRetry))
			assert.Equal(t, wantRetry, errors.IsRetry(tt.err), "IsRetry")
			assert.NotEqual(t, errors.KindSkipped, got, "no error is skipped")
			assert.Equal(t, tt.want == errors.KindFatal, errors.IsFatal(tt.err), "IsFatal")
			assert.Equal(t, tt.want == errors.KindDropped, errors.IsDrop(tt.err), "IsDrop")
		})
	}
}

func TestKindOfWaiting(t *testing.T) {
	parked := fmt.Errorf("step %q: %w", "approve", errors.ErrWaiting)
	assert.Equal(t, errors.KindWaiting, errors.KindOf(parked))
	assert.Equal(t, errors.KindCanceled, errors.KindOf(errors.Join(parked, context.Canceled)), "a canceled run is canceled")
	assert.Equal(t, errors.KindWaiting, errors.KindOf(errors.Join(parked, errors.Stop("x"))))
}

func TestDropError(t *testing.T) {
	err := errors.Drop("not an order")
	assert.EqualError(t, err, "dropped: not an order")
	assert.ErrorIs(t, err, errors.ErrDrop)
	assert.NotErrorIs(t, err, errors.ErrStop, "a drop is not a rejection")
	de, ok := errors.AsType[*errors.DropError](fmt.Errorf("step f: %w", err))
	require.True(t, ok)
	assert.Equal(t, "not an order", de.Reason)
	assert.EqualError(t, errors.Drop(""), "dropped")

	wrapped := errors.Dropf("type %q: %w", "ping", io.EOF)
	assert.EqualError(t, wrapped, `dropped: type "ping": EOF`)
	assert.ErrorIs(t, wrapped, io.EOF, "the cause is kept")
	assert.Equal(t, errors.KindDropped, errors.KindOf(wrapped))
}

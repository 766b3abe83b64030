package errors_test

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/svcflow/svcflow/errors"
)

func TestKindString(t *testing.T) {
	want := map[errors.Kind]string{
		errors.KindOK:       "ok",
		errors.KindStop:     "stop",
		errors.KindRetry:    "retry",
		errors.KindFatal:    "fatal",
		errors.KindCanceled: "canceled",
		errors.KindPanic:    "panic",
		errors.KindFailure:  "failure",
		errors.Kind(42):     "Kind(42)",
		errors.Kind(-1):     "Kind(-1)",
	}
	for k, s := range want {
		assert.Equal(t, s, k.String())
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
		{"plain", plain, errors.KindFailure},
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
		{"sentinel exhausted", errors.ErrExhausted, errors.KindFailure},

		{"wrapped stop", wrap(stop), errors.KindStop},
		{"wrapped retry", wrap(wrap(retry)), errors.KindRetry},
		{"wrapped canceled", wrap(context.Canceled), errors.KindCanceled},
		{"exhausted retry", &errors.ExhaustedError{Attempts: 3, Last: retry}, errors.KindRetry},
		{"exhausted plain", &errors.ExhaustedError{Attempts: 3, Last: plain}, errors.KindFailure},

		// Precedence: Fatal > Canceled > Stop > Panic > Retry > Failure.
		{"fatal>canceled", errors.Join(context.Canceled, fatal), errors.KindFatal},
		{"fatal>all", errors.Join(plain, retry, panicErr, stop, context.Canceled, wrap(fatal)), errors.KindFatal},
		{"canceled>stop", errors.Join(stop, wrap(context.DeadlineExceeded)), errors.KindCanceled},
		{"stop>panic", errors.Join(panicErr, stop), errors.KindStop},
		{"panic>retry", errors.Join(retry, panicErr), errors.KindPanic},
		{"retry>failure", errors.Join(plain, wrap(retry)), errors.KindRetry},
		{"retry wrapping fatal", errors.Retry(fatal), errors.KindFatal},
		{"stop wrapping retry", errors.Stopf("gave up: %w", retry), errors.KindStop},
		{"retry wrapping canceled", errors.Retry(context.Canceled), errors.KindCanceled},
		{"panic with fatal value", &errors.PanicError{Value: fatal}, errors.KindFatal},
		{"fatal in %w pair", fmt.Errorf("%w; %w", retry, fatal), errors.KindFatal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errors.KindOf(tt.err)
			assert.Equal(t, tt.want, got, "got %v want %v", got, tt.want)
			assert.Equal(t, tt.want == errors.KindStop, errors.IsStop(tt.err), "IsStop")
			assert.Equal(t, tt.want == errors.KindRetry, errors.IsRetry(tt.err), "IsRetry")
			assert.Equal(t, tt.want == errors.KindFatal, errors.IsFatal(tt.err), "IsFatal")
		})
	}
}

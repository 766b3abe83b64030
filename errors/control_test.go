package errors_test

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/errors"
)

func TestErrorText(t *testing.T) {
	cause := errors.New("db down")
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"stop", errors.Stop("empty batch"), "stop: empty batch"},
		{"stop empty reason", errors.Stop(""), "stop"},
		{"stop literal with cause", &errors.StopError{Reason: "bad input", Cause: cause}, "stop: bad input: db down"},
		{"stopf", errors.Stopf("order %d has no lines", 7), "stop: order 7 has no lines"},
		{"stopf %w", errors.Stopf("decode order: %w", io.ErrUnexpectedEOF), "stop: decode order: unexpected EOF"},
		{"retry", errors.Retry(cause), "retry: db down"},
		{"retry nil", errors.Retry(nil), "retry"},
		{"retry after", errors.RetryAfter(cause, time.Second), "retry: db down"},
		{"fatal", errors.Fatal(cause), "fatal: db down"},
		{"fatal nil", errors.Fatal(nil), "fatal"},
		{"panic string", &errors.PanicError{Value: "boom", Stack: []byte("stack")}, "panic: boom"},
		{"panic error", &errors.PanicError{Value: io.EOF}, "panic: EOF"},
		{"panic int", &errors.PanicError{Value: 42}, "panic: 42"},
		{"exhausted", &errors.ExhaustedError{Attempts: 3, Last: errors.Retry(cause)}, "retries exhausted after 3 attempts: retry: db down"},
		{"exhausted one", &errors.ExhaustedError{Attempts: 1, Last: cause}, "retries exhausted after 1 attempt: db down"},
		{"will retry", &errors.WillRetryError{Attempt: 2, After: 200 * time.Millisecond, Err: errors.Retry(cause)}, "attempt 2 failed, retrying in 200ms: retry: db down"},
		{"will retry nil", &errors.WillRetryError{Attempt: 1, After: time.Second}, "attempt 1 failed, retrying in 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
		})
	}
}

func TestIsAsUnwrap(t *testing.T) {
	cause := errors.New("cause")
	tests := []struct {
		name     string
		err      error
		sentinel error
		unwrap   error
	}{
		{"stop", &errors.StopError{Reason: "r", Cause: cause}, errors.ErrStop, cause},
		{"retry", errors.Retry(cause), errors.ErrRetry, cause},
		{"fatal", errors.Fatal(cause), errors.ErrFatal, cause},
		{"panic", &errors.PanicError{Value: cause}, errors.ErrPanic, cause},
		{"exhausted", &errors.ExhaustedError{Attempts: 2, Last: cause}, errors.ErrExhausted, cause},
		{"will retry", &errors.WillRetryError{Attempt: 1, Err: cause}, errors.ErrWillRetry, cause},
	}
	sentinels := []error{errors.ErrStop, errors.ErrRetry, errors.ErrFatal, errors.ErrPanic, errors.ErrExhausted, errors.ErrWillRetry}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Same(t, tt.unwrap, errors.Unwrap(tt.err))
			assert.ErrorIs(t, tt.err, cause)
			for _, s := range sentinels {
				assert.Equal(t, s == tt.sentinel, errors.Is(tt.err, s), "Is(%v)", s)
			}
			// Still matches through fmt.Errorf and Join wrapping.
			wrapped := errors.Join(errors.New("other"), fmt.Errorf("step x: %w", tt.err))
			assert.ErrorIs(t, wrapped, tt.sentinel)
			assert.ErrorIs(t, wrapped, cause)
		})
	}

	t.Run("panic non-error value", func(t *testing.T) {
		assert.NoError(t, errors.Unwrap(&errors.PanicError{Value: "boom"}))
	})
	t.Run("exhausted of retry is retry", func(t *testing.T) {
		err := fmt.Errorf("wrapped: %w", &errors.ExhaustedError{Attempts: 3, Last: errors.Retry(cause)})
		assert.ErrorIs(t, err, errors.ErrRetry)
		assert.ErrorIs(t, err, errors.ErrExhausted)
		var ex *errors.ExhaustedError
		require.ErrorAs(t, err, &ex)
		assert.Equal(t, 3, ex.Attempts)
		re, ok := errors.AsType[*errors.RetryError](err)
		require.True(t, ok)
		assert.Same(t, cause, re.Cause)
	})
}

func TestStopf(t *testing.T) {
	t.Run("no %w", func(t *testing.T) {
		err := errors.Stopf("nothing to do for %q", "acme")
		var se *errors.StopError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, `nothing to do for "acme"`, se.Reason)
		assert.NoError(t, se.Cause)
		assert.Equal(t, `stop: nothing to do for "acme"`, err.Error())
	})
	t.Run("one %w", func(t *testing.T) {
		err := errors.Stopf("order %d: %w", 7, io.ErrUnexpectedEOF)
		var se *errors.StopError
		require.ErrorAs(t, err, &se)
		assert.Same(t, io.ErrUnexpectedEOF, se.Cause)
		assert.Equal(t, "order 7: unexpected EOF", se.Reason)
		assert.Equal(t, "stop: order 7: unexpected EOF", err.Error())
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.ErrorIs(t, err, errors.ErrStop)
		assert.Same(t, io.ErrUnexpectedEOF, errors.Unwrap(err))
	})
	t.Run("two %w", func(t *testing.T) {
		err := errors.Stopf("%w and %w", io.EOF, io.ErrClosedPipe)
		assert.Equal(t, "stop: EOF and io: read/write on closed pipe", err.Error())
		assert.ErrorIs(t, err, io.EOF)
		assert.ErrorIs(t, err, io.ErrClosedPipe)
	})
}

func TestRetryAfterHint(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want time.Duration
		ok   bool
	}{
		{"nil", nil, 0, false},
		{"plain", errors.New("x"), 0, false},
		{"retry without hint", errors.Retry(nil), 0, false},
		{"retry after", errors.RetryAfter(nil, 3*time.Second), 3 * time.Second, true},
		{"negative hint", errors.RetryAfter(nil, -time.Second), 0, false},
		{"wrapped", fmt.Errorf("x: %w", errors.RetryAfter(io.EOF, time.Minute)), time.Minute, true},
		{"in exhausted", &errors.ExhaustedError{Attempts: 3, Last: errors.RetryAfter(io.EOF, 2*time.Second)}, 2 * time.Second, true},
		{"first retry wins", errors.Join(errors.Retry(nil), errors.RetryAfter(nil, time.Second)), 0, false},
		{"first retry in join", errors.Join(errors.New("x"), errors.RetryAfter(nil, time.Second), errors.RetryAfter(nil, time.Hour)), time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := errors.RetryAfterHint(tt.err)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

//go:noinline
func panickingService(v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.Recovered(r)
		}
	}()
	panic(v)
}

func TestRecovered(t *testing.T) {
	t.Run("captures stack", func(t *testing.T) {
		err := panickingService("boom")
		var pe *errors.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "boom", pe.Value)
		assert.Equal(t, "panic: boom", err.Error())
		assert.NotContains(t, err.Error(), "goroutine")
		assert.Contains(t, string(pe.Stack), "panickingService")
		assert.Contains(t, string(pe.Stack), "TestRecovered")
		assert.ErrorIs(t, err, errors.ErrPanic)
		assert.Equal(t, errors.KindPanic, errors.KindOf(err))
	})
	t.Run("error value unwraps", func(t *testing.T) {
		err := panickingService(io.ErrUnexpectedEOF)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.ErrorIs(t, err, errors.ErrPanic)
	})
	t.Run("panic nil", func(t *testing.T) {
		err := panickingService(nil) // recover returns *runtime.PanicNilError
		assert.ErrorIs(t, err, errors.ErrPanic)
	})
	t.Run("nil means no panic", func(t *testing.T) {
		assert.NoError(t, errors.Recovered(nil))
	})
	t.Run("re-panic keeps original", func(t *testing.T) {
		orig := panickingService("first")
		assert.Same(t, orig, panickingService(orig))
	})
}

func TestStdReexports(t *testing.T) {
	a, b := errors.New("a"), errors.New("b")
	assert.NotSame(t, errors.New("a"), a)
	j := errors.Join(a, nil, b)
	assert.True(t, errors.Is(j, b))
	assert.Nil(t, errors.Join(nil, nil))
	assert.Nil(t, errors.Unwrap(j))
	w := fmt.Errorf("w: %w", a)
	assert.Same(t, a, errors.Unwrap(w))
	var se *errors.StopError
	assert.False(t, errors.As(w, &se))
	assert.True(t, errors.As(fmt.Errorf("w: %w", errors.Stop("x")), &se))
	assert.ErrorIs(t, fmt.Errorf("x: %w", errors.ErrUnsupported), errors.ErrUnsupported)
}

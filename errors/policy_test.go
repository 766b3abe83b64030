package errors_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/errors"
)

// script is a fn for Policy.Do that returns results[attempt-1] (repeating
// the last one) and records the fake-clock wait before each retry.
type script struct {
	results []error
	work    time.Duration // fake time each attempt takes
	waits   []time.Duration
	last    time.Time
	calls   int
}

func (s *script) fn(_ context.Context, attempt int) error {
	now := time.Now()
	if attempt > 1 {
		s.waits = append(s.waits, now.Sub(s.last))
	}
	s.calls++
	if s.work > 0 {
		time.Sleep(s.work) // fake clock: runs inside a synctest bubble
	}
	s.last = time.Now()
	return s.results[min(attempt, len(s.results))-1]
}

func TestDefaultPolicy(t *testing.T) {
	assert.Equal(t, errors.Policy{
		Initial:     100 * time.Millisecond,
		Multiplier:  2,
		MaxInterval: 10 * time.Second,
		MaxAttempts: 3,
	}, errors.DefaultPolicy())
	require.NoError(t, errors.DefaultPolicy().Validate())
	require.NoError(t, errors.Policy{}.Validate())
	require.NoError(t, errors.NoRetry.Validate())
}

func TestDo(t *testing.T) {
	cause := errors.New("backend unavailable")
	retry := errors.Retry(cause)
	plain := errors.New("plain")
	stop := errors.Stop("bad input")
	fatal := errors.Fatal(io.ErrClosedPipe)
	panicErr := &errors.PanicError{Value: "boom"}
	canceled := context.Canceled

	const ms = time.Millisecond
	tests := []struct {
		name     string
		policy   errors.Policy
		results  []error
		work     time.Duration
		attempts int
		waits    []time.Duration
		want     error // returned as-is (checked with Same); nil with exhausted==false means success
		// exhausted expects an *ExhaustedError whose Last is last.
		exhausted bool
		last      error
	}{
		{name: "success", results: []error{nil}, attempts: 1},
		{name: "stop not retried", results: []error{stop}, attempts: 1, want: stop},
		{name: "fatal not retried", results: []error{fatal}, attempts: 1, want: fatal},
		{name: "panic not retried", results: []error{panicErr}, attempts: 1, want: panicErr},
		{name: "canceled not retried", results: []error{canceled}, attempts: 1, want: canceled},
		{name: "plain not retried by default", results: []error{plain}, attempts: 1, want: plain},
		{name: "retry then success", results: []error{retry, retry, nil}, attempts: 3, waits: []time.Duration{100 * ms, 200 * ms}},
		{name: "retry then stop", results: []error{retry, stop}, attempts: 2, waits: []time.Duration{100 * ms}, want: stop},
		{
			name: "retry exhausted with defaults", results: []error{retry},
			attempts: 3, waits: []time.Duration{100 * ms, 200 * ms}, exhausted: true, last: retry,
		},
		{
			name:    "exponential capped by MaxInterval",
			policy:  errors.Policy{Initial: 100 * ms, Multiplier: 2, MaxInterval: 500 * ms, MaxAttempts: 6},
			results: []error{retry}, attempts: 6,
			waits:     []time.Duration{100 * ms, 200 * ms, 400 * ms, 500 * ms, 500 * ms},
			exhausted: true, last: retry,
		},
		{
			name:    "multiplier 1.5",
			policy:  errors.Policy{Initial: 200 * ms, Multiplier: 1.5, MaxAttempts: 4},
			results: []error{retry}, attempts: 4,
			waits:     []time.Duration{200 * ms, 300 * ms, 450 * ms},
			exhausted: true, last: retry,
		},
		{
			name:    "Initial capped by MaxInterval",
			policy:  errors.Policy{MaxInterval: 50 * ms, MaxAttempts: 3},
			results: []error{retry}, attempts: 3,
			waits:     []time.Duration{50 * ms, 50 * ms},
			exhausted: true, last: retry,
		},
		{name: "NoRetry", policy: errors.NoRetry, results: []error{retry}, attempts: 1, exhausted: true, last: retry},
		{
			name: "RetryAll retries plain", policy: errors.Policy{RetryAll: true},
			results: []error{plain}, attempts: 3, waits: []time.Duration{100 * ms, 200 * ms}, exhausted: true, last: plain,
		},
		{name: "RetryAll still stops on stop", policy: errors.Policy{RetryAll: true}, results: []error{plain, stop}, attempts: 2, waits: []time.Duration{100 * ms}, want: stop},
		{name: "RetryAll never retries panic", policy: errors.Policy{RetryAll: true}, results: []error{panicErr}, attempts: 1, want: panicErr},
		{name: "RetryAll never retries fatal", policy: errors.Policy{RetryAll: true}, results: []error{fatal}, attempts: 1, want: fatal},
		{
			name:    "RetryAfter hint overrides next interval only",
			policy:  errors.Policy{MaxAttempts: 4},
			results: []error{retry, errors.RetryAfter(cause, 5*time.Second), retry, nil}, attempts: 4,
			waits: []time.Duration{100 * ms, 5 * time.Second, 400 * ms},
		},
		{
			name:    "RetryAfter hint not capped by MaxInterval",
			policy:  errors.Policy{MaxInterval: time.Second},
			results: []error{errors.RetryAfter(nil, time.Minute), nil}, attempts: 2,
			waits: []time.Duration{time.Minute},
		},
		{
			name:    "RetryAfter hint on wrapped plain error with RetryAll",
			policy:  errors.Policy{RetryAll: true},
			results: []error{plain, errors.RetryAfter(plain, 3*ms), nil}, attempts: 3,
			waits: []time.Duration{100 * ms, 3 * ms},
		},
		{
			// 100+200+400 = 700ms elapsed; the next 800ms wait would end at 1.5s.
			name:    "MaxElapsed stops retries",
			policy:  errors.Policy{MaxAttempts: 100, MaxElapsed: time.Second},
			results: []error{retry}, attempts: 4,
			waits:     []time.Duration{100 * ms, 200 * ms, 400 * ms},
			exhausted: true, last: retry,
		},
		{
			// Attempts take 300ms each: 300+100+300+200+300 = 1.2s, next wait would pass 1.5s.
			name:    "MaxElapsed counts time spent in fn",
			policy:  errors.Policy{MaxAttempts: 100, MaxElapsed: 1500 * ms},
			results: []error{retry}, work: 300 * ms, attempts: 3,
			waits:     []time.Duration{100 * ms, 200 * ms},
			exhausted: true, last: retry,
		},
		{
			name:    "MaxElapsed applies to RetryAfter hint",
			policy:  errors.Policy{MaxElapsed: time.Minute},
			results: []error{errors.RetryAfter(cause, time.Hour)}, attempts: 1,
			exhausted: true, last: nil, // checked below via RetryAfterHint
		},
		{
			name:    "MaxElapsed larger than schedule",
			policy:  errors.Policy{MaxElapsed: time.Hour},
			results: []error{retry, retry, nil}, attempts: 3,
			waits: []time.Duration{100 * ms, 200 * ms},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{results: tt.results, work: tt.work}
				start := time.Now()
				attempts, err := tt.policy.Do(t.Context(), s.fn)

				assert.Equal(t, tt.attempts, attempts, "attempts")
				assert.Equal(t, tt.attempts, s.calls, "calls")
				assert.Equal(t, tt.waits, s.waits, "waits")
				// Do returns as soon as the last attempt ends: no trailing wait.
				assert.Equal(t, s.last, time.Now(), "returned without a trailing wait")
				assert.GreaterOrEqual(t, time.Since(start), time.Duration(0))

				switch {
				case tt.exhausted:
					var ex *errors.ExhaustedError
					require.ErrorAs(t, err, &ex)
					assert.Equal(t, tt.attempts, ex.Attempts)
					if tt.last != nil {
						assert.Same(t, tt.last, ex.Last)
						want := errors.KindOf(tt.last) // a plain failure stays failed
						if want == errors.KindRetry {
							want = errors.KindRetryExhausted
						}
						assert.Equal(t, want, errors.KindOf(err))
					}
					assert.ErrorIs(t, err, errors.ErrExhausted)
					assert.Same(t, tt.results[min(attempts, len(tt.results))-1], ex.Last)
				case tt.want != nil:
					assert.Same(t, tt.want, err)
				default:
					assert.NoError(t, err)
				}
			})
		})
	}
}

func TestDoExhaustedRetryIsRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cause := errors.New("busy")
		attempts, err := errors.Policy{MaxAttempts: 2}.Do(t.Context(), func(context.Context, int) error {
			return errors.RetryAfter(cause, time.Second)
		})
		assert.Equal(t, 2, attempts)
		assert.ErrorIs(t, err, errors.ErrRetry)
		assert.ErrorIs(t, err, errors.ErrExhausted)
		assert.ErrorIs(t, err, cause)
		assert.True(t, errors.IsRetry(err))
		ex, ok := errors.AsType[*errors.ExhaustedError](err)
		require.True(t, ok)
		assert.Equal(t, 2, ex.Attempts)
		hint, ok := errors.RetryAfterHint(err)
		assert.True(t, ok)
		assert.Equal(t, time.Second, hint)
		assert.Equal(t, "retries exhausted after 2 attempts: retry: busy", err.Error())
	})
}

func TestDoJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{results: []error{errors.Retry(nil)}}
		p := errors.Policy{Initial: time.Second, Multiplier: 2, MaxAttempts: 6, MaxInterval: 4 * time.Second, Jitter: 0.5}
		attempts, err := p.Do(t.Context(), s.fn)
		assert.Equal(t, 6, attempts)
		assert.ErrorIs(t, err, errors.ErrExhausted)
		base := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
		require.Len(t, s.waits, len(base))
		for i, w := range s.waits {
			assert.GreaterOrEqual(t, w, base[i]/2, "wait %d", i)
			assert.LessOrEqual(t, w, base[i]*3/2+time.Nanosecond, "wait %d", i)
		}
	})
}

func TestDoCancel(t *testing.T) {
	cause := errors.New("upstream 503")

	t.Run("during long wait returns at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var (
				attempts int
				err      error
				done     = make(chan struct{})
			)
			start := time.Now()
			go func() {
				defer close(done)
				attempts, err = errors.Policy{Initial: time.Hour}.Do(ctx, func(context.Context, int) error {
					return errors.Retry(cause)
				})
			}()
			synctest.Wait() // Do is now blocked in its one-hour wait
			cancel()
			<-done
			assert.Zero(t, time.Since(start), "fake clock must not advance")
			assert.Equal(t, 1, attempts)
			assert.ErrorIs(t, err, context.Canceled)
			assert.ErrorIs(t, err, cause)
			assert.ErrorIs(t, err, errors.ErrRetry)
			assert.NotErrorIs(t, err, errors.ErrExhausted)
			assert.Equal(t, errors.KindCanceled, errors.KindOf(err))
			assert.Equal(t, "retry interrupted after 1 attempt: context canceled: retry: upstream 503", err.Error())
		})
	})

	t.Run("deadline during wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 250*time.Millisecond)
			defer cancel()
			s := &script{results: []error{errors.Retry(cause)}}
			start := time.Now()
			attempts, err := errors.Policy{MaxAttempts: 10}.Do(ctx, s.fn)
			assert.Equal(t, 250*time.Millisecond, time.Since(start))
			assert.Equal(t, 2, attempts) // waits 100ms, then 200ms is cut short
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.ErrorIs(t, err, cause)
			assert.Equal(t, errors.KindCanceled, errors.KindOf(err))
		})
	})

	t.Run("canceled by fn before wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			start := time.Now()
			attempts, err := errors.Policy{}.Do(ctx, func(context.Context, int) error {
				cancel()
				return errors.Retry(cause)
			})
			assert.Zero(t, time.Since(start))
			assert.Equal(t, 1, attempts)
			assert.ErrorIs(t, err, context.Canceled)
			assert.ErrorIs(t, err, cause)
		})
	})

	t.Run("canceled before Do", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		called := false
		attempts, err := errors.Policy{}.Do(ctx, func(context.Context, int) error {
			called = true
			return nil
		})
		assert.False(t, called)
		assert.Zero(t, attempts)
		assert.Same(t, context.Canceled, err)
	})

	t.Run("fn returning ctx error is returned as-is", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		attempts, err := errors.Policy{}.Do(ctx, func(ctx context.Context, _ int) error {
			cancel()
			return ctx.Err()
		})
		assert.Equal(t, 1, attempts)
		assert.Same(t, context.Canceled, err)
	})

	t.Run("fn gets ctx and attempt", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			type key struct{}
			ctx := context.WithValue(t.Context(), key{}, "v")
			var seen []int
			_, err := errors.Policy{}.Do(ctx, func(ctx context.Context, attempt int) error {
				assert.Equal(t, "v", ctx.Value(key{}))
				seen = append(seen, attempt)
				return errors.Retry(nil)
			})
			assert.ErrorIs(t, err, errors.ErrExhausted)
			assert.Equal(t, []int{1, 2, 3}, seen)
		})
	})
}

func TestDoConcurrentSharedPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := errors.Policy{MaxAttempts: 4}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				s := &script{results: []error{errors.Retry(nil)}}
				attempts, err := p.Do(t.Context(), s.fn)
				assert.Equal(t, 4, attempts)
				assert.ErrorIs(t, err, errors.ErrExhausted)
				assert.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}, s.waits)
			})
		}
		wg.Wait()
	})
}

func TestDoInvalidPolicy(t *testing.T) {
	called := false
	attempts, err := errors.Policy{Jitter: 2}.Do(t.Context(), func(context.Context, int) error {
		called = true
		return nil
	})
	assert.False(t, called)
	assert.Zero(t, attempts)
	assert.ErrorContains(t, err, "Jitter")
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		policy errors.Policy
		fields []string // empty: valid
	}{
		{"zero", errors.Policy{}, nil},
		{"full", errors.Policy{Initial: 1, Multiplier: 1, MaxInterval: 1, MaxAttempts: 1, MaxElapsed: 1, Jitter: 1, RetryAll: true}, nil},
		{"negative Initial", errors.Policy{Initial: -1}, []string{"Policy.Initial"}},
		{"negative MaxInterval", errors.Policy{MaxInterval: -time.Second}, []string{"Policy.MaxInterval"}},
		{"negative MaxElapsed", errors.Policy{MaxElapsed: -time.Second}, []string{"Policy.MaxElapsed"}},
		{"Multiplier below 1", errors.Policy{Multiplier: 0.5}, []string{"Policy.Multiplier"}},
		{"negative Multiplier", errors.Policy{Multiplier: -2}, []string{"Policy.Multiplier"}},
		{"Jitter above 1", errors.Policy{Jitter: 1.5}, []string{"Policy.Jitter"}},
		{"negative Jitter", errors.Policy{Jitter: -0.1}, []string{"Policy.Jitter"}},
		{"negative MaxAttempts", errors.Policy{MaxAttempts: -1}, []string{"Policy.MaxAttempts"}},
		{"several", errors.Policy{Initial: -1, Jitter: 3, MaxAttempts: -2}, []string{"Policy.Initial", "Policy.Jitter", "Policy.MaxAttempts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Validate()
			if len(tt.fields) == 0 {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, f := range tt.fields {
				assert.ErrorContains(t, err, f)
			}
		})
	}
}

func TestDoNoRetryAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	ctx := context.Background()
	fn := func(context.Context, int) error { return nil }
	for _, p := range []errors.Policy{{}, errors.NoRetry, {MaxElapsed: time.Second, Jitter: 0.2}} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := p.Do(ctx, fn); err != nil {
				t.Fatal(err)
			}
		})
		assert.Zero(t, allocs, "policy %+v", p)
	}
}

var sinkErr error

func BenchmarkDoNoRetry(b *testing.B) {
	ctx := context.Background()
	fn := func(context.Context, int) error { return nil }
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkErr = fn(ctx, 1)
		}
	})
	b.Run("Do", func(b *testing.B) {
		b.ReportAllocs()
		p := errors.DefaultPolicy()
		for b.Loop() {
			_, sinkErr = p.Do(ctx, fn)
		}
	})
	b.Run("Do/MaxElapsed", func(b *testing.B) {
		b.ReportAllocs()
		p := errors.Policy{MaxElapsed: time.Minute}
		for b.Loop() {
			_, sinkErr = p.Do(ctx, fn)
		}
	})
}

func TestRetryable(t *testing.T) {
	retry := errors.Retry(errors.New("busy"))
	plain := errors.New("plain")
	tests := []struct {
		name          string
		err           error
		def, retryAll bool
	}{
		{"nil", nil, false, false},
		{"retry", retry, true, true},
		{"wrapped retry", fmt.Errorf("step: %w", retry), true, true},
		{"plain", plain, false, true},
		{"stop", errors.Stop("no"), false, false},
		{"fatal", errors.Fatal(plain), false, false},
		{"panic", &errors.PanicError{Value: 1}, false, false},
		{"canceled", context.Canceled, false, false},
		{"exhausted retry", &errors.ExhaustedError{Attempts: 3, Last: retry}, false, false},
		{"exhausted plain", fmt.Errorf("nested: %w", &errors.ExhaustedError{Attempts: 3, Last: plain}), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.def, errors.Policy{}.Retryable(tt.err), "default policy")
			assert.Equal(t, tt.retryAll, errors.Policy{RetryAll: true}.Retryable(tt.err), "RetryAll")
		})
	}
}

func TestDoDoesNotRetryExhaustedErrors(t *testing.T) {
	nested := &errors.ExhaustedError{Attempts: 3, Last: errors.Retry(nil)}
	for _, p := range []errors.Policy{{}, {RetryAll: true}} {
		attempts, err := p.Do(t.Context(), func(context.Context, int) error { return nested })
		assert.Equal(t, 1, attempts, "retries never multiply")
		assert.Same(t, nested, err)
	}
}

// TestRetriesDecidesEachAttempt drives the attempts by hand, as an engine
// does: each failed attempt is either a *WillRetryError (then Wait) or the
// error that ends the execution.
func TestRetriesDecidesEachAttempt(t *testing.T) {
	cause := errors.New("busy")
	retry := errors.Retry(cause)

	t.Run("success on the third attempt", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := errors.Policy{MaxAttempts: 5}.Retries(time.Now())
			var kinds []errors.Kind
			start := time.Now()
			for attempt := 1; attempt <= 2; attempt++ {
				err := r.Next(t.Context(), retry)
				kinds = append(kinds, errors.KindOf(err))
				we, ok := errors.AsType[*errors.WillRetryError](err)
				require.True(t, ok, "attempt %d: %v", attempt, err)
				assert.Equal(t, attempt, we.Attempt)
				assert.Same(t, retry, we.Err)
				require.NoError(t, r.Wait(t.Context()))
			}
			assert.Equal(t, []errors.Kind{errors.KindWillRetry, errors.KindWillRetry}, kinds)
			assert.Equal(t, 300*time.Millisecond, time.Since(start), "waited 100ms then 200ms")
			assert.Equal(t, 2, r.Attempts())
			assert.NoError(t, r.Next(t.Context(), nil), "a nil error counts nothing")
			assert.Equal(t, 2, r.Attempts())
		})
	})

	t.Run("retries run out", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := errors.Policy{MaxAttempts: 3}.Retries(time.Now())
			var kinds []errors.Kind
			var err error
			for {
				err = r.Next(t.Context(), retry)
				kinds = append(kinds, errors.KindOf(err))
				if errors.KindOf(err) != errors.KindWillRetry {
					break
				}
				require.NoError(t, r.Wait(t.Context()))
			}
			assert.Equal(t, []errors.Kind{errors.KindWillRetry, errors.KindWillRetry, errors.KindRetryExhausted}, kinds)
			ex, ok := errors.AsType[*errors.ExhaustedError](err)
			require.True(t, ok)
			assert.Equal(t, 3, ex.Attempts)
			assert.Same(t, retry, ex.Last)
		})
	})

	t.Run("not retryable", func(t *testing.T) {
		r := errors.Policy{}.Retries(time.Time{})
		stop := errors.Stop("no")
		assert.Same(t, stop, r.Next(t.Context(), stop))
		plain := errors.New("plain")
		assert.Same(t, plain, r.Next(t.Context(), plain))
		assert.Equal(t, 2, r.Attempts())
	})

	t.Run("RetryAll plain failure", func(t *testing.T) {
		r := errors.Policy{RetryAll: true, MaxAttempts: 2, Initial: time.Nanosecond}.Retries(time.Time{})
		plain := errors.New("plain")
		assert.Equal(t, errors.KindWillRetry, errors.KindOf(r.Next(t.Context(), plain)))
		require.NoError(t, r.Wait(t.Context()))
		err := r.Next(t.Context(), plain)
		assert.Equal(t, errors.KindFailed, errors.KindOf(err), "a plain failure stays failed when its retries run out")
		assert.ErrorIs(t, err, errors.ErrExhausted)
	})

	t.Run("canceled before the decision", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		r := errors.Policy{}.Retries(time.Time{})
		err := r.Next(ctx, retry)
		assert.Equal(t, errors.KindCanceled, errors.KindOf(err))
		assert.ErrorIs(t, err, cause)
	})

	t.Run("canceled during the wait", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			r := errors.Policy{Initial: time.Hour}.Retries(time.Now())
			require.Equal(t, errors.KindWillRetry, errors.KindOf(r.Next(ctx, retry)))
			start := time.Now()
			done := make(chan error)
			go func() { done <- r.Wait(ctx) }()
			synctest.Wait()
			cancel()
			err := <-done
			assert.Zero(t, time.Since(start))
			assert.Equal(t, errors.KindCanceled, errors.KindOf(err))
			assert.ErrorIs(t, err, cause)
			assert.Equal(t, "retry interrupted after 1 attempt: context canceled: retry: busy", err.Error())
		})
	})

	t.Run("elapsed budget counts from start", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			time.Sleep(950 * time.Millisecond) // the first attempt took this long
			r := errors.Policy{MaxElapsed: time.Second}.Retries(start)
			err := r.Next(t.Context(), retry)
			assert.Equal(t, errors.KindRetryExhausted, errors.KindOf(err), "a 100ms wait would end past the budget")
		})
	})
}

package flow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func setStep(name, key string, v any) flow.Service {
	return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
		c.Set(key, v)
		return nil
	}, flow.Provides(fc.Any(key)))
}

func TestAllRunsConcurrently(t *testing.T) {
	// Each branch waits for the other's signal: only concurrent execution
	// can finish.
	aReady, bReady := make(chan struct{}), make(chan struct{})
	wait := func(name string, mine, theirs chan struct{}) flow.Service {
		return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
			close(mine)
			select {
			case <-theirs:
			case <-time.After(10 * time.Second):
				return errors.New("sibling never ran concurrently")
			}
			c.Set(name, true)
			return nil
		}, flow.Provides(fc.Any(name)))
	}
	f := flow.New("all", flow.All(wait("a", aReady, bReady), wait("b", bReady, aReady)),
		flow.Step("after", func(ctx context.Context, c *fc.Context) error { return nil }, flow.Needs(fc.Any("a"), fc.Any("b")))).MustBuild()
	c, err := f.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"a": true, "b": true}, c.Map())
}

func TestAllFirstFailureCancelsSiblings(t *testing.T) {
	var sawCancel atomic.Bool
	slowStarted, fineDone := make(chan struct{}), make(chan struct{})
	f := flow.New("all", flow.All(
		flow.Step("slow", func(ctx context.Context, c *fc.Context) error {
			close(slowStarted)
			<-ctx.Done()
			sawCancel.Store(true)
			c.Set("slow", "wrote")
			return ctx.Err()
		}),
		flow.Step("fails", func(ctx context.Context, c *fc.Context) error {
			<-slowStarted
			<-fineDone
			return errors.New("card declined")
		}),
		flow.Step("fine", func(ctx context.Context, c *fc.Context) error {
			defer close(fineDone)
			c.Set("fine", 1)
			return nil
		}),
	)).MustBuild()
	c, err := f.Run(t.Context(), nil)
	require.Error(t, err)
	assert.EqualError(t, err, `flow "all": step "fails": card declined`)
	assert.True(t, sawCancel.Load())
	assert.False(t, c.Has("slow"), "writes of a canceled branch are discarded")
	assert.True(t, c.Has("fine"), "writes of succeeded branches are merged")
}

func TestAllMergeIsDeterministic(t *testing.T) {
	f := flow.New("all", flow.All(
		setStep("a", "winner", "a"),
		flow.Step("b", func(ctx context.Context, c *fc.Context) error {
			time.Sleep(time.Microsecond) // finish later than c sometimes
			c.Set("winner", "b")
			return nil
		}),
		setStep("c", "winner", "c"),
		setStep("d", "other", "d"),
	)).MustBuild()
	for range 1000 {
		c, err := f.Run(t.Context(), map[string]any{"winner": "input"})
		require.NoError(t, err)
		require.Equal(t, map[string]any{"winner": "c", "other": "d"}, c.Map(), "the last declared branch wins")
	}
}

func TestAllLimit(t *testing.T) {
	var cur, peak atomic.Int32
	step := func(i int) flow.Service {
		return flow.Step(fmt.Sprint("s", i), func(ctx context.Context, c *fc.Context) error {
			n := cur.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			cur.Add(-1)
			return nil
		})
	}
	var steps []flow.Service
	for i := range 8 {
		steps = append(steps, step(i))
	}
	f := flow.New("lim", flow.All(steps...).Limit(2)).MustBuild()
	_, err := f.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.LessOrEqual(t, peak.Load(), int32(2))
}

func TestTapIsFireAndForget(t *testing.T) {
	release := make(chan struct{})
	var reported []string
	var mu sync.Mutex
	f := flow.New("tap",
		flow.Tap(flow.Step("audit", func(ctx context.Context, c *fc.Context) error {
			<-release
			c.Set("audit", "tap writes are discarded")
			return errors.New("audit service down")
		})),
		flow.Tap(flow.Step("panics", func(ctx context.Context, c *fc.Context) error { panic("tap bug") })),
		setStep("main", "main", 1),
	).OnTapError(func(ctx context.Context, step string, err error) {
		mu.Lock()
		reported = append(reported, step+": "+err.Error())
		mu.Unlock()
	}).MustBuild()

	c, err := f.Run(t.Context(), nil) // returns while audit is still blocked
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"main": 1}, c.Map())

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, f.Wait(ctx), context.DeadlineExceeded, "audit is still running")

	close(release)
	require.NoError(t, f.Close(t.Context())) // waits for taps
	mu.Lock()
	defer mu.Unlock()
	assert.ElementsMatch(t, []string{
		`tap(audit): flow "tap": step "audit": audit service down`,
		`tap(panics): flow "tap": step "panics": panic: tap bug`,
	}, reported)
}

func TestEach(t *testing.T) {
	double := flow.Func("double", func(ctx context.Context, in struct {
		Item  int
		Index int
	}) (struct{ Doubled int }, error) {
		if in.Item < 0 {
			return struct{ Doubled int }{}, errors.Stopf("negative at %d", in.Index)
		}
		return struct{ Doubled int }{in.Item * 2}, nil
	})
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprint("workers=", workers), func(t *testing.T) {
			f := flow.New("each",
				flow.Each("nums", double).Collect("doubled", "results").Concurrency(workers),
				flow.Func("sum", func(ctx context.Context, in struct{ Results []int }) (struct{ Sum int }, error) {
					s := 0
					for _, r := range in.Results {
						s += r
					}
					return struct{ Sum int }{s}, nil
				}),
			).Input(fc.Key[[]int]("nums")).MustBuild()

			nums := make([]int, 50)
			want := make([]int, 50)
			for i := range nums {
				nums[i] = i
				want[i] = 2 * i
			}
			c, err := f.Run(t.Context(), map[string]any{"nums": nums})
			require.NoError(t, err)
			assert.Equal(t, want, c.View()["results"], "order preserved")
			assert.Equal(t, 2450, c.View()["sum"])
			assert.False(t, c.Has("item"), "iteration keys do not leak")

			_, err = f.Run(t.Context(), map[string]any{"nums": []int{1, -1, 2}})
			assert.True(t, errors.IsStop(err))
			assert.ErrorContains(t, err, "negative at 1")

			c, err = f.Run(t.Context(), map[string]any{"nums": []int{}})
			require.NoError(t, err)
			assert.Equal(t, []int{}, c.View()["results"])
		})
	}
}

func TestEachBuildErrors(t *testing.T) {
	noop := flow.Step("noop", func(ctx context.Context, c *fc.Context) error { return nil })
	_, err := flow.New("e", flow.Each("nums", noop)).Build()
	assert.ErrorContains(t, err, `step "each(nums)": key "nums": iterated but not provided`)
	_, err = flow.New("e", flow.Each("n", noop)).Input(fc.Key[int]("n")).Build()
	assert.ErrorContains(t, err, `iterated but its type is int, not a slice`)
	_, err = flow.New("e", flow.Each("n", noop).Collect("nothing", "out")).Input(fc.Key[[]int]("n")).Build()
	assert.ErrorContains(t, err, `key "nothing": collected but no step of the loop provides it`)
}

func TestUntil(t *testing.T) {
	inc := flow.Func("inc", func(ctx context.Context, in struct {
		N int `flow:",optional"`
	}) (struct{ N int }, error) {
		return struct{ N int }{in.N + 1}, nil
	})
	f := flow.New("u", flow.Until("n >= 3", inc)).MustBuild()
	c, err := f.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, 3, c.View()["n"])

	f = flow.New("u", flow.Until("n >= 100", inc).MaxLoops(5)).MustBuild()
	_, err = f.Run(t.Context(), nil)
	assert.EqualError(t, err, `flow "u": step "until(n >= 100)": condition still false after 5 loops`)
}

func TestFirst(t *testing.T) {
	f := flow.New("first",
		flow.First(
			flow.Guard("amount > 1000", setStep("manual", "route", "manual")),
			flow.GuardFunc("vip", func(c *fc.Context) bool { return c.View()["vip"] == true }, setStep("vip", "route", "vip")),
			flow.Guard("amount > 0", setStep("auto", "route", "auto")),
		),
		flow.Step("after", func(ctx context.Context, c *fc.Context) error { return nil }, flow.Needs(fc.Any("route"))),
	).Input(fc.Key[float64]("amount"), fc.KeyInfo{Name: "vip", Optional: true}).MustBuild()
	tests := []struct {
		in   map[string]any
		want string
	}{
		{map[string]any{"amount": 5000.0, "vip": true}, "manual"},
		{map[string]any{"amount": 10.0, "vip": true}, "vip"},
		{map[string]any{"amount": 10.0}, "auto"},
	}
	for _, tt := range tests {
		c, err := f.Run(t.Context(), tt.in)
		require.NoError(t, err)
		assert.Equal(t, tt.want, c.View()["route"])
	}
	_, err := f.Run(t.Context(), map[string]any{"amount": -1.0})
	assert.ErrorIs(t, err, flow.ErrNoCandidate)
	assert.EqualError(t, err, `flow "first": step "first": flow "first": no candidate's guard holds`)
}

type sagaLog struct {
	mu  sync.Mutex
	log []string
}

func (s *sagaLog) add(x string) {
	s.mu.Lock()
	s.log = append(s.log, x)
	s.mu.Unlock()
}

func (s *sagaLog) get() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

func sagaFlow(l *sagaLog, third flow.StepFunc) *flow.Flow {
	undo := func(name string) flow.CompensateFunc {
		return func(ctx context.Context, c *fc.Context, cause error) error {
			l.add(fmt.Sprintf("undo %s (ctx live: %v) because %v", name, ctx.Err() == nil, cause))
			return nil
		}
	}
	do := func(name string) flow.Service {
		return flow.Step(name, func(ctx context.Context, c *fc.Context) error { l.add(name); return nil })
	}
	return flow.New("order", flow.Saga(
		flow.Compensate(do("reserve"), undo("reserve")),
		flow.Compensate(do("hold"), undo("hold")),
		flow.Compensate(flow.Step("charge", third), undo("charge")),
	)).Retry(errors.Policy{MaxAttempts: 3, Initial: time.Millisecond}).MustBuild()
}

func TestSagaCompensatesInReverse(t *testing.T) {
	tests := []struct {
		name   string
		third  flow.StepFunc
		cancel bool
		check  func(t *testing.T, err error)
		log    []string
	}{
		{"failure", func(ctx context.Context, c *fc.Context) error { return errors.New("gateway down") },
			false, func(t *testing.T, err error) { assert.ErrorContains(t, err, "gateway down") },
			[]string{"reserve", "hold",
				`undo hold (ctx live: true) because flow "order": step "charge": gateway down`,
				`undo reserve (ctx live: true) because flow "order": step "charge": gateway down`}},
		{"stop: a declined card releases the stock", func(ctx context.Context, c *fc.Context) error { return errors.Stop("card declined") },
			false, func(t *testing.T, err error) { assert.True(t, errors.IsStop(err)) },
			[]string{"reserve", "hold",
				`undo hold (ctx live: true) because flow "order": step "charge": stop: card declined`,
				`undo reserve (ctx live: true) because flow "order": step "charge": stop: card declined`}},
		{"canceled", func(ctx context.Context, c *fc.Context) error { return nil },
			true, func(t *testing.T, err error) { assert.ErrorIs(t, err, context.Canceled) },
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l sagaLog
			third := tt.third
			ctx := t.Context()
			if tt.cancel {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				third = func(ctx context.Context, c *fc.Context) error {
					cancel()
					<-ctx.Done()
					return ctx.Err()
				}
				tt.log = []string{"reserve", "hold",
					`undo hold (ctx live: true) because flow "order": step "charge": context canceled`,
					`undo reserve (ctx live: true) because flow "order": step "charge": context canceled`}
			}
			_, err := sagaFlow(&l, third).Run(ctx, nil)
			require.Error(t, err)
			tt.check(t, err)
			assert.Equal(t, tt.log, l.get())
		})
	}
}

func TestSagaRetrySucceedingCompensatesNothing(t *testing.T) {
	var l sagaLog
	var n atomic.Int32
	_, err := sagaFlow(&l, func(ctx context.Context, c *fc.Context) error {
		if n.Add(1) == 1 {
			return errors.Retry(errors.New("blip"))
		}
		l.add("charge")
		return nil
	}).Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"reserve", "hold", "charge"}, l.get())
}

type releaser struct{ released *atomic.Int32 }

func (r releaser) Name() string                                  { return "reserve" }
func (r releaser) Call(ctx context.Context, c *fc.Context) error { return nil }
func (r releaser) Compensate(ctx context.Context, c *fc.Context, cause error) error {
	r.released.Add(1)
	return errors.New("warehouse unreachable")
}

func TestSagaCompensatorInterfaceAndUndoErrorsJoined(t *testing.T) {
	var released atomic.Int32
	f := flow.New("s", flow.Saga(
		releaser{&released},
		flow.Step("charge", func(ctx context.Context, c *fc.Context) error { return errors.New("declined") }),
	)).MustBuild()
	_, err := f.Run(t.Context(), nil)
	assert.Equal(t, int32(1), released.Load())
	assert.ErrorContains(t, err, `step "charge": declined`)
	assert.ErrorContains(t, err, `step "reserve": compensate: warehouse unreachable`)
}

func TestTimeoutRetriesSlowAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		var always atomic.Bool
		f := flow.New("t", flow.Timeout(flow.Step("slow", func(ctx context.Context, c *fc.Context) error {
			if n.Add(1) == 1 || always.Load() {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}), time.Second)).Retry(errors.Policy{MaxAttempts: 2, Initial: time.Millisecond}).MustBuild()
		_, err := f.Run(t.Context(), nil)
		require.NoError(t, err)
		assert.Equal(t, int32(2), n.Load())

		always.Store(true) // every attempt times out
		_, err = f.Run(t.Context(), nil)
		assert.ErrorIs(t, err, flow.ErrTimeout)
		assert.ErrorIs(t, err, errors.ErrExhausted)
	})
}

func TestLoggerAndMetricsMiddleware(t *testing.T) {
	var buf bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == "time" || a.Key == "duration" {
				return slog.Attr{}
			}
			return a
		}}))
	var m metrics
	f := flow.New("m",
		setStep("a", "a", 1),
		flow.Step("b", func(ctx context.Context, c *fc.Context) error { return errors.Stop("enough") }),
	).Use(flow.Recover(), flow.Logger(lg), flow.Measure(&m)).MustBuild()
	_, err := f.Run(t.Context(), nil)
	require.Error(t, err)
	assert.Equal(t, "level=DEBUG msg=step flow=m step=a outcome=ok\n"+
		"level=INFO msg=step flow=m step=b outcome=stop error=\"stop: enough\"\n", buf.String())
	assert.Equal(t, []string{"m/a ok", "m/b stop"}, m.get())
}

// TestRetriedAttemptsOutcomes: each attempt of a retried step passes
// through the middleware with its own outcome: will-retry while the step
// is retried, then ok, or retry-exhausted once when the retries run out.
func TestRetriedAttemptsOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		fails    int32 // attempts that fail with Retry before success
		policy   errors.Policy
		mw       func(next flow.Handler) flow.Handler // between Measure and the step
		want     []string
		logLevel []string
		outcome  errors.Kind // the step's, in the trace
		attempts int
	}{
		{
			name: "succeeds on the third attempt", fails: 2, policy: errors.Policy{MaxAttempts: 5},
			want:     []string{"m/flaky will-retry", "m/flaky will-retry", "m/flaky ok"},
			logLevel: []string{"WARN", "WARN", "DEBUG"}, outcome: errors.KindOK, attempts: 3,
		},
		{
			name: "retries run out", fails: 100, policy: errors.Policy{MaxAttempts: 3},
			want:     []string{"m/flaky will-retry", "m/flaky will-retry", "m/flaky retry-exhausted"},
			logLevel: []string{"WARN", "WARN", "ERROR"}, outcome: errors.KindRetryExhausted, attempts: 3,
		},
		{
			name: "no retry allowed", fails: 100, policy: errors.NoRetry,
			want:     []string{"m/flaky retry-exhausted"},
			logLevel: []string{"ERROR"}, outcome: errors.KindRetryExhausted, attempts: 1,
		},
		{
			name: "a middleware that wraps the error keeps the outcome", fails: 2, policy: errors.Policy{MaxAttempts: 5},
			mw: func(next flow.Handler) flow.Handler {
				return func(ctx context.Context, s *flow.StepInfo, c *fc.Context) error {
					if err := next(ctx, s, c); err != nil {
						return fmt.Errorf("wrapped: %w", err)
					}
					return nil
				}
			},
			want:     []string{"m/flaky will-retry", "m/flaky will-retry", "m/flaky ok"},
			logLevel: []string{"WARN", "WARN", "DEBUG"}, outcome: errors.KindOK, attempts: 3,
		},
		{
			name: "a middleware that replaces the error decides", fails: 100, policy: errors.Policy{MaxAttempts: 3},
			mw: func(next flow.Handler) flow.Handler {
				return func(ctx context.Context, s *flow.StepInfo, c *fc.Context) error {
					if err := next(ctx, s, c); err != nil {
						return errors.Stop("replaced")
					}
					return nil
				}
			},
			want:     []string{"m/flaky stop"},
			logLevel: []string{"INFO"}, outcome: errors.KindStop, attempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var buf bytes.Buffer
				lg := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
				var m metrics
				var calls atomic.Int32
				mw := []flow.Middleware{flow.Logger(lg), flow.Measure(&m)}
				if tt.mw != nil {
					mw = append(mw, tt.mw)
				}
				f := flow.New("m", flow.Step("flaky", func(ctx context.Context, c *fc.Context) error {
					if calls.Add(1) <= tt.fails {
						return errors.Retry(errors.New("busy"))
					}
					return nil
				})).Retry(tt.policy).Use(mw...).MustBuild()
				for _, traced := range []bool{false, true} {
					buf.Reset()
					m.reset()
					calls.Store(0)
					var tr flow.Trace
					var opts []flow.RunOption
					if traced {
						opts = append(opts, flow.WithTrace(&tr))
					}
					_, err := f.Run(t.Context(), nil, opts...)
					assert.Equal(t, tt.outcome, errors.KindOf(err), "traced=%v: %v", traced, err)
					assert.Equal(t, tt.want, m.get(), "traced=%v", traced)
					var levels []string
					for line := range strings.Lines(buf.String()) {
						_, rest, _ := strings.Cut(line, "level=")
						level, _, _ := strings.Cut(rest, " ")
						levels = append(levels, level)
					}
					assert.Equal(t, tt.logLevel, levels, "traced=%v: %s", traced, buf.String())
					if traced {
						require.Len(t, tr.Steps, 1)
						assert.Equal(t, tt.outcome, tr.Steps[0].Outcome)
						assert.Equal(t, tt.attempts, tr.Steps[0].Attempts)
						assert.Equal(t, tt.outcome, tr.Outcome)
					}
					var se *flow.StepError
					if err != nil {
						require.ErrorAs(t, err, &se)
						assert.Equal(t, tt.attempts, se.Attempts)
						assert.NotErrorIs(t, err, errors.ErrWillRetry, "a run never ends with will-retry")
					}
				}
			})
		})
	}
}

// TestWillRetryErrorReachesMiddleware: a middleware sees the
// *errors.WillRetryError of a retried attempt: which attempt, how long
// until the next, and the service's own error.
func TestWillRetryErrorReachesMiddleware(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cause := errors.New("busy")
		var seen []string
		spy := func(next flow.Handler) flow.Handler {
			return func(ctx context.Context, s *flow.StepInfo, c *fc.Context) error {
				err := next(ctx, s, c)
				if we, ok := errors.AsType[*errors.WillRetryError](err); ok {
					seen = append(seen, fmt.Sprintf("%d %s %v", we.Attempt, we.After, errors.Is(we.Err, cause)))
				}
				return err
			}
		}
		var n atomic.Int32
		f := flow.New("w", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
			if n.Add(1) < 3 {
				return errors.Retry(cause)
			}
			return nil
		})).Retry(errors.Policy{Initial: 100 * time.Millisecond, MaxAttempts: 3}).Use(spy).MustBuild()
		start := time.Now()
		_, err := f.Run(t.Context(), nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"1 100ms true", "2 200ms true"}, seen)
		assert.Equal(t, 300*time.Millisecond, time.Since(start))
	})
}

// TestTimedOutAttemptIsWillRetry: an attempt that runs out of its Timeout
// is retried, and the middleware sees it as will-retry, not canceled.
func TestTimedOutAttemptIsWillRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var m metrics
		var n atomic.Int32
		f := flow.New("t", flow.Timeout(flow.Step("slow", func(ctx context.Context, c *fc.Context) error {
			if n.Add(1) == 1 {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}), time.Second)).Retry(errors.Policy{MaxAttempts: 2, Initial: time.Millisecond}).Use(flow.Measure(&m)).MustBuild()
		_, err := f.Run(t.Context(), nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"t/slow will-retry", "t/slow ok"}, m.get())
	})
}

// TestNestedExhaustedRetriesAreNotMultiplied: a nested flow whose step ran
// out of retries is one step of its parent that is not retried again.
func TestNestedExhaustedRetriesAreNotMultiplied(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var m metrics
		var n atomic.Int32
		inner := flow.New("inner", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
			n.Add(1)
			return errors.Retry(errors.New("busy"))
		})).Retry(errors.Policy{MaxAttempts: 2}).Use(flow.Measure(&m)).MustBuild()
		outer := flow.New("outer", inner).Retry(errors.Policy{MaxAttempts: 5, RetryAll: true}).Use(flow.Measure(&m)).MustBuild()
		_, err := outer.Run(t.Context(), nil)
		assert.Equal(t, errors.KindRetryExhausted, errors.KindOf(err))
		assert.Equal(t, int32(2), n.Load())
		assert.Equal(t, []string{"inner/s will-retry", "inner/s retry-exhausted", "outer/inner retry-exhausted"}, m.get())
	})
}

type metrics struct {
	mu  sync.Mutex
	obs []string
}

func (m *metrics) ObserveStep(flow, step string, outcome errors.Kind, d time.Duration) {
	m.mu.Lock()
	m.obs = append(m.obs, flow+"/"+step+" "+outcome.String())
	m.mu.Unlock()
}
func (m *metrics) get() []string { m.mu.Lock(); defer m.mu.Unlock(); return m.obs }
func (m *metrics) reset()        { m.mu.Lock(); defer m.mu.Unlock(); m.obs = nil }

func TestRecoverMiddlewareCatchesMiddlewarePanic(t *testing.T) {
	bad := func(next flow.Handler) flow.Handler {
		return func(ctx context.Context, s *flow.StepInfo, c *fc.Context) error { panic("middleware bug") }
	}
	f := flow.New("r", setStep("a", "a", 1)).Use(flow.Recover(), bad).MustBuild()
	_, err := f.Run(t.Context(), nil)
	assert.Equal(t, errors.KindPanic, errors.KindOf(err))
}

func TestTrace(t *testing.T) {
	var tr flow.Trace
	f := flow.New("traced",
		setStep("a", "a", 1),
		flow.When("a > 5", setStep("never", "x", 1)),
		flow.Step("fail", func(ctx context.Context, c *fc.Context) error {
			c.Set("partial", true)
			return errors.Stop("no")
		}),
	).MustBuild()
	_, err := f.Run(t.Context(), nil, flow.WithTrace(&tr))
	require.Error(t, err)
	assert.Equal(t, "traced", tr.Flow)
	assert.Equal(t, errors.KindStop, tr.Outcome)
	require.Len(t, tr.Steps, 3)
	assert.Equal(t, flow.Span{Name: "a", Path: "traced/a", Attempts: 1, Outcome: errors.KindOK, Wrote: []string{"a"}},
		zeroTimes(tr.Steps[0]))
	assert.Equal(t, errors.KindSkipped, tr.Steps[1].Outcome)
	assert.Equal(t, "when(a > 5)", tr.Steps[1].Name)
	assert.Equal(t, flow.Span{Name: "fail", Path: "traced/fail", Attempts: 1, Outcome: errors.KindStop, Err: "stop: no", Wrote: []string{"partial"}},
		zeroTimes(tr.Steps[2]))
	assert.Equal(t, "no", tr.Reason, "the Stop's reason, as data")
	b, err := json.Marshal(tr)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"outcome":"stop","error":"flow \"traced\": step \"fail\": stop: no","reason":"no"`)

	// Only a Stop has a reason; a recycled trace loses the last one.
	_, err = flow.New("f", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
		return errors.Join(errors.Stop("no"), errors.Fatal(nil))
	})).MustBuild().Run(t.Context(), nil, flow.WithTrace(&tr))
	require.Error(t, err)
	assert.Equal(t, errors.KindFatal, tr.Outcome)
	assert.Empty(t, tr.Reason)
}

func zeroTimes(s flow.Span) flow.Span {
	s.Start, s.Duration = time.Time{}, 0
	return s
}

func TestFromThroughReplace(t *testing.T) {
	var log []string
	b := flow.New("ftr", record("a", &log), record("b", &log), record("c", &log))
	f := b.MustBuild()

	_, err := f.Run(t.Context(), nil, flow.From("b"))
	require.NoError(t, err)
	assert.Equal(t, []string{"b", "c"}, log)

	log = nil
	c, err := f.Run(t.Context(), nil, flow.Through("b"))
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, log)
	assert.Equal(t, map[string]any{"a": true, "b": true}, c.Map())

	_, err = f.Run(t.Context(), nil, flow.From("zzz"))
	assert.EqualError(t, err, `flow "ftr": no step named "zzz"`)

	log = nil
	stubbed := b.Replace("b", flow.Step("stub", func(ctx context.Context, c *fc.Context) error {
		log = append(log, "stub")
		return nil
	})).MustBuild()
	_, err = stubbed.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "stub", "c"}, log)

	_, err = flow.New("x", record("a", &log)).Replace("nope", record("z", &log)).Build()
	assert.ErrorContains(t, err, `step "nope": cannot replace: no step has this name`)
}

func TestCombinatorsCarryNames(t *testing.T) {
	names := []string{
		flow.All().Name(), flow.Tap(nil).Name(), flow.Each("k").Name(), flow.Until("x").Name(),
		flow.First().Name(), flow.Saga().Name(), flow.Fork("k").Name(), flow.When("x").Name(), flow.Unless("x").Name(),
	}
	assert.Equal(t, "all tap each(k) until(x) first saga fork(k) when(x) unless(x)", strings.Join(names, " "))
}

func TestNamedCombinatorIsCheckedAndThroughInsideAll(t *testing.T) {
	_, err := flow.New("n", flow.Named("seq", flow.Then(price))).Build()
	assert.ErrorContains(t, err, `step "price": key "items": needed but not provided`, "a renamed combinator is still checked")

	f := flow.New("a", flow.All(setStep("x", "x", 1), setStep("y", "y", 2)), setStep("after", "z", 3)).MustBuild()
	c, err := f.Run(t.Context(), nil, flow.Through("x"))
	require.NoError(t, err)
	assert.Equal(t, 1, c.View()["x"], "the through step's writes are kept")
	assert.False(t, c.Has("z"), "nothing after the through step runs")
}

func TestTraceJSONMatchesEncodingJSON(t *testing.T) {
	type plainSpan flow.Span
	type plainTrace struct {
		Flow     string        `json:"flow"`
		Start    time.Time     `json:"start"`
		Duration time.Duration `json:"duration_ns"`
		Outcome  errors.Kind   `json:"outcome"`
		Err      string        `json:"error,omitempty"`
		Reason   string        `json:"reason,omitempty"`
		Steps    []plainSpan   `json:"steps"`
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 6007, time.UTC)
	for _, tr := range []flow.Trace{
		{},
		{Flow: "f", Start: start, Duration: 42, Outcome: errors.KindOK, Steps: []flow.Span{}},
		{Flow: "f", Outcome: errors.KindStop, Err: `flow "f": step "s": stop: no "items"`, Reason: `no "items"`, Steps: []flow.Span{}},
		{Flow: "we\"ird <&> \\ \n\t\x01 é \u2028 \xff", Start: start.In(time.FixedZone("x", 3600)), Outcome: errors.KindFailed, Err: "boom",
			Steps: []flow.Span{
				{Name: "a", Path: "f/a", Start: start, Duration: 7, Attempts: 3, Outcome: errors.KindOK, Wrote: []string{"k1", "k\"2"}},
				{Name: "b", Path: "f/b", Outcome: errors.KindSkipped, Err: "x"},
				{Name: "c", Path: "f/c", Attempts: 3, Outcome: errors.KindRetryExhausted, Err: "retries exhausted"},
			}},
	} {
		got, err := json.Marshal(&tr)
		require.NoError(t, err)
		steps := make([]plainSpan, 0, len(tr.Steps))
		for _, s := range tr.Steps {
			steps = append(steps, plainSpan(s))
		}
		if tr.Steps == nil {
			steps = nil
		}
		want, err := json.Marshal(plainTrace{tr.Flow, tr.Start, tr.Duration, tr.Outcome, tr.Err, tr.Reason, steps})
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got))
		var back flow.Trace
		require.NoError(t, json.Unmarshal(got, &back))
		assert.Equal(t, tr.Outcome, back.Outcome, "the outcome round-trips")
		for i := range tr.Steps {
			assert.Equal(t, tr.Steps[i].Outcome, back.Steps[i].Outcome)
		}
	}
}

// TestTraceDecodesEarlierJSON: traces stored before outcomes were typed
// decode; their outcome names are the same.
func TestTraceDecodesEarlierJSON(t *testing.T) {
	stored := `{"flow":"orders","start":"2026-01-02T03:04:05Z","duration_ns":9,"outcome":"retry-exhausted","error":"x","steps":[` +
		`{"name":"a","path":"orders/a","start":"2026-01-02T03:04:05Z","duration_ns":1,"attempts":1,"outcome":"ok"},` +
		`{"name":"w","path":"orders/w","start":"2026-01-02T03:04:05Z","duration_ns":0,"outcome":"skipped"},` +
		`{"name":"b","path":"orders/b","start":"2026-01-02T03:04:05Z","duration_ns":1,"attempts":1,"outcome":"failed"},` +
		`{"name":"p","path":"orders/p","start":"2026-01-02T03:04:05Z","duration_ns":1,"attempts":1,"outcome":"panic"},` +
		`{"name":"c","path":"orders/c","start":"2026-01-02T03:04:05Z","duration_ns":5,"attempts":3,"outcome":"retry-exhausted","error":"x"}]}`
	var tr flow.Trace
	require.NoError(t, json.Unmarshal([]byte(stored), &tr))
	assert.Equal(t, errors.KindRetryExhausted, tr.Outcome)
	var got []errors.Kind
	for _, s := range tr.Steps {
		got = append(got, s.Outcome)
	}
	assert.Equal(t, []errors.Kind{errors.KindOK, errors.KindSkipped, errors.KindFailed, errors.KindPanic, errors.KindRetryExhausted}, got)
	again, err := json.Marshal(&tr)
	require.NoError(t, err)
	assert.JSONEq(t, stored, string(again), "re-encoded the same")
}

// TestEachDrop: an element whose steps drop is left out of the collected
// results and the other elements go on, in order, whatever the
// concurrency; a drop outside an Each ends the run with outcome dropped.
func TestEachDrop(t *testing.T) {
	double := flow.Func("double", func(ctx context.Context, in struct{ Item int }) (struct{ Doubled int }, error) {
		if in.Item%3 == 0 {
			return struct{ Doubled int }{}, errors.Dropf("%d: multiple of 3", in.Item)
		}
		return struct{ Doubled int }{in.Item * 2}, nil
	})
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprint("workers=", workers), func(t *testing.T) {
			var ran atomic.Int64
			count := flow.Step("count", func(ctx context.Context, c *fc.Context) error { ran.Add(1); return nil })
			f := flow.New("each",
				flow.Each("nums", double, count).Collect("doubled", "results").Concurrency(workers),
			).Input(fc.Key[[]int]("nums")).MustBuild()
			tr := &flow.Trace{}
			c, err := f.Run(t.Context(), map[string]any{"nums": []int{1, 3, 4, 6, 7, 9}}, flow.WithTrace(tr))
			require.NoError(t, err, "a dropped element does not end the loop")
			assert.Equal(t, []int{2, 8, 14}, c.View()["results"], "dropped elements are left out, order kept")
			assert.Equal(t, int64(3), ran.Load(), "the steps after the drop do not run for that element")
			assert.Equal(t, errors.KindOK, tr.Outcome)
			drops := 0
			for _, s := range tr.Steps {
				if s.Outcome == errors.KindDropped {
					drops++
				}
			}
			assert.Equal(t, 3, drops, "each drop is traced")
		})
	}

	f := flow.New("filter", flow.Step("only", func(ctx context.Context, c *fc.Context) error {
		return errors.Drop("not ours")
	}), setStep("after", "x", 1)).MustBuild()
	tr := &flow.Trace{}
	c, err := f.Run(t.Context(), map[string]any{}, flow.WithTrace(tr))
	require.ErrorIs(t, err, errors.ErrDrop)
	assert.Equal(t, errors.KindDropped, errors.KindOf(err))
	assert.False(t, c.Has("x"), "the run ends at the drop")
	assert.Equal(t, errors.KindDropped, tr.Outcome)
	assert.Equal(t, "not ours", tr.Reason)
}

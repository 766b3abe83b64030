package metrics_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/metrics"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHistogramBuckets(t *testing.T) {
	r := metrics.New()
	r.ObserveStep("f", `we"ird`, errors.KindOK, 300*time.Microsecond)
	r.ObserveStep("f", `we"ird`, errors.KindOK, 2*time.Second)
	r.ObserveStep("f", `we"ird`, errors.KindOK, time.Minute)
	var b strings.Builder
	require.NoError(t, r.WritePrometheus(&b))
	out := b.String()
	labels := `flow="f",outcome="ok",step="we\"ird"`
	for _, line := range []string{
		`svcflow_step_duration_seconds_bucket{` + labels + `,le="0.0001"} 0`,
		`svcflow_step_duration_seconds_bucket{` + labels + `,le="0.0005"} 1`,
		`svcflow_step_duration_seconds_bucket{` + labels + `,le="1"} 1`,
		`svcflow_step_duration_seconds_bucket{` + labels + `,le="5"} 2`,
		`svcflow_step_duration_seconds_bucket{` + labels + `,le="10"} 2`,
		`svcflow_step_duration_seconds_bucket{` + labels + `,le="+Inf"} 3`,
		`svcflow_step_duration_seconds_sum{` + labels + `} 62.0003`,
		`svcflow_step_duration_seconds_count{` + labels + `} 3`,
	} {
		assert.Contains(t, out, line+"\n")
	}
}

func TestChannelAndStepMetrics(t *testing.T) {
	r := metrics.New()
	f := flow.New("orders", flow.Step("check", func(ctx context.Context, c *fc.Context) error {
		if c.View()["bad"] == true {
			return errors.Stop("bad")
		}
		return nil
	})).Use(flow.Measure(r)).MustBuild()
	ch, err := channel.New(channel.Config{Name: "intake", Flow: f})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background())) // a channel handles messages while it runs
	t.Cleanup(func() { _ = ch.Stop(context.Background()) })
	r.AddChannel(ch)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			m, err := message.NewJSON(map[string]any{"bad": i%5 == 0}, nil)
			require.NoError(t, err)
			ch.Handle(t.Context(), m)
		})
	}
	wg.Wait()
	var b strings.Builder
	require.NoError(t, r.WritePrometheus(&b))
	out := b.String()
	assert.Contains(t, out, `svcflow_messages_total{channel="intake",outcome="done"} 8`+"\n")
	assert.Contains(t, out, `svcflow_messages_total{channel="intake",outcome="rejected"} 2`+"\n")
	assert.Contains(t, out, `svcflow_step_duration_seconds_count{flow="orders",outcome="ok",step="check"} 8`+"\n")
	assert.Contains(t, out, `svcflow_step_duration_seconds_count{flow="orders",outcome="stop",step="check"} 2`+"\n")
	assert.Contains(t, out, `svcflow_channel_up{channel="intake"} 1`+"\n")
	assert.Contains(t, out, `svcflow_messages_total{channel="intake",outcome="dropped"} 0`+"\n")
	assert.Contains(t, out, `svcflow_channel_hook_errors_total{channel="intake"} 0`+"\n")
	assert.Contains(t, out, `svcflow_store_writable{channel="intake"} 1`+"\n")
	assert.Contains(t, out, "# TYPE svcflow_step_duration_seconds histogram\n")
}

// TestRetriedStepAttemptLabels: every attempt of a retried step is one
// observation labelled with its own outcome. A step that succeeds on its
// third attempt counts two will-retry attempts and one ok; a step whose
// three attempts all fail counts two will-retry and one retry-exhausted.
func TestRetriedStepAttemptLabels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := metrics.New()
		var flakyCalls, downCalls atomic.Int32
		f := flow.New("orders",
			flow.Step("flaky", func(ctx context.Context, c *fc.Context) error {
				if flakyCalls.Add(1) < 3 {
					return errors.Retry(errors.New("busy"))
				}
				return nil
			}),
			flow.Step("down", func(ctx context.Context, c *fc.Context) error {
				downCalls.Add(1)
				return errors.Retry(errors.New("unavailable"))
			}),
		).Retry(errors.Policy{MaxAttempts: 3, Initial: 10 * time.Millisecond}).Use(flow.Measure(r)).MustBuild()
		_, err := f.Run(t.Context(), nil)
		require.Equal(t, errors.KindRetryExhausted, errors.KindOf(err), "%v", err)
		require.Equal(t, int32(3), flakyCalls.Load())
		require.Equal(t, int32(3), downCalls.Load())

		var b strings.Builder
		require.NoError(t, r.WritePrometheus(&b))
		counts := map[string]string{}
		for line := range strings.Lines(b.String()) {
			if rest, ok := strings.CutPrefix(line, "svcflow_step_duration_seconds_count{"); ok {
				labels, n, _ := strings.Cut(strings.TrimSpace(rest), "} ")
				counts[labels] = n
			}
		}
		assert.Equal(t, map[string]string{
			`flow="orders",outcome="will-retry",step="flaky"`:     "2",
			`flow="orders",outcome="ok",step="flaky"`:             "1",
			`flow="orders",outcome="will-retry",step="down"`:      "2",
			`flow="orders",outcome="retry-exhausted",step="down"`: "1",
		}, counts, b.String())
	})
}

// BenchmarkObserveStep: one observation through the registry (its
// series found by flow, step and outcome) versus the hand-written
// baseline: Observe on a client_golang histogram resolved beforehand.
func BenchmarkObserveStep(b *testing.B) {
	r := metrics.New()
	b.Run("registry", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r.ObserveStep("orders", "set(total)", errors.KindOK, time.Millisecond)
		}
	})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h", Buckets: metrics.DefaultBuckets}, []string{"flow", "step", "outcome"}).
		WithLabelValues("orders", "set(total)", "ok")
	b.Run("baseline", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.Observe(time.Millisecond.Seconds())
		}
	})
}

// BenchmarkMeasureFlow: a 10-step flow measured by flow.Measure into the
// registry, versus the same flow with a hand-written middleware timing
// each step into histograms resolved beforehand, and without metrics.
func BenchmarkMeasureFlow(b *testing.B) {
	steps := func() []flow.Service {
		s := make([]flow.Service, 10)
		for i := range s {
			s[i] = flow.Step(fmt.Sprintf("s%d", i), func(ctx context.Context, c *fc.Context) error {
				c.Set("k", i)
				return nil
			})
		}
		return s
	}
	vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h", Buckets: metrics.DefaultBuckets}, []string{"flow", "step", "outcome"})
	byStep := map[*flow.StepInfo]prometheus.Observer{}
	var mu sync.Mutex
	handWritten := func(next flow.Handler) flow.Handler {
		var o prometheus.Observer
		return func(ctx context.Context, s *flow.StepInfo, c *fc.Context) error {
			if o == nil {
				mu.Lock()
				if o = byStep[s]; o == nil {
					o = vec.WithLabelValues(s.Flow, s.Name, "ok")
					byStep[s] = o
				}
				mu.Unlock()
			}
			start := time.Now()
			err := next(ctx, s, c)
			o.Observe(time.Since(start).Seconds())
			return err
		}
	}
	flows := map[string]*flow.Flow{
		"plain":    flow.New("f", steps()...).MustBuild(),
		"registry": flow.New("f", steps()...).Use(flow.Measure(metrics.New())).MustBuild(),
		"baseline": flow.New("f", steps()...).Use(handWritten).MustBuild(),
	}
	for _, name := range []string{"plain", "baseline", "registry"} {
		f := flows[name]
		c := fc.New()
		c.Set("k", 0)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := f.RunContext(b.Context(), c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestLint: everything the registry exposes, the Go and process
// collectors included, passes promlint, and the documented families are
// there.
func TestLint(t *testing.T) {
	r := metrics.New()
	f := flow.New("orders", flow.Step("check", func(ctx context.Context, c *fc.Context) error { return nil })).
		Use(flow.Measure(r)).MustBuild()
	st := store.NewMemory()
	ch, err := channel.New(channel.Config{Name: "intake", Flow: f, Store: st})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background())) // a channel handles messages while it runs
	t.Cleanup(func() { _ = ch.Stop(context.Background()) })
	r.AddChannel(ch)
	m, err := message.NewJSON(map[string]any{}, nil)
	require.NoError(t, err)
	require.NoError(t, ch.Handle(t.Context(), m).Err)
	r.ObserveResponse("127.0.0.1:8080", "POST /orders", 200)
	r.ObserveResponse("127.0.0.1:8080", "", 404)

	var b strings.Builder
	require.NoError(t, r.WritePrometheus(&b))
	problems, err := promlint.New(strings.NewReader(b.String())).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems, b.String())
	out := b.String()
	for _, family := range []string{"go_goroutines", "go_gc_duration_seconds", "process_cpu_seconds_total",
		"svcflow_build_info", "svcflow_step_duration_seconds", "svcflow_messages_total", "svcflow_messages_in_flight",
		"svcflow_messages_owed", "svcflow_messages_waiting", "svcflow_messages_dead", "svcflow_messages_recovering", "svcflow_channel_up", "svcflow_channel_restarts_total",
		"svcflow_store_writable", "svcflow_http_responses_total"} {
		assert.Contains(t, out, "# TYPE "+family+" ", family)
	}
	assert.Regexp(t, `svcflow_build_info\{goversion="go[^"]+",revision="[^"]*",version="[^"]+"\} 1`, out)
	assert.Contains(t, out, `svcflow_http_responses_total{code="200",route="POST /orders",server="127.0.0.1:8080"} 1`+"\n")
	assert.Contains(t, out, `svcflow_http_responses_total{code="404",route="",server="127.0.0.1:8080"} 1`+"\n")
}

// TestOwedGauge: svcflow_messages_owed counts the channel's stored
// messages that are pending or processing, read from the store at each
// scrape.
func TestOwedGauge(t *testing.T) {
	r := metrics.New()
	f := flow.New("orders", flow.Step("check", func(ctx context.Context, c *fc.Context) error { return nil })).MustBuild()
	st := store.NewMemory()
	ch, err := channel.New(channel.Config{Name: "intake", Flow: f, Store: st})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background())) // a channel handles messages while it runs
	t.Cleanup(func() { _ = ch.Stop(context.Background()) })
	r.AddChannel(ch)
	for i := range 3 {
		m, err := message.NewJSON(map[string]any{"i": i}, nil)
		require.NoError(t, err)
		require.NoError(t, st.Put(t.Context(), m))
	}
	m, err := message.NewJSON(map[string]any{}, nil)
	require.NoError(t, err)
	require.NoError(t, ch.Handle(t.Context(), m).Err) // done: not owed
	gauge := func() string {
		var b strings.Builder
		require.NoError(t, r.WritePrometheus(&b))
		for line := range strings.Lines(b.String()) {
			if rest, ok := strings.CutPrefix(line, `svcflow_messages_owed{channel="intake"} `); ok {
				return strings.TrimSpace(rest)
			}
		}
		return "absent"
	}
	assert.Equal(t, "3", gauge())
	recs, err := st.Search(t.Context(), store.Query{States: []store.State{store.Pending}})
	require.NoError(t, err)
	require.NoError(t, st.Transition(t.Context(), recs[0].Message.ID, store.Done, store.Update{}))
	assert.Equal(t, "2", gauge())
}

// TestObserveStepAllocations: once a step's series exists, observing it
// allocates nothing (it runs on every step attempt).
func TestObserveStepAllocations(t *testing.T) {
	r := metrics.New()
	r.ObserveStep("f", "s", errors.KindOK, time.Millisecond)
	assert.Zero(t, testing.AllocsPerRun(100, func() { r.ObserveStep("f", "s", errors.KindOK, time.Millisecond) }))
}

// TestAddText: series written as text join the registry's exposition; a
// text that does not parse fails the scrape, the registry's own series
// still written.
func TestAddText(t *testing.T) {
	r := metrics.New()
	r.AddText(func(w io.Writer) error {
		_, err := io.WriteString(w, "# HELP svcflow_x_total X.\n# TYPE svcflow_x_total counter\nsvcflow_x_total{service=\"a\"} 3\n")
		return err
	})
	var b strings.Builder
	require.NoError(t, r.WritePrometheus(&b))
	assert.Contains(t, b.String(), `svcflow_x_total{service="a"} 3`+"\n")
	assert.Contains(t, b.String(), "# TYPE svcflow_build_info gauge\n")

	r.AddText(func(w io.Writer) error { _, err := io.WriteString(w, "not metrics {\n"); return err })
	b.Reset()
	assert.Error(t, r.WritePrometheus(&b))
	assert.Contains(t, b.String(), "# TYPE svcflow_build_info gauge\n")
}

package metrics_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/metrics"
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
	labels := `flow="f",step="we\"ird",outcome="ok"`
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
	assert.Contains(t, out, `svcflow_step_duration_seconds_count{flow="orders",step="check",outcome="ok"} 8`+"\n")
	assert.Contains(t, out, `svcflow_step_duration_seconds_count{flow="orders",step="check",outcome="stop"} 2`+"\n")
	assert.Contains(t, out, `svcflow_channel_up{channel="intake"} 0`+"\n")
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
			`flow="orders",step="flaky",outcome="will-retry"`:     "2",
			`flow="orders",step="flaky",outcome="ok"`:             "1",
			`flow="orders",step="down",outcome="will-retry"`:      "2",
			`flow="orders",step="down",outcome="retry-exhausted"`: "1",
		}, counts, b.String())
	})
}

func BenchmarkObserveStep(b *testing.B) {
	r := metrics.New()
	b.ReportAllocs()
	for b.Loop() {
		r.ObserveStep("f", "s", errors.KindOK, time.Millisecond)
	}
}

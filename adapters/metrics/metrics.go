// Package metrics collects what a running svcflow process exposes on its
// /metrics endpoint, in the Prometheus text format: step latencies of every
// flow (a [flow.Metrics] fed by the [flow.Measure] middleware) and message
// outcomes of every channel.
//
// svcflow_step_duration_seconds is a histogram of step attempts labelled
// flow, step and outcome, the name of the attempt's errors.Kind: ok, stop,
// will-retry (an attempt that failed and is retried), retry-exhausted (the
// last attempt of a step whose retries ran out), failed, panic, fatal or
// canceled. A step that succeeds on its third attempt counts two
// will-retry attempts and one ok. svcflow_messages_total counts a
// channel's messages by what became of them: done, rejected, error (the
// store's states), left (not finished: redelivered or run again at the
// next start) and duplicate (answered from the store).
//
// It writes the exposition format itself (a few counters and histograms do
// not justify a client library). A [Registry] is safe for concurrent use;
// observing a step takes a read lock, an atomic add per bucket hit, and no
// allocation once the step's series exists.
package metrics

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/errors"
)

// DefaultBuckets are the upper bounds, in seconds, of step latency
// histograms: 100µs to 10s.
var DefaultBuckets = []float64{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}

// Registry holds step histograms and the channels to report.
type Registry struct {
	buckets []float64

	mu       sync.RWMutex
	steps    map[stepKey]*histogram
	channels []*channel.Channel
}

type stepKey struct {
	flow, step string
	outcome    errors.Kind
}

type histogram struct {
	counts []atomic.Uint64 // one per bucket, plus +Inf
	sumNs  atomic.Int64
}

// New returns an empty registry using [DefaultBuckets].
func New() *Registry {
	return &Registry{buckets: DefaultBuckets, steps: map[stepKey]*histogram{}}
}

// ObserveStep implements flow.Metrics: it counts one attempt of a step in
// the histogram labelled with the flow, the step and the outcome's name.
func (r *Registry) ObserveStep(flowName, step string, outcome errors.Kind, d time.Duration) {
	k := stepKey{flowName, step, outcome}
	r.mu.RLock()
	h := r.steps[k]
	r.mu.RUnlock()
	if h == nil {
		r.mu.Lock()
		if h = r.steps[k]; h == nil {
			h = &histogram{counts: make([]atomic.Uint64, len(r.buckets)+1)}
			r.steps[k] = h
		}
		r.mu.Unlock()
	}
	s := d.Seconds()
	i, _ := slices.BinarySearch(r.buckets, s)
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

// AddChannel reports ch's message outcomes and state at every scrape.
func (r *Registry) AddChannel(ch *channel.Channel) {
	r.mu.Lock()
	r.channels = append(r.channels, ch)
	r.mu.Unlock()
}

// WritePrometheus writes every metric in the Prometheus text format 0.0.4.
func (r *Registry) WritePrometheus(w io.Writer) error {
	var b strings.Builder
	r.mu.RLock()
	chans := slices.Clone(r.channels)
	keys := slices.SortedFunc(maps.Keys(r.steps), func(a, b stepKey) int {
		return strings.Compare(a.flow+"\x00"+a.step+"\x00"+a.outcome.String(), b.flow+"\x00"+b.step+"\x00"+b.outcome.String())
	})
	hs := make([]*histogram, len(keys))
	for i, k := range keys {
		hs[i] = r.steps[k]
	}
	r.mu.RUnlock()

	b.WriteString("# HELP svcflow_messages_total Messages handled by a channel, by outcome.\n")
	b.WriteString("# TYPE svcflow_messages_total counter\n")
	for _, ch := range chans {
		st := ch.Status()
		for _, o := range slices.Sorted(maps.Keys(st.Outcomes)) {
			fmt.Fprintf(&b, "svcflow_messages_total{channel=%s,outcome=%s} %d\n", quote(st.Name), quote(o), st.Outcomes[o])
		}
	}
	b.WriteString("# HELP svcflow_messages_in_flight Messages being processed by a channel.\n")
	b.WriteString("# TYPE svcflow_messages_in_flight gauge\n")
	for _, ch := range chans {
		st := ch.Status()
		fmt.Fprintf(&b, "svcflow_messages_in_flight{channel=%s} %d\n", quote(st.Name), st.InFlight)
	}
	b.WriteString("# HELP svcflow_messages_recovering Owed messages a channel found at start that have not run again yet.\n")
	b.WriteString("# TYPE svcflow_messages_recovering gauge\n")
	for _, ch := range chans {
		st := ch.Status()
		fmt.Fprintf(&b, "svcflow_messages_recovering{channel=%s} %d\n", quote(st.Name), st.Recovering)
	}
	b.WriteString("# HELP svcflow_channel_restarts_total Service restarts after Fatal errors.\n")
	b.WriteString("# TYPE svcflow_channel_restarts_total counter\n")
	for _, ch := range chans {
		st := ch.Status()
		fmt.Fprintf(&b, "svcflow_channel_restarts_total{channel=%s} %d\n", quote(st.Name), st.Restarts)
	}
	b.WriteString("# HELP svcflow_channel_up Whether a channel is running (1) or not (0).\n")
	b.WriteString("# TYPE svcflow_channel_up gauge\n")
	for _, ch := range chans {
		st := ch.Status()
		up := 0
		if st.State == channel.StateRunning {
			up = 1
		}
		fmt.Fprintf(&b, "svcflow_channel_up{channel=%s} %d\n", quote(st.Name), up)
	}
	b.WriteString("# HELP svcflow_store_writable Whether a channel's store can be written (1) or its last write failed and no write or probe succeeded since (0).\n")
	b.WriteString("# TYPE svcflow_store_writable gauge\n")
	for _, ch := range chans {
		st := ch.Status()
		writable := 1
		if st.StoreError != "" {
			writable = 0
		}
		fmt.Fprintf(&b, "svcflow_store_writable{channel=%s} %d\n", quote(st.Name), writable)
	}

	b.WriteString("# HELP svcflow_step_duration_seconds Duration of step attempts.\n")
	b.WriteString("# TYPE svcflow_step_duration_seconds histogram\n")
	for i, k := range keys {
		h := hs[i]
		labels := fmt.Sprintf("flow=%s,step=%s,outcome=%s", quote(k.flow), quote(k.step), quote(k.outcome.String()))
		var cum uint64
		for j, ub := range r.buckets {
			cum += h.counts[j].Load()
			fmt.Fprintf(&b, "svcflow_step_duration_seconds_bucket{%s,le=%s} %d\n", labels, quote(formatFloat(ub)), cum)
		}
		cum += h.counts[len(r.buckets)].Load()
		fmt.Fprintf(&b, "svcflow_step_duration_seconds_bucket{%s,le=\"+Inf\"} %d\n", labels, cum)
		fmt.Fprintf(&b, "svcflow_step_duration_seconds_sum{%s} %s\n", labels, formatFloat(float64(h.sumNs.Load())/1e9))
		fmt.Fprintf(&b, "svcflow_step_duration_seconds_count{%s} %d\n", labels, cum)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// quote renders a label value: backslash, double quote and newline escaped.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// Package metrics collects what a running svcflow process exposes on its
// /metrics endpoint, through a Prometheus client registry
// (github.com/prometheus/client_golang): the Go runtime and process
// collectors, svcflow_build_info, step latencies of every flow (a
// [flow.Metrics] fed by the [flow.Measure] middleware), message outcomes
// and gauges of every channel, and the answers of HTTP sources by status.
//
// svcflow_step_duration_seconds is a histogram of step attempts labelled
// flow, step and outcome, the name of the attempt's errors.Kind: ok, stop,
// will-retry (an attempt that failed and is retried), retry-exhausted (the
// last attempt of a step whose retries ran out), failed, panic, fatal or
// canceled. A step that succeeds on its third attempt counts two
// will-retry attempts and one ok. The step label is the step's name: its
// `name:` in YAML, else the name its kind gives it, which never holds
// expression source ("set(total)", "stop(no items)", "http(response)").
//
// svcflow_messages_total counts a channel's messages by what became of
// them: done, rejected, error (the store's states), left (not finished:
// redelivered or run again at the next start), duplicate (answered
// from the store) and dropped (consumed silently by a drop; stored as
// done). svcflow_channel_hook_errors_total counts the channel's outcome
// hooks (on_ok, on_failure, ...) that failed. The channel gauges are read at each scrape: from the
// channel's status (in flight, recovering, up, store writable) and from
// its store (owed: pending or processing; waiting: parked by a durable
// run; dead: dead letters).
//
// A [Registry] is safe for concurrent use. Observing a step takes a read
// lock, a map lookup and the histogram's atomic adds, with no allocation
// once the step's series exists.
package metrics

import (
	"bytes"
	"context"
	"io"
	"maps"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
)

// DefaultBuckets are the upper bounds, in seconds, of step latency
// histograms: 100µs to 10s.
var DefaultBuckets = []float64{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}

// StoreTimeout bounds the store counts (owed, waiting, dead) one scrape
// makes per channel; a count that takes longer is left out of the scrape.
const StoreTimeout = 2 * time.Second

// Registry is a Prometheus registry with svcflow's metrics.
type Registry struct {
	reg   *prometheus.Registry
	steps *prometheus.HistogramVec
	http  *prometheus.CounterVec

	mu    sync.RWMutex
	cache map[stepKey]prometheus.Observer // the steps' series, found without hashing labels

	chmu     sync.Mutex
	channels []*channel.Channel
	texts    []func(io.Writer) error // see AddText
}

type stepKey struct {
	flow, step string
	outcome    errors.Kind
}

// New returns a registry with the Go and process collectors,
// svcflow_build_info, the step histogram, the HTTP responses counter and
// the channel metrics (of the channels given to [Registry.AddChannel]).
func New() *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "svcflow_step_duration_seconds",
			Help:    "Duration of step attempts, by flow, step and outcome.",
			Buckets: DefaultBuckets,
		}, []string{"flow", "step", "outcome"}),
		http: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "svcflow_http_responses_total",
			Help: "Responses of HTTP sources, by server address, route (METHOD /path; empty for a path no route serves) and status code.",
		}, []string{"server", "route", "code"}),
		cache: map[stepKey]prometheus.Observer{},
	}
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
		r.steps,
		r.http,
		channelCollector{r},
	)
	return r
}

// buildInfo is svcflow_build_info: the module version and VCS revision of
// the binary, and the Go version that built it.
func buildInfo() prometheus.Collector {
	version, revision, goversion := "(devel)", "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goversion = bi.GoVersion
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "svcflow_build_info",
		Help:        "Always 1; the labels tell the module version, the VCS revision and the Go version of the binary.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goversion},
	})
	g.Set(1)
	return g
}

// ObserveStep implements flow.Metrics: it counts one attempt of a step in
// the histogram labelled with the flow, the step and the outcome's name.
func (r *Registry) ObserveStep(flowName, step string, outcome errors.Kind, d time.Duration) {
	k := stepKey{flowName, step, outcome}
	r.mu.RLock()
	o := r.cache[k]
	r.mu.RUnlock()
	if o == nil {
		o = r.steps.WithLabelValues(flowName, step, outcome.String())
		r.mu.Lock()
		r.cache[k] = o
		r.mu.Unlock()
	}
	o.Observe(d.Seconds())
}

// ObserveResponse counts one response of an HTTP source: the server's
// address, the route ("POST /orders"; "" for a path no route serves) and
// the status code. Serve hands it to HTTP sources.
func (r *Registry) ObserveResponse(server, route string, code int) {
	r.http.WithLabelValues(server, route, strconv.Itoa(code)).Inc()
}

// AddChannel reports ch's message outcomes and gauges at every scrape.
func (r *Registry) AddChannel(ch *channel.Channel) {
	r.chmu.Lock()
	r.channels = append(r.channels, ch)
	r.chmu.Unlock()
}

// ReplaceChannel replaces old by next among the channels whose series
// are exported (serve's hot reload: a channel changed while running);
// a nil old adds next, a nil next removes old. The counters of a
// replaced channel start again from zero (a counter reset).
func (r *Registry) ReplaceChannel(old, next *channel.Channel) {
	r.chmu.Lock()
	defer r.chmu.Unlock()
	if old != nil {
		r.channels = slices.DeleteFunc(r.channels, func(c *channel.Channel) bool { return c == old })
	}
	if next != nil {
		r.channels = append(r.channels, next)
	}
}

// AddText adds the metrics write writes, in the Prometheus text format,
// at every scrape: parts that expose their metrics as text (the bus)
// join the registry's. A family both name is an error of the scrape.
func (r *Registry) AddText(write func(io.Writer) error) {
	r.chmu.Lock()
	r.texts = append(r.texts, write)
	r.chmu.Unlock()
}

// gather returns every metric family: the registry's and those of the
// text writers.
func (r *Registry) gather() ([]*dto.MetricFamily, error) {
	r.chmu.Lock()
	texts := slices.Clone(r.texts)
	r.chmu.Unlock()
	gs := prometheus.Gatherers{r.reg}
	for _, write := range texts {
		gs = append(gs, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
			var b bytes.Buffer
			if err := write(&b); err != nil {
				return nil, err
			}
			p := expfmt.NewTextParser(model.UTF8Validation)
			fams, err := p.TextToMetricFamilies(&b)
			if err != nil {
				return nil, err
			}
			return slices.Collect(maps.Values(fams)), nil
		}))
	}
	return gs.Gather()
}

// Handler serves the metrics in the Prometheus text format, compressed
// when the scraper accepts gzip. A collector that fails (a store count
// that timed out) leaves its series out; the others are served.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(prometheus.GathererFunc(r.gather), promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// WritePrometheus writes every metric in the Prometheus text format 0.0.4.
func (r *Registry) WritePrometheus(w io.Writer) error {
	mfs, err := r.gather()
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if eerr := enc.Encode(mf); eerr != nil {
			return eerr
		}
	}
	return err
}

var (
	descMessages   = prometheus.NewDesc("svcflow_messages_total", "Messages handled by a channel, by outcome: done, rejected, error, left (not finished: run again later), duplicate (answered from the store), dropped (consumed silently).", []string{"channel", "outcome"}, nil)
	descHookErrors = prometheus.NewDesc("svcflow_channel_hook_errors_total", "Outcome hooks of a channel (on_ok, on_failure, on_reject, on_drop, finally) that failed.", []string{"channel"}, nil)
	descInFlight   = prometheus.NewDesc("svcflow_messages_in_flight", "Messages being processed by a channel.", []string{"channel"}, nil)
	descRecovering = prometheus.NewDesc("svcflow_messages_recovering", "Owed messages a channel found at start that have not run again yet.", []string{"channel"}, nil)
	descOwed       = prometheus.NewDesc("svcflow_messages_owed", "Messages in a channel's store not finished yet: pending or processing.", []string{"channel"}, nil)
	descWaiting    = prometheus.NewDesc("svcflow_messages_waiting", "Messages in a channel's store in state waiting (parked until a timer or a signal).", []string{"channel"}, nil)
	descDead       = prometheus.NewDesc("svcflow_messages_dead", "Dead letters: messages in a channel's store in state dead.", []string{"channel"}, nil)
	descRestarts   = prometheus.NewDesc("svcflow_channel_restarts_total", "Service restarts after Fatal errors.", []string{"channel"}, nil)
	descUp         = prometheus.NewDesc("svcflow_channel_up", "Whether a channel is running (1) or not (0).", []string{"channel"}, nil)
	descWritable   = prometheus.NewDesc("svcflow_store_writable", "Whether a channel's store can be written (1) or its last write failed and no write or probe succeeded since (0).", []string{"channel"}, nil)
)

// channelCollector reads the channels' status and stores at each scrape.
type channelCollector struct{ r *Registry }

func (c channelCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMessages, descInFlight, descRecovering, descOwed, descWaiting, descDead, descRestarts, descUp, descWritable, descHookErrors} {
		ch <- d
	}
}

func (c channelCollector) Collect(out chan<- prometheus.Metric) {
	c.r.chmu.Lock()
	chans := slices.Clone(c.r.channels)
	c.r.chmu.Unlock()
	for _, ch := range chans {
		st := ch.Status()
		for _, o := range []string{"done", "rejected", "error", "left", "duplicate", "dropped"} {
			out <- prometheus.MustNewConstMetric(descMessages, prometheus.CounterValue, float64(st.Outcomes[o]), st.Name, o)
		}
		out <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(st.InFlight), st.Name)
		out <- prometheus.MustNewConstMetric(descRecovering, prometheus.GaugeValue, float64(st.Recovering), st.Name)
		out <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(st.Restarts), st.Name)
		out <- prometheus.MustNewConstMetric(descHookErrors, prometheus.CounterValue, float64(st.HookErrors), st.Name)
		out <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, bool01(st.State == channel.StateRunning), st.Name)
		out <- prometheus.MustNewConstMetric(descWritable, prometheus.GaugeValue, bool01(st.StoreError == ""), st.Name)
		st0 := ch.Store()
		if st0 == nil {
			continue
		}
		count := func(d *prometheus.Desc, states ...store.State) {
			for _, s := range states {
				if !slices.Contains(store.States, s) {
					return // a state this build's stores do not have
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), StoreTimeout)
			defer cancel()
			n, err := st0.Count(ctx, store.Query{States: states})
			if err != nil {
				out <- prometheus.NewInvalidMetric(d, err)
				return
			}
			out <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(n), st.Name)
		}
		count(descOwed, store.Pending, store.Processing)
		count(descWaiting, store.Waiting)
		count(descDead, store.Dead)
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

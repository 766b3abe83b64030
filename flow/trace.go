package flow

import (
	"context"
	"sync"
	"time"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// Outcomes of a step in a [Trace].
const (
	OutcomeOK             = "ok"
	OutcomeStop           = "stop"
	OutcomeRetryExhausted = "retry-exhausted"
	OutcomeFatal          = "fatal"
	OutcomePanic          = "panic"
	OutcomeCanceled       = "canceled"
	OutcomeFailed         = "failed"
	OutcomeSkipped        = "skipped"
)

// Outcome returns the trace outcome of a step's error.
func Outcome(err error) string {
	switch errors.KindOf(err) {
	case errors.KindOK:
		return OutcomeOK
	case errors.KindStop:
		return OutcomeStop
	case errors.KindRetry:
		return OutcomeRetryExhausted
	case errors.KindFatal:
		return OutcomeFatal
	case errors.KindPanic:
		return OutcomePanic
	case errors.KindCanceled:
		return OutcomeCanceled
	}
	return OutcomeFailed
}

// Trace is the record of one run: what ran, for how long, how it ended and
// what it wrote. Ask for one with [WithTrace]. It encodes to JSON.
type Trace struct {
	Flow     string        `json:"flow"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	Outcome  string        `json:"outcome"`
	Err      string        `json:"error,omitempty"`
	Steps    []Span        `json:"steps"`
}

// Span is one step of a [Trace]. Steps of concurrent branches appear in
// the order they finished.
type Span struct {
	Name     string        `json:"name"`
	Path     string        `json:"path"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	Attempts int           `json:"attempts,omitempty"`
	Outcome  string        `json:"outcome"`
	Err      string        `json:"error,omitempty"`
	Wrote    []string      `json:"wrote,omitempty"`
}

// WithTrace records the run into t, which is reset first. Tracing costs a
// few allocations per step; runs without it pay nothing.
func WithTrace(t *Trace) RunOption {
	return func(r *runState) { r.trace = &tracer{t: t} }
}

// tracer records a run's trace; steps of concurrent branches record
// through the same tracer, hence the lock.
type tracer struct {
	mu sync.Mutex
	t  *Trace
}

func (tr *tracer) begin(f *Flow) {
	*tr.t = Trace{Flow: f.name, Start: time.Now(), Steps: []Span{}}
}

func (tr *tracer) end(err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.t.Duration = time.Since(tr.t.Start)
	tr.t.Outcome = Outcome(err)
	if err != nil {
		tr.t.Err = err.Error()
	}
}

func (tr *tracer) add(s Span) {
	tr.mu.Lock()
	tr.t.Steps = append(tr.t.Steps, s)
	tr.mu.Unlock()
}

// skipped records a step that did not run (a condition that did not hold).
func (tr *tracer) skipped(name, path string) {
	tr.add(Span{Name: name, Path: path, Start: time.Now(), Outcome: OutcomeSkipped})
}

// leaf runs a leaf step while recording its span.
func (tr *tracer) leaf(ctx context.Context, l *leafRunner, c *fc.Context) (int, error) {
	s := Span{Name: l.info.Name, Path: l.info.Path, Start: time.Now()}
	stop := c.Track()
	attempts, err := l.attempt(ctx, c)
	s.Wrote = stop()
	s.Duration = time.Since(s.Start)
	s.Attempts = attempts
	s.Outcome = Outcome(err)
	if err != nil {
		s.Err = err.Error()
	}
	tr.add(s)
	return attempts, err
}

package flow

import (
	"context"
	"strconv"
	"sync"
	"time"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/internal/jsonenc"
)

// Trace is the record of one run: what ran, for how long, how it ended and
// what it wrote. Ask for one with [WithTrace]. It encodes to JSON, and
// decodes from it with encoding/json.
type Trace struct {
	// Flow is the flow's name.
	Flow string `json:"flow"`
	// Start is when the run began.
	Start time.Time `json:"start"`
	// Duration is how long the run took.
	Duration time.Duration `json:"duration_ns"`
	// Outcome is how the run ended: errors.KindOf its error (ok, stop,
	// retry-exhausted, fatal, canceled, panic, failed).
	Outcome errors.Kind `json:"outcome"`
	// Err is the text of the run's error, if any.
	Err string `json:"error,omitempty"`
	// Reason is the reason of the Stop that ended the run (its
	// *errors.StopError's Reason), when the outcome is stop: what a
	// channel answers a rejected message with; or of the Drop (its
	// *errors.DropError's Reason) when the outcome is dropped.
	Reason string `json:"reason,omitempty"`
	// TraceID is the ID of the distributed (OpenTelemetry) trace the run
	// belongs to, when a channel runs with tracing; empty otherwise.
	TraceID string `json:"trace_id,omitempty"`
	// Steps are the steps that ran or were skipped.
	Steps []Span `json:"steps"`
}

// Span is one step of a [Trace]. Steps of concurrent branches appear in
// the order they finished.
type Span struct {
	// Name is the step's name.
	Name string `json:"name"`
	// Path is where the step sits in the flow.
	Path string `json:"path"`
	// Start is when the step's first attempt began.
	Start time.Time `json:"start"`
	// Duration is how long the step took, retries and waits included.
	Duration time.Duration `json:"duration_ns"`
	// Attempts is how many times the service was called (0 for a skipped
	// step).
	Attempts int `json:"attempts,omitempty"`
	// Outcome is how the step ended: errors.KindOf its error, or
	// errors.KindSkipped for a step whose condition did not hold. A step
	// whose retries ran out is retry-exhausted; one that succeeded after
	// retries is ok (Attempts tells how many it took).
	Outcome errors.Kind `json:"outcome"`
	// Err is the text of the step's error, if any.
	Err string `json:"error,omitempty"`
	// Wrote lists the keys the step wrote.
	Wrote []string `json:"wrote,omitempty"`
	// Selected is the choice a selection made: the case a [Select] ran,
	// the middleware stack [Builder.UseSelected] chose for the run,
	// "divert" for a [Divert] that ended the flow.
	Selected string `json:"selected,omitempty"`
}

// WithTrace records the run into t, which is reset first: the storage of
// its Steps is reused, so a caller that recycles a Trace must be done with
// the previous run's steps. Tracing costs a couple of allocations per run;
// runs without it pay nothing.
func WithTrace(t *Trace) RunOption {
	return func(r *runState) { r.trace = &tracer{t: t} }
}

// tracer records a run's trace; steps of concurrent branches record
// through the same tracer, hence the lock.
type tracer struct {
	mu   sync.Mutex
	t    *Trace
	keys []string // the storage of the spans' Wrote slices
}

func (tr *tracer) begin(f *Flow) {
	steps := tr.t.Steps[:0]
	if cap(steps) < len(f.leaves) {
		steps = make([]Span, 0, len(f.leaves))
	}
	clear(steps[:cap(steps)])
	*tr.t = Trace{Flow: f.name, Start: time.Now(), Steps: steps}
}

func (tr *tracer) end(err error) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.t.Duration = time.Since(tr.t.Start)
	tr.t.Outcome = errors.KindOf(err)
	if err != nil {
		tr.t.Err = err.Error()
	}
	if se, ok := errors.AsType[*errors.StopError](err); ok && tr.t.Outcome == errors.KindStop {
		tr.t.Reason = se.Reason
	}
	if de, ok := errors.AsType[*errors.DropError](err); ok && tr.t.Outcome == errors.KindDropped {
		tr.t.Reason = de.Reason
	}
}

func (tr *tracer) add(s Span) {
	tr.mu.Lock()
	tr.t.Steps = append(tr.t.Steps, s)
	tr.mu.Unlock()
}

// skipped records a step that did not run (a condition that did not hold).
func (tr *tracer) skipped(name, path string) {
	tr.add(Span{Name: name, Path: path, Start: time.Now(), Outcome: errors.KindSkipped})
}

// leaf runs a leaf step while recording its span.
func (tr *tracer) leaf(ctx context.Context, l *leafRunner, c *fc.Context) (int, error) {
	s := Span{Name: l.info.Name, Path: l.info.Path, Start: time.Now()}
	trk := c.Track()
	attempts, err := l.attempt(ctx, c)
	s.Duration = time.Since(s.Start)
	s.Attempts = attempts
	s.Outcome = errors.KindOf(err)
	if err != nil {
		s.Err = err.Error()
	}
	tr.mu.Lock()
	if tr.keys == nil {
		tr.keys = make([]string, 0, 2*cap(tr.t.Steps))
	}
	n := len(tr.keys)
	tr.keys = trk.Stop(tr.keys)
	if len(tr.keys) > n {
		s.Wrote = tr.keys[n:len(tr.keys):len(tr.keys)]
	}
	tr.t.Steps = append(tr.t.Steps, s)
	tr.mu.Unlock()
	return attempts, err
}

// MarshalJSON encodes the trace. It writes the same JSON as encoding/json
// would from the struct tags, without reflection: channels encode a trace
// with every message.
func (t *Trace) MarshalJSON() ([]byte, error) {
	return t.AppendJSON(make([]byte, 0, 128+160*len(t.Steps))), nil
}

// AppendJSON appends the JSON encoding of the trace (see
// [Trace.MarshalJSON]) to b and returns the extended slice.
func (t *Trace) AppendJSON(b []byte) []byte {
	b = append(b, `{"flow":`...)
	b = jsonenc.AppendString(b, t.Flow)
	b = append(b, `,"start":`...)
	b = appendTime(b, t.Start)
	b = append(b, `,"duration_ns":`...)
	b = strconv.AppendInt(b, int64(t.Duration), 10)
	b = append(b, `,"outcome":`...)
	b = jsonenc.AppendString(b, t.Outcome.String())
	if t.Err != "" {
		b = append(b, `,"error":`...)
		b = jsonenc.AppendString(b, t.Err)
	}
	if t.Reason != "" {
		b = append(b, `,"reason":`...)
		b = jsonenc.AppendString(b, t.Reason)
	}
	if t.TraceID != "" {
		b = append(b, `,"trace_id":`...)
		b = jsonenc.AppendString(b, t.TraceID)
	}
	b = append(b, `,"steps":`...)
	if t.Steps == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range t.Steps {
			if i > 0 {
				b = append(b, ',')
			}
			b = t.Steps[i].appendJSON(b)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func (s *Span) appendJSON(b []byte) []byte {
	b = append(b, `{"name":`...)
	b = jsonenc.AppendString(b, s.Name)
	b = append(b, `,"path":`...)
	b = jsonenc.AppendString(b, s.Path)
	b = append(b, `,"start":`...)
	b = appendTime(b, s.Start)
	b = append(b, `,"duration_ns":`...)
	b = strconv.AppendInt(b, int64(s.Duration), 10)
	if s.Attempts != 0 {
		b = append(b, `,"attempts":`...)
		b = strconv.AppendInt(b, int64(s.Attempts), 10)
	}
	b = append(b, `,"outcome":`...)
	b = jsonenc.AppendString(b, s.Outcome.String())
	if s.Err != "" {
		b = append(b, `,"error":`...)
		b = jsonenc.AppendString(b, s.Err)
	}
	if len(s.Wrote) > 0 {
		b = append(b, `,"wrote":[`...)
		for i, k := range s.Wrote {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonenc.AppendString(b, k)
		}
		b = append(b, ']')
	}
	if s.Selected != "" {
		b = append(b, `,"selected":`...)
		b = jsonenc.AppendString(b, s.Selected)
	}
	return append(b, '}')
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

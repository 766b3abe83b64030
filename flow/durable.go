package flow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
	"time"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// Journal is what a durable run consults before and after each of its
// units (see [WithJournal]). A unit is a step of the flow, an element of
// an [Each], a branch of an [All] or a whole [Until] loop; the steps inside
// an element, a branch or a loop are not units of their own.
//
// A Journal is used by one run at a time but by the concurrent elements
// and branches of that run at once: its methods must be safe for
// concurrent use.
type Journal interface {
	// Completed is called before each unit starts. It returns the record
	// of the unit at path when an earlier run completed it (the run then
	// skips the unit and applies its writes), nil when none did. The units
	// given to Complete must be durable when it returns, so that a crash
	// never loses a completed unit: a journal may write them here, in one
	// write, rather than each in Complete. An error ends the run.
	Completed(ctx context.Context, path string) (*Unit, error)
	// Complete records a unit that just completed; an error ends the run.
	// The record is durable when it returns, or by the next call of
	// Completed (see above): the run's owner makes the rest durable when
	// the run ends.
	Complete(ctx context.Context, u *Unit) error
}

// Unit is the journal record of one completed unit of a durable run.
type Unit struct {
	// Path identifies the unit in its flow: a step's path
	// ("orders/charge"), an element of an Each or a branch of an All with
	// its position ("orders/each(items)[2]", "orders/all[0]").
	Path string `json:"path"`
	// Name is the step's or combinator's name, for people.
	Name string `json:"name"`
	// Fingerprint is the structural fingerprint of the flow up to and
	// including the unit, when the unit was journaled (see
	// [Flow.Changed]).
	Fingerprint string `json:"fingerprint"`
	// Start is when the unit started; Duration how long it took.
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration_ns"`
	// Attempts is how many times a step's service was called.
	Attempts int `json:"attempts,omitempty"`
	// Writes are the keys the unit wrote, with their values: its context
	// delta. For an element of an Each it is the collected key.
	Writes map[string]any `json:"writes,omitempty"`
	// Deleted are the keys the unit deleted.
	Deleted []string `json:"deleted,omitempty"`
	// Outcome is KindOK for a unit that completed. A parked step woken by
	// its timeout may have completed with an error instead: KindStop (a
	// Stop whose reason is Err) or KindFailed (an error whose text is
	// Err); the resumed run ends with it.
	Outcome errors.Kind `json:"outcome,omitempty"`
	// Err is the reason or error text of an Outcome other than KindOK.
	Err string `json:"error,omitempty"`
}

// WithJournal makes the run durable: before each unit (see [Journal]) the
// run asks j whether an earlier run completed it, and if so skips it,
// applying its recorded writes to the context (the trace shows it
// errors.KindResumed, with its original times); after each unit that
// completes, the run records it with j before going on. A step that
// implements [Parker] may park the run instead of running (see
// [ParkError]). [Tap] steps are not journaled: they run again.
//
// A run resumed so must start from the same input as the first run (the
// message, for a channel); check the journal with [Flow.Changed] first.
func WithJournal(j Journal) RunOption {
	return func(r *runState) { r.journal = j }
}

// Parker is implemented by a step that can wait for something outside the
// run (a time, a signal) without holding a goroutine. In a durable run
// ([WithJournal]) the engine calls Park instead of Call when the step's
// unit is not completed: when Park returns true the run ends with a
// [*ParkError] carrying the Wait, and its owner wakes the run later by
// journaling the step's completion. Outside a durable run (or inside an
// element, branch or loop of a durable run), Call runs as usual.
type Parker interface {
	Park(c *fc.Context) (Wait, bool)
}

// Wait is what a parked step waits for.
type Wait struct {
	// Signal names the signal that completes the step; "" for a timer.
	Signal string `json:"signal,omitempty"`
	// For is how long to wait: a timer's duration, a signal's timeout
	// (0: no timeout).
	For time.Duration `json:"for_ns,omitempty"`
	// Into is the key that receives a signal's values ("" sets them as
	// keys of their own).
	Into string `json:"into,omitempty"`
	// Timeout is what the step ends with when For runs out: KindOK (it
	// completes: a timer), KindStop (a Stop) or KindFailed (an error),
	// with Reason as the reason or error text.
	Timeout errors.Kind `json:"timeout,omitempty"`
	Reason  string      `json:"reason,omitempty"`
}

// ParkError is the error of a durable run that parked at a step: the run
// stopped before the step, whose unit is not completed, and waits. It
// matches errors.ErrWaiting, so errors.KindOf classifies it (and the run)
// as errors.KindWaiting.
type ParkError struct {
	Flow string // the flow's name
	Step string // the step's name
	Path string // the step's unit path (see [Unit])
	Wait Wait   // what it waits for
	// Fingerprint is the fingerprint the step's unit is journaled with
	// when it is woken (see [Unit]).
	Fingerprint string
}

// Error implements error.
func (e *ParkError) Error() string {
	if e.Wait.Signal != "" {
		return fmt.Sprintf("flow %q: step %q waits for signal %q", e.Flow, e.Step, e.Wait.Signal)
	}
	return fmt.Sprintf("flow %q: step %q waits %s", e.Flow, e.Step, e.Wait.For)
}

// Is reports whether target is errors.ErrWaiting.
func (e *ParkError) Is(target error) bool { return target == errors.ErrWaiting }

// ChangedError is the error of [Flow.Changed]: the flow is not the one
// that journaled a unit of the run.
type ChangedError struct {
	Flow string // the flow's name
	Unit string // the unit's path
	Name string // the unit's name
	// Removed is true when the flow has no unit at that path any more;
	// otherwise the unit, or something that runs before it, changed.
	Removed bool
}

// Error implements error.
func (e *ChangedError) Error() string {
	if e.Removed {
		return fmt.Sprintf("flow %q changed since the run journaled step %q (%s): it is no longer in the flow", e.Flow, e.Name, e.Unit)
	}
	return fmt.Sprintf("flow %q changed since the run journaled step %q (%s): that step, or one before it, is not the same", e.Flow, e.Name, e.Unit)
}

// Fingerprint returns the structural fingerprint of the flow: a hash of
// its steps and combinators (kinds, names, paths, conditions, keys read
// and written) in order. Two builds of the same declaration have the same
// fingerprint.
func (f *Flow) Fingerprint() string {
	if f == nil || f.fps == nil {
		return ""
	}
	return f.fps[""]
}

// Changed reports whether units journaled by an earlier run can be
// resumed in f: nil when each unit's fingerprint (the structure of the
// flow up to and including the unit) is the same in f, else a
// [*ChangedError] naming the first unit that is not. A change after the
// journaled units does not prevent resuming.
func (f *Flow) Changed(units []*Unit) error {
	if err := f.errNotBuilt(); err != nil {
		return err
	}
	for _, u := range units {
		fp, ok := f.fps[nodePath(u.Path)]
		if !ok || fp != u.Fingerprint {
			return &ChangedError{Flow: f.name, Unit: u.Path, Name: u.Name, Removed: !ok}
		}
	}
	return nil
}

// nodePath is the path of the graph node of a unit: the path without an
// element's or branch's position.
func nodePath(unit string) string {
	if strings.HasSuffix(unit, "]") {
		if i := strings.LastIndexByte(unit, '['); i > 0 {
			return unit[:i]
		}
	}
	return unit
}

// unitPath is the path of element or branch i of the unit at path.
func unitPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// fingerprints computes the structural fingerprint of every node of g, by
// path: a hash of every node met before it in execution order, its own
// insides included (the flow itself under "").
func fingerprints(g *Node) map[string]string {
	out := map[string]string{}
	h := sha256.New()
	var walk func(n *Node)
	walk = func(n *Node) {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", n.Kind, n.Name, n.Path, n.Label)
		for _, k := range n.Needs {
			fmt.Fprintf(h, "n:%s:%v\x00", k.Name, k.Type)
		}
		for _, k := range n.Provides {
			fmt.Fprintf(h, "p:%s:%v\x00", k.Name, k.Type)
		}
		for _, c := range n.Children {
			walk(c)
		}
		h.Write([]byte{1}) // the end of n's children
		out[n.Path] = sum(h)
	}
	for _, c := range g.Children {
		walk(c)
	}
	out[""] = sum(h)
	return out
}

func sum(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)[:12]) }

// inUnitKey marks the context of the steps inside an element, a branch or
// a loop of a durable run: they are part of that unit, not units of their
// own.
type inUnitKey struct{}

// unitCtx returns the context of the steps inside a unit.
func unitCtx(ctx context.Context) context.Context { return context.WithValue(ctx, inUnitKey{}, true) }

// journaled reports whether units at this point of the run are journaled.
func (r *runState) journaled(ctx context.Context) bool {
	return r.journal != nil && ctx.Value(inUnitKey{}) == nil
}

// unit returns a new record of the unit at path.
func (r *runState) unit(path, node, name string, start time.Time) *Unit {
	return &Unit{Path: path, Name: name, Fingerprint: r.fps[node], Start: start, Duration: time.Since(start)}
}

// complete records u with its writes: the keys tracked on c.
func (r *runState) complete(ctx context.Context, u *Unit, c *fc.Context, keys []string) error {
	for _, k := range keys {
		if v, ok := c.Get(k); ok {
			if u.Writes == nil {
				u.Writes = make(map[string]any, len(keys))
			}
			u.Writes[k] = v
		} else if !slices.Contains(u.Deleted, k) {
			u.Deleted = append(u.Deleted, k)
		}
	}
	if err := r.journal.Complete(ctx, u); err != nil {
		return fmt.Errorf("journal %s: %w", u.Path, err)
	}
	return nil
}

// resume applies a completed unit's writes to c and traces it as resumed.
// It returns the unit's error when it completed with one.
func (r *runState) resume(u *Unit, c *fc.Context) error {
	keys := make([]string, 0, len(u.Writes)+len(u.Deleted))
	for _, k := range slices.Sorted(mapKeys(u.Writes)) {
		c.Set(k, u.Writes[k])
		keys = append(keys, k)
	}
	for _, k := range u.Deleted {
		c.Delete(k)
		keys = append(keys, k)
	}
	if r.trace != nil {
		r.trace.add(Span{Name: u.Name, Path: u.Path, Start: u.Start, Duration: u.Duration, Attempts: u.Attempts,
			Outcome: errors.KindResumed, Wrote: keys})
	}
	switch u.Outcome {
	case errors.KindOK:
		return nil
	case errors.KindStop:
		return errors.Stop(u.Err)
	default:
		return errors.New(u.Err)
	}
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// durableLeaf runs a leaf step as a unit of a durable run.
func (l *leafRunner) durableLeaf(ctx context.Context, r *runState, c *fc.Context) error {
	path := l.info.Path
	if u, err := r.journal.Completed(ctx, path); err != nil || u != nil {
		if err == nil {
			err = r.resume(u, c)
		}
		if err != nil {
			return l.fail(err, u.Attempts)
		}
		return r.leave(l)
	}
	if p, ok := l.info.Service.(Parker); ok {
		if w, park := p.Park(c); park {
			if r.trace != nil {
				r.trace.add(Span{Name: l.info.Name, Path: path, Start: time.Now(), Outcome: errors.KindWaiting})
			}
			return &StepError{Flow: l.info.Flow, Step: l.info.Name, Path: path,
				Err: &ParkError{Flow: l.info.Flow, Step: l.info.Name, Path: path, Wait: w, Fingerprint: r.fps[path]}}
		}
	}
	start := time.Now()
	trk := c.Track()
	var attempts int
	var err error
	if r.trace != nil {
		attempts, err = r.trace.leaf(ctx, l, c)
	} else {
		attempts, err = l.attempt(ctx, c)
	}
	keys := trk.Stop(nil)
	if err != nil {
		return l.fail(err, attempts)
	}
	u := r.unit(path, path, l.info.Name, start)
	u.Attempts = attempts
	if err := r.complete(ctx, u, c, keys); err != nil {
		return l.fail(err, attempts)
	}
	return r.leave(l)
}

// Park implements [Parker] for a renamed service that parks.
func (n *named) Park(c *fc.Context) (Wait, bool) {
	if p, ok := n.Service.(Parker); ok {
		return p.Park(c)
	}
	return Wait{}, false
}

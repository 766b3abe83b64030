package flow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"reflect"
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
// an element, a branch or a loop are not units of their own, unless a
// step among them (at any depth) may park ([Parker]): then they are, with
// paths qualified by the element, branch or round
// ("orders/each(items)[2]/charge", "poll/until(done)[3]/fetch"), so that
// a run parked inside one resumes into it at the parked step. A saga
// journals its compensation as units too (see [Unit.Undo]).
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
	// its position ("orders/each(items)[2]", "orders/all[0]"), a step
	// inside an element, branch or round with theirs
	// ("orders/each(items)[2]/charge").
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
	// Undo lists the undos that steps inside the unit (an element, a
	// branch, a loop) left to an enclosing [Saga], so that a run resuming
	// the unit without running its steps still compensates them. The
	// plan of a saga's compensation (a unit at the saga's path with
	// "[compensating]" added, whose Outcome and Err are the saga's cause)
	// lists every undo it runs, in completion order; each undo that ends
	// is journaled at the saga's path with "[undo N]" added, N its
	// position in the plan.
	Undo []Undo `json:"undo,omitempty"`
	// NoEffects is true for a step that is [Pure]: a journal may write
	// it later than Complete's contract says, with the next unit that
	// has effects (or not at all when the run ends done), since running
	// it again after a crash does no harm. It is not journaled.
	NoEffects bool `json:"-"`
}

// Undo is an undo of a [Saga] journaled by a durable run: the step it
// belongs to and the context it is given.
type Undo struct {
	// Key identifies the undo in its flow (the step's path, made unique).
	Key string `json:"key"`
	// Name and Path are the step's, for people and traces.
	Name string `json:"name"`
	Path string `json:"path"`
	// Own is true when the undo is given the context the unit (or the
	// saga, for a plan) ran on itself. Otherwise it is given a snapshot
	// of that context, as it is when the unit is resumed, with Writes set
	// and Deleted deleted (an element's or a branch's context).
	Own     bool           `json:"own,omitempty"`
	Writes  map[string]any `json:"writes,omitempty"`
	Deleted []string       `json:"deleted,omitempty"`
}

// WithJournal makes the run durable: before each unit (see [Journal]) the
// run asks j whether an earlier run completed it, and if so skips it,
// applying its recorded writes to the context (the trace shows it
// errors.KindResumed, with its original times); after each unit that
// completes, the run records it with j before going on. A step that
// implements [Parker] may park the run instead of running (see
// [ParkError]), also inside an element, a branch or a round: the run
// parks as a whole (elements and branches running beside it finish,
// fail or park in turn, and none starts after it; a failure wins over a
// park), and resumes into the unit at the parked step. [Tap] steps are
// not journaled: they run again. A [Saga] journals its compensation: a
// run whose saga began compensating never runs it forward again, and
// finishes the undos not journaled yet (see [Saga]).
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
// journaling the step's completion (at the ParkError's Path). Outside a
// durable run Call runs as usual. A Parker inside an element, branch or
// loop makes the steps there units of their own (see [Journal]); a
// service that parks only sometimes (a sleep over a threshold) should be
// a Parker only when it may park.
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
		fp, ok := f.nodeOf(u.Path)
		if !ok || fp != u.Fingerprint {
			return &ChangedError{Flow: f.name, Unit: u.Path, Name: u.Name, Removed: !ok}
		}
	}
	return nil
}

// nodeOf returns the fingerprint of the graph node of a unit.
func (f *Flow) nodeOf(unit string) (string, bool) {
	if fp, ok := f.fps[unit]; ok {
		return fp, true
	}
	fp, ok := f.fps[nodePath(unit)]
	return fp, ok
}

// nodePath is the path of the graph node of a unit: the path without the
// positions of elements, branches and rounds ("[2]") and the marks of a
// saga's compensation ("[undo 2]"), each at the end of a path segment.
func nodePath(unit string) string {
	if !strings.Contains(unit, "[") {
		return unit
	}
	var b strings.Builder
	for i := 0; i < len(unit); i++ {
		if unit[i] == '[' {
			if j := strings.IndexAny(unit[i+1:], "[]/"); j >= 0 && unit[i+1+j] == ']' {
				end := i + 1 + j
				if end+1 == len(unit) || unit[end+1] == '/' {
					i = end
					continue
				}
			}
		}
		b.WriteByte(unit[i])
	}
	return b.String()
}

// unitScope is what the steps inside an element of an [Each], a branch
// of an [All] or a round of an [Until] of a durable run carry: where the
// unit sits, and whether the steps inside are journaled as units of their
// own (they are when a step inside may park: the run must resume into
// the unit at that step).
type unitScope struct {
	node, qual string // the combinator's node path, and the unit's path
	journaled  bool
}

// inUnitKey is the context key of the innermost unitScope.
type inUnitKey struct{}

// unitCtx returns the context of the steps inside unit i of the
// combinator at node; journaled says they are units of their own.
func unitCtx(ctx context.Context, node string, i int, journaled bool) context.Context {
	return context.WithValue(ctx, inUnitKey{}, &unitScope{node: node, qual: unitPath(qualify(ctx, node), i), journaled: journaled})
}

// qualify returns the unit path of the node at path in the units
// enclosing it: "f/each(items)/charge" in element 2 is
// "f/each(items)[2]/charge".
func qualify(ctx context.Context, path string) string {
	sc, _ := ctx.Value(inUnitKey{}).(*unitScope)
	if sc == nil || !strings.HasPrefix(path, sc.node) {
		return path
	}
	return sc.qual + path[len(sc.node):]
}

// journaled reports whether units at this point of the run are journaled.
func (r *runState) journaled(ctx context.Context) bool {
	if r.journal == nil {
		return false
	}
	sc, _ := ctx.Value(inUnitKey{}).(*unitScope)
	return sc == nil || sc.journaled
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
	path := qualify(ctx, l.info.Path)
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
				Err: &ParkError{Flow: l.info.Flow, Step: l.info.Name, Path: path, Wait: w, Fingerprint: r.fps[l.info.Path]}}
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
	u := r.unit(path, l.info.Path, l.info.Name, start)
	u.Attempts, u.NoEffects = attempts, l.pure
	if err := r.complete(ctx, u, c, keys); err != nil {
		return l.fail(err, attempts)
	}
	return r.leave(l)
}

// isPure reports whether svc is [Pure], seen through Named.
func isPure(svc Service) bool {
	for {
		switch s := svc.(type) {
		case *named:
			svc = s.Service
		case Pure:
			return s.Pure()
		default:
			return false
		}
	}
}

// mayPark reports whether svc may park a durable run: it implements
// [Parker], seen through Named.
func mayPark(svc Service) bool {
	for {
		switch s := svc.(type) {
		case *named:
			svc = s.Service
		case Parker:
			return true
		default:
			return false
		}
	}
}

// Park implements [Parker] for a renamed service that parks.
func (n *named) Park(c *fc.Context) (Wait, bool) {
	if p, ok := n.Service.(Parker); ok {
		return p.Park(c)
	}
	return Wait{}, false
}

// undoRecords returns the journal records of the undos done, each with
// its context as a difference from base (the context the unit or saga ran
// on; view is its View, or nil: base.View() is called if needed, which
// only the goroutine that owns base may do). An undo of another flow (a nested flow's saga
// handed it up) cannot be journaled: it is left out.
func undoRecords(done []undoEntry, base *fc.Context, view map[string]any, undos map[string]CompensateFunc) []Undo {
	if len(done) == 0 {
		return nil
	}
	out := make([]Undo, 0, len(done))
	for _, e := range done {
		if _, ok := undos[e.key]; !ok {
			continue
		}
		u := Undo{Key: e.key, Name: e.name, Path: e.path}
		if e.c == base {
			u.Own = true
		} else {
			if view == nil {
				view = base.View()
			}
			u.Writes, u.Deleted = diff(e.c.View(), view)
		}
		out = append(out, u)
	}
	return out
}

// undoEntries returns the undos of records, their contexts made from
// base (see [Undo]).
func undoEntries(records []Undo, base *fc.Context, undos map[string]CompensateFunc) ([]undoEntry, error) {
	out := make([]undoEntry, 0, len(records))
	for _, u := range records {
		fn, ok := undos[u.Key]
		if !ok {
			return out, fmt.Errorf("journaled undo %q of step %q: no such undo in the flow", u.Key, u.Name)
		}
		e := undoEntry{name: u.Name, path: u.Path, key: u.Key, undo: fn, c: base}
		if !u.Own {
			e.c = base.Snapshot()
			for _, k := range slices.Sorted(mapKeys(u.Writes)) {
				e.c.Set(k, u.Writes[k])
			}
			for _, k := range u.Deleted {
				e.c.Delete(k)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// diff returns what makes base into m: the keys whose values differ (or
// that base lacks) and the keys m lacks.
func diff(m, base map[string]any) (map[string]any, []string) {
	var writes map[string]any
	var deleted []string
	for k, v := range m {
		if bv, ok := base[k]; !ok || !same(v, bv) {
			if writes == nil {
				writes = map[string]any{}
			}
			writes[k] = v
		}
	}
	for k := range base {
		if _, ok := m[k]; !ok {
			deleted = append(deleted, k)
		}
	}
	slices.Sort(deleted)
	return writes, deleted
}

// same reports whether a and b are the same value: equal, or the same map
// or slice. Values it cannot tell apart cheaply count as different.
func same(a, b any) bool {
	ra, rb := reflect.ValueOf(a), reflect.ValueOf(b)
	if !ra.IsValid() || !rb.IsValid() {
		return ra.IsValid() == rb.IsValid()
	}
	if ra.Type() != rb.Type() {
		return false
	}
	switch ra.Kind() {
	case reflect.Map, reflect.Slice:
		return ra.UnsafePointer() == rb.UnsafePointer() && ra.Len() == rb.Len()
	}
	return ra.Comparable() && ra.Equal(rb)
}

// unitLog returns ctx with a log of the undos that the steps of a unit
// leave to the enclosing saga (nil when no saga encloses it).
func unitLog(ctx context.Context) (context.Context, *sagaLog) {
	fr := frameOf(ctx)
	if fr == nil || fr.log == nil {
		return ctx, nil
	}
	l := &sagaLog{failedToo: fr.log.failedToo, parent: fr.log}
	return context.WithValue(ctx, sagaKey{}, &sagaFrame{log: l, scope: fr.scope}), l
}

// reenlist gives the undos a resumed unit journaled to the enclosing saga,
// their contexts made from base, as the unit's steps did when they ran.
func (r *runState) reenlist(ctx context.Context, u *Unit, base *fc.Context) error {
	if len(u.Undo) == 0 {
		return nil
	}
	fr := frameOf(ctx)
	if fr == nil || fr.log == nil {
		return nil
	}
	done, err := undoEntries(u.Undo, base, r.undos)
	fr.log.add(done...)
	if fr.scope != nil {
		fr.scope.Store(true)
	}
	return err
}

// entries returns what the log recorded so far.
func (l *sagaLog) entries() []undoEntry {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.done)
}

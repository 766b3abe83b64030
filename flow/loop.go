package flow

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/svcflow/svcflow/branch"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// ---- Each ----

// Iter is the combinator returned by [Each]. Its zero value is not usable:
// its Call returns an error wrapping [ErrNotBuilt], and a flow holding it
// does not build.
type Iter struct {
	combinator
	key         string
	steps       []Service
	item, index string
	from, into  string
	workers     int
}

// Each runs steps once per element of the slice under key, each time on a
// snapshot of the context holding the element under "item" and its position
// under "index" (rename them with [Iter.As] and [Iter.Index]). Writes of an
// iteration are discarded, except the key named by [Iter.Collect], gathered
// into a slice in element order. A missing or nil key iterates zero times.
// The first failing iteration ends the loop with its error, except a drop
// (errors.Drop): an element whose steps drop is left out (it contributes
// nothing to the collected slice, which is then shorter) and the other
// elements go on. On a durable run a dropped element is not journaled: it
// runs again, and drops again, when the run resumes.
func Each(key string, steps ...Service) *Iter {
	it := &Iter{key: key, steps: steps, item: "item", index: "index", workers: 1}
	it.self = it
	return it
}

// As names the key holding the current element (default "item").
func (it *Iter) As(item string) *Iter { it.item = item; return it }

// Index names the key holding the current position (default "index").
func (it *Iter) Index(key string) *Iter { it.index = key; return it }

// Collect gathers the value each iteration leaves under from into a slice
// stored under into, in element order. An iteration that leaves no value
// contributes the zero value.
func (it *Iter) Collect(from, into string) *Iter { it.from, it.into = from, into; return it }

// Concurrency runs up to n iterations at once (default 1: in order, one at
// a time). Collected outputs keep element order whatever n is.
func (it *Iter) Concurrency(n int) *Iter { it.workers = n; return it }

// Name implements Service.
func (it *Iter) Name() string { return "each(" + it.key + ")" }

// Call implements Service: it runs the loop on its own, outside a flow,
// built on first use without a declared input (its keys are not checked;
// a build error is the error of the call). On an Iter that [Each] did not
// make it returns an error wrapping [ErrNotBuilt].
func (it *Iter) Call(ctx context.Context, c *fc.Context) error {
	if it == nil || it.self == nil {
		return notBuilt("Iter", "Each")
	}
	return it.combinator.Call(ctx, c)
}

func (it *Iter) build(b *builder, path string, in keys) (runner, keys, *Node) {
	name := it.Name()
	p := b.unique(path + "/" + name)
	r := &eachRunner{flow: b.flow, name: name, path: p, key: it.key, item: it.item, index: it.index,
		from: it.from, into: it.into, workers: max(it.workers, 1)}
	body := in.clone()
	if in != nil {
		o, ok := in[it.key]
		if !ok {
			b.errorf(name, it.key, nil, "iterated but not provided: declare it in the flow's Input or have an earlier step provide it on every path")
		}
		var elem reflect.Type
		if ok && o.typ != nil {
			if o.typ.Kind() != reflect.Slice && o.typ.Kind() != reflect.Array {
				b.errorf(name, it.key, nil, "iterated but its type is %s, not a slice", o.typ)
			} else {
				elem = o.typ.Elem()
			}
		}
		body[it.item] = origin{typ: elem, by: name}
		body[it.index] = origin{typ: reflect.TypeFor[int](), by: name}
	}
	if it.item == "" || it.index == "" || it.item == it.index {
		b.errorf(name, "", nil, "item and index keys must be distinct and non-empty")
	}
	if len(it.steps) == 0 {
		b.errorf(name, "", nil, "no steps")
	}
	if (it.from == "") != (it.into == "") {
		b.errorf(name, "", nil, "collect needs both a source and a target key")
	}
	parkers := b.parkers
	b.isolated++
	rs, bodyOut, nodes := b.sequence(it.steps, p, body, name)
	b.isolated--
	r.body = seqRunner(rs)
	r.parks = b.parkers > parkers
	out := in
	if it.into != "" && in != nil {
		o, ok := bodyOut[it.from]
		if !ok {
			b.errorf(name, it.from, nil, "collected but no step of the loop provides it on every path")
		}
		out = in.clone()
		var st reflect.Type
		if o.typ != nil {
			st = reflect.SliceOf(o.typ)
			r.elem = o.typ
		}
		out[it.into] = origin{typ: st, by: name}
	}
	return r, out, &Node{Kind: KindEach, Name: name, Path: p, Label: it.key, Children: nodes}
}

type eachRunner struct {
	flow, name, key string
	path            string // the node's path: its elements' units are path[i]
	item, index     string
	from, into      string
	elem            reflect.Type // collected element type; nil: any
	workers         int
	body            seqRunner
	parks           bool // a step of the body may park: its steps are journaled in a durable run
}

func (e *eachRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	raw, _ := c.Get(e.key)
	var elems reflect.Value
	n := 0
	if raw != nil {
		elems = reflect.ValueOf(raw)
		if k := elems.Kind(); k != reflect.Slice && k != reflect.Array {
			return &StepError{Flow: e.flow, Step: e.name, Err: fmt.Errorf("key %q: want a slice, got %T", e.key, raw)}
		}
		n = elems.Len()
	}
	st := reflect.TypeFor[[]any]()
	if e.elem != nil {
		st = reflect.SliceOf(e.elem)
	}
	results := reflect.MakeSlice(st, n, n)
	concurrent := e.workers > 1 && n > 1
	var snaps []*fc.Context
	if concurrent { // snapshots are taken before any goroutine starts
		snaps = make([]*fc.Context, n)
		for i := range snaps {
			snaps[i] = c.Snapshot()
		}
	}
	durable := r.journaled(ctx)
	var view map[string]any // c's, for the undos an element leaves to a saga
	if durable && frameOf(ctx) != nil {
		view = c.View()
	}
	qual := qualify(ctx, e.path)
	var dropped []bool // by element; nil until one drops
	var dropMu sync.Mutex
	drop := func(i int) {
		dropMu.Lock()
		if dropped == nil {
			dropped = make([]bool, n)
		}
		dropped[i] = true
		dropMu.Unlock()
	}
	one := func(ctx context.Context, i int) error {
		var start time.Time
		var ulog *sagaLog
		if durable {
			up := unitPath(qual, i)
			if u, err := r.journal.Completed(ctx, up); err != nil || u != nil {
				base := c // the base of its undos' contexts
				if concurrent {
					base, snaps[i] = snaps[i], nil // c is not used off the run's goroutine
				}
				if err != nil {
					return &StepError{Flow: e.flow, Step: e.name, Path: up, Err: err}
				}
				if err := r.reenlist(ctx, u, base); err != nil {
					return &StepError{Flow: e.flow, Step: e.name, Path: up, Err: err}
				}
				return e.resume(r, u, results, i)
			}
			start = time.Now()
			ctx, ulog = unitLog(unitCtx(ctx, e.path, i, e.parks))
		}
		var snap *fc.Context
		if concurrent {
			snap, snaps[i] = snaps[i], nil
		} else {
			snap = c.Snapshot()
		}
		snap.Set(e.item, elems.Index(i).Interface())
		snap.Set(e.index, i)
		if err := e.body.run(ctx, r, snap); err != nil {
			if errors.KindOf(err) == errors.KindDropped {
				drop(i) // this element is left out; the others go on
				return nil
			}
			return err
		}
		var collected any
		if e.into != "" {
			if v, ok := snap.Get(e.from); ok && v != nil {
				cv, err := fc.ConvertValue(v, st.Elem())
				if err != nil {
					return &StepError{Flow: e.flow, Step: e.name, Err: fmt.Errorf("collect key %q of element %d: %w", e.from, i, err)}
				}
				results.Index(i).Set(cv)
				collected = v
			}
		}
		if durable {
			u := r.unit(unitPath(qual, i), e.path, e.name+"["+strconv.Itoa(i)+"]", start)
			if collected != nil {
				u.Writes = map[string]any{e.from: collected}
			}
			u.Undo = undoRecords(ulog.entries(), c, view, r.undos)
			if err := r.journal.Complete(ctx, u); err != nil {
				return &StepError{Flow: e.flow, Step: e.name, Err: fmt.Errorf("journal %s: %w", u.Path, err)}
			}
		}
		return nil
	}
	var err error
	if !concurrent {
		for i := range n {
			if err = one(ctx, i); err != nil {
				break
			}
		}
	} else {
		err = parallelFor(ctx, n, e.workers, one)
	}
	if err != nil {
		return err
	}
	if e.into != "" {
		if dropped != nil {
			kept := reflect.MakeSlice(st, 0, n)
			for i := range n {
				if !dropped[i] {
					kept = reflect.Append(kept, results.Index(i))
				}
			}
			results = kept
		}
		c.Set(e.into, results.Interface())
	}
	return nil
}

// resume takes element i's collected value from its journaled unit.
func (e *eachRunner) resume(r *runState, u *Unit, results reflect.Value, i int) error {
	if r.trace != nil {
		var wrote []string
		if len(u.Writes) > 0 {
			wrote = []string{e.from}
		}
		r.trace.add(Span{Name: u.Name, Path: u.Path, Start: u.Start, Duration: u.Duration, Outcome: errors.KindResumed, Wrote: wrote})
	}
	if v, ok := u.Writes[e.from]; ok && e.into != "" && v != nil {
		cv, err := fc.ConvertValue(v, results.Type().Elem())
		if err != nil {
			return &StepError{Flow: e.flow, Step: e.name, Err: fmt.Errorf("collect key %q of resumed element %d: %w", e.from, i, err)}
		}
		results.Index(i).Set(cv)
	}
	return nil
}

// parallelFor calls fn for 0..n-1 with up to workers at once; the first
// error cancels the others and is returned. A call that parks a durable
// run (errors.KindWaiting) cancels nothing: no further call starts, the
// running ones end, and the park is returned unless one of them failed.
func parallelFor(parent context.Context, n, workers int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		park  = parkOnce{done: make(chan struct{})}
		next  = make(chan int)
	)
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := guard(func() error { return fn(ctx, i) }); err != nil && !park.record(err) {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		case <-park.done:
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	if park.err != nil {
		return park.err
	}
	return parent.Err() // iterations left unstarted because the parent ended
}

// parkOnce keeps the first park (errors.KindWaiting) of concurrent
// elements or branches of a durable run; done closes with it.
type parkOnce struct {
	once sync.Once
	err  error
	done chan struct{}
}

// record reports whether err parks, keeping the first such err.
func (p *parkOnce) record(err error) bool {
	if errors.KindOf(err) != errors.KindWaiting {
		return false
	}
	p.once.Do(func() {
		p.err = err
		if p.done != nil {
			close(p.done)
		}
	})
	return true
}

func guard(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = errors.Recovered(v)
		}
	}()
	return fn()
}

// ---- Until ----

// Loop is the combinator returned by [Until]. Its zero value is not usable:
// its Call returns an error wrapping [ErrNotBuilt], and a flow holding it
// does not build.
type Loop struct {
	combinator
	cond  string
	steps []Service
	max   int
}

// DefaultMaxLoops bounds an [Until] loop that sets no bound of its own.
const DefaultMaxLoops = 1000

// Until runs steps, then evaluates the expr condition, and repeats until
// it holds (the steps run at least once). A loop still running after
// [Loop.MaxLoops] rounds (default [DefaultMaxLoops]) ends with an error.
func Until(cond string, steps ...Service) *Loop {
	l := &Loop{cond: cond, steps: steps, max: DefaultMaxLoops}
	l.self = l
	return l
}

// MaxLoops bounds the number of rounds.
func (l *Loop) MaxLoops(n int) *Loop { l.max = n; return l }

// Name implements Service.
func (l *Loop) Name() string { return "until(" + l.cond + ")" }

// Call implements Service: it runs the loop on its own, outside a flow,
// built on first use without a declared input (its keys are not checked;
// a build error is the error of the call). On a Loop that [Until] did not
// make it returns an error wrapping [ErrNotBuilt].
func (l *Loop) Call(ctx context.Context, c *fc.Context) error {
	if l == nil || l.self == nil {
		return notBuilt("Loop", "Until")
	}
	return l.combinator.Call(ctx, c)
}

func (l *Loop) build(b *builder, path string, in keys) (runner, keys, *Node) {
	name := l.Name()
	p := b.unique(path + "/" + name)
	if len(l.steps) == 0 {
		b.errorf(name, "", nil, "no steps")
	}
	if l.max <= 0 {
		b.errorf(name, "", nil, "max loops must be positive, got %d", l.max)
	}
	parkers := b.parkers
	b.isolated++
	rs, out, nodes := b.sequence(l.steps, p, in.clone(), name)
	b.isolated--
	_, e := b.expr(name, l.cond, out, true)
	return &untilRunner{flow: b.flow, name: name, path: p, expr: e, max: l.max, body: seqRunner(rs), parks: b.parkers > parkers}, out,
		&Node{Kind: KindUntil, Name: name, Path: p, Label: l.cond, Children: nodes}
}

type untilRunner struct {
	flow, name string
	path       string // the node's path: the loop's unit in a durable run
	expr       *branch.Expr
	max        int
	body       seqRunner
	parks      bool // a step of the body may park: its steps are journaled in a durable run, round by round
}

func (u *untilRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	if !r.journaled(ctx) {
		return u.loop(ctx, r, c, false)
	}
	// A durable run journals the whole loop as one unit.
	path := qualify(ctx, u.path)
	if done, err := r.journal.Completed(ctx, path); err != nil || done != nil {
		if err == nil {
			if err = r.resume(done, c); err == nil {
				err = r.reenlist(ctx, done, c)
			}
		}
		if err != nil {
			return &StepError{Flow: u.flow, Step: u.name, Path: path, Err: err}
		}
		return nil
	}
	start := time.Now()
	trk := c.Track()
	lctx, ulog := unitLog(ctx)
	err := u.loop(lctx, r, c, true)
	keys := trk.Stop(nil)
	if err != nil {
		return err
	}
	unit := r.unit(path, u.path, u.name, start)
	unit.Undo = undoRecords(ulog.entries(), c, nil, r.undos)
	if err := r.complete(ctx, unit, c, keys); err != nil {
		return &StepError{Flow: u.flow, Step: u.name, Path: path, Err: err}
	}
	return nil
}

// loop runs the rounds; in a durable run each round is a unit scope.
func (u *untilRunner) loop(ctx context.Context, r *runState, c *fc.Context, durable bool) error {
	for round := range u.max {
		rctx := ctx
		if durable {
			rctx = unitCtx(ctx, u.path, round, u.parks)
		}
		if err := u.body.run(rctx, r, c); err != nil {
			return err
		}
		if u.expr == nil {
			return &StepError{Flow: u.flow, Step: u.name, Err: errors.New("condition not compiled")}
		}
		env := c.View()
		done, err := u.expr.EvalBool(env)
		if err != nil {
			return &StepError{Flow: u.flow, Step: u.name, Err: u.expr.DataError("condition", env, err)}
		}
		if done {
			return nil
		}
	}
	return &StepError{Flow: u.flow, Step: u.name, Err: fmt.Errorf("condition still false after %d loops", u.max)}
}

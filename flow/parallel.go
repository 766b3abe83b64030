package flow

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// ---- All ----

// Group is the combinator returned by [All]. Its zero value is not usable:
// its Call returns an error wrapping [ErrNotBuilt], and a flow holding it
// does not build.
type Group struct {
	combinator
	steps []Service
	limit int
}

// All runs the steps concurrently, each on a copy-on-write snapshot of the
// context, and merges their writes back in declaration order when all are
// done: if two steps write the same key, the one declared last wins, so a
// run never depends on scheduling. Keys written by any step are known to
// later steps.
//
// Like errgroup, the first step to fail cancels the context of the others
// and its error is returned; the writes of the steps that succeeded are
// merged, those of failed or canceled steps are discarded.
//
// Cost: one goroutine and one snapshot per step per run, and a copy of the
// context map for each step that writes.
func All(steps ...Service) *Group {
	g := &Group{steps: steps}
	g.self = g
	return g
}

// Limit bounds how many steps run at once (n <= 0: no bound).
func (g *Group) Limit(n int) *Group {
	g.limit = n
	return g
}

// Name implements Service.
func (g *Group) Name() string { return "all" }

// Call implements Service: it runs the group on its own, outside a flow,
// built on first use without a declared input (its keys are not checked;
// a build error is the error of the call). On a Group that [All] did not
// make it returns an error wrapping [ErrNotBuilt].
func (g *Group) Call(ctx context.Context, c *fc.Context) error {
	if g == nil || g.self == nil {
		return notBuilt("Group", "All")
	}
	return g.combinator.Call(ctx, c)
}

func (g *Group) build(b *builder, path string, in keys) (runner, keys, *Node) {
	p := b.unique(path + "/all")
	if len(g.steps) == 0 {
		b.errorf("", "", nil, "all: no steps (at %s)", path)
	}
	n := &Node{Kind: KindAll, Name: "all", Path: p}
	r := &allRunner{limit: g.limit, path: p}
	out := in.clone()
	parkers := b.parkers
	defer func() { r.parks = b.parkers > parkers }()
	for i, s := range g.steps {
		if isNil(s) {
			b.errorf("", "", nil, "all: step %d is nil (at %s)", i+1, path)
			continue
		}
		br, bout, bn := b.compile(s, p, in.clone())
		r.branches = append(r.branches, br)
		n.Children = append(n.Children, bn)
		for k, o := range bout {
			if _, had := in[k]; !had || o.by != in[k].by {
				out[k] = o // declaration order: a later branch's key wins
			}
		}
	}
	return r, out, n
}

type allRunner struct {
	branches []runner
	limit    int
	path     string // the node's path: its branches' units are path[i]
	parks    bool   // a step of a branch may park: its steps are journaled in a durable run
}

func (a *allRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	n := len(a.branches)
	if n == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	snaps := make([]*fc.Context, n)
	for i := range snaps {
		snaps[i] = c.Snapshot()
	}
	errs := make([]error, n)
	var (
		wg      sync.WaitGroup
		once    sync.Once
		first   error
		sem     chan struct{}
		through atomic.Bool
	)
	if a.limit > 0 && a.limit < n {
		sem = make(chan struct{}, a.limit)
	}
	durable := r.journaled(ctx)
	var (
		qual string
		view map[string]any // c's, for the undos a branch leaves to a saga
		park = parkOnce{done: make(chan struct{})}
	)
	if durable {
		qual = qualify(ctx, a.path)
		if frameOf(ctx) != nil {
			view = c.View()
		}
	}
	for i, br := range a.branches {
		if durable {
			if u, err := r.journal.Completed(ctx, unitPath(qual, i)); err != nil || u != nil {
				if err == nil {
					if err = r.resume(u, snaps[i]); err == nil {
						err = r.reenlist(ctx, u, snaps[i])
					}
				}
				if err != nil {
					errs[i] = err
					once.Do(func() { first = err; cancel() })
				}
				continue
			}
		}
		if sem != nil {
			// Under a limit, a branch that parked the run holds back those
			// not started yet: they start when the run resumes.
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				errs[i] = ctx.Err()
				continue
			case <-park.done:
				errs[i] = park.err
				continue
			}
			select {
			case <-park.done:
				<-sem
				errs[i] = park.err
				continue
			default:
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sem != nil {
				defer func() { <-sem }()
			}
			var err error
			if durable {
				err = a.unit(ctx, br, r, snaps[i], i, qual, view)
			} else {
				err = runGuarded(ctx, br, r, snaps[i])
			}
			if err == errThrough {
				// A test asked to stop after a step of this branch: keep its
				// writes, let the others finish, end the run after the merge.
				through.Store(true)
				return
			}
			if err != nil {
				errs[i] = err
				if park.record(err) {
					return // the others go on: their work is journaled
				}
				once.Do(func() {
					first = err
					cancel()
				})
			}
		}()
	}
	wg.Wait()
	for i := range snaps {
		if errs[i] != nil {
			snaps[i] = nil
		}
	}
	c.Merge(snaps...)
	if first == nil && park.err != nil {
		return park.err
	}
	if first == nil && through.Load() {
		return errThrough
	}
	if first == nil {
		for _, err := range errs { // canceled before starting: the parent ctx ended
			if err != nil {
				return err
			}
		}
	}
	return first
}

// unit runs branch i of a durable run as a unit: its writes to its
// snapshot are journaled when it succeeds, with the undos it leaves to a
// saga (their contexts as differences from view, c's).
func (a *allRunner) unit(ctx context.Context, br runner, r *runState, snap *fc.Context, i int, qual string, view map[string]any) error {
	start := time.Now()
	bctx, ulog := unitLog(unitCtx(ctx, a.path, i, a.parks))
	err := runGuarded(bctx, br, r, snap)
	if err != nil {
		return err
	}
	u := r.unit(unitPath(qual, i), a.path, "all["+strconv.Itoa(i)+"]", start)
	u.Undo = undoRecords(ulog.entries(), nil, view, r.undos)
	return r.complete(ctx, u, snap, snap.Written())
}

// runGuarded runs a runner in a goroutine of the engine's own: a panic in
// engine or middleware code becomes an error instead of killing the
// process (services' panics are already recovered by their step).
func runGuarded(ctx context.Context, br runner, r *runState, c *fc.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = errors.Recovered(v)
		}
	}()
	return br.run(ctx, r, c)
}

// ---- Tap ----

// Tap runs step beside the flow, fire-and-forget, on a snapshot of the
// context: the run does not wait for it and never sees its writes or its
// error. Its error (or panic) goes to the flow's tap error hook (see
// [Builder.OnTapError]; by default it is logged with slog). A tap outlives
// the run's context cancellation; [Flow.Wait] waits for the flow's taps, and
// [Flow.Close] waits for them before closing services.
func Tap(step Service) Service {
	t := &tap{step: step}
	t.self = t
	return t
}

type tap struct {
	combinator
	step Service
}

func (t *tap) Name() string {
	if isNil(t.step) {
		return "tap"
	}
	return "tap(" + t.step.Name() + ")"
}

func (t *tap) build(b *builder, path string, in keys) (runner, keys, *Node) {
	name := t.Name()
	p := path + "/" + name
	if isNil(t.step) {
		b.errorf("", "", nil, "tap: nil step (at %s)", path)
		return seqRunner(nil), in, &Node{Kind: KindTap, Name: name, Path: p}
	}
	b.isolated++
	br, _, bn := b.compile(t.step, p, in.clone())
	b.isolated--
	return &tapRunner{name: name, flow: b.flow, body: br, taps: b.taps}, in,
		&Node{Kind: KindTap, Name: name, Path: p, Children: []*Node{bn}}
}

// taps tracks the running taps of one flow.
type taps struct {
	wg      sync.WaitGroup
	onError func(ctx context.Context, step string, err error)
}

func (t *taps) report(ctx context.Context, step string, err error) {
	if t.onError != nil {
		t.onError(ctx, step, err)
		return
	}
	slog.Default().ErrorContext(ctx, "tap failed", "step", step, "error", err)
}

type tapRunner struct {
	name, flow string
	body       runner
	taps       *taps
}

func (t *tapRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	snap := c.Snapshot()
	ctx = noSaga(context.WithoutCancel(ctx)) // a tap is never compensated
	t.taps.wg.Add(1)
	go func() {
		defer t.taps.wg.Done()
		if err := runGuarded(ctx, t.body, &plainRun, snap); err != nil {
			t.taps.report(ctx, t.name, err)
		}
	}()
	return nil
}

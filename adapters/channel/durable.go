package channel

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// ErrNoJournal is wrapped by the error of New for a durable channel
// (Config.Durable) whose store does not keep a journal (store.Journal).
var ErrNoJournal = errors.New("store keeps no journal of durable runs")

// ErrNotDurable is wrapped by the error of Signal on a channel that is not
// durable.
var ErrNotDurable = errors.New("channel is not durable")

// TimerBatch is how many due timers a durable channel wakes at a time.
const TimerBatch = 64

// durable is the part of a channel that runs messages durably.
type durable struct {
	j    store.Journal
	poke chan struct{} // a message parked: look at the timers again
	sem  chan struct{} // runs of woken messages at once
}

func newDurable(s store.Store) (*durable, error) {
	j, ok := s.(store.Journal)
	if !ok {
		return nil, fmt.Errorf("%w: store %T", ErrNoJournal, s)
	}
	return &durable{j: j, poke: make(chan struct{}, 1), sem: make(chan struct{}, RecoverConcurrency)}, nil
}

// runJournal is the flow.Journal of one durable run of a message: the
// units an earlier run completed (loaded from the store) and those this
// run completed and has not written yet. A completed unit is written by
// the next Completed, that is before the next unit starts, so that a
// run's last unit and its outcome need no write of their own.
type runJournal struct {
	c       *Channel
	id      string
	mu      sync.Mutex
	done    map[string]*flow.Unit
	pending []store.JournalEntry
	effects bool // pending holds a unit with effects (Config.JournalEffects: only those force a write)
}

// loadJournal reads the journal of message id.
func (c *Channel) loadJournal(ctx context.Context, id string) (*runJournal, []*flow.Unit, error) {
	entries, err := c.durable.j.Journal(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	j := &runJournal{c: c, id: id, done: make(map[string]*flow.Unit, len(entries))}
	units := make([]*flow.Unit, 0, len(entries))
	for _, e := range entries {
		u := unitOf(e)
		j.done[u.Path] = u
		units = append(units, u)
	}
	return j, units, nil
}

func unitOf(e store.JournalEntry) *flow.Unit {
	u := &flow.Unit{Path: e.Path, Name: e.Name, Fingerprint: e.Fingerprint, Start: e.Start, Duration: e.Duration,
		Attempts: e.Attempts, Writes: e.Writes, Deleted: e.Deleted, Outcome: e.Outcome, Err: e.Err}
	for _, x := range e.Undo {
		u.Undo = append(u.Undo, flow.Undo{Key: x.Key, Name: x.Name, Path: x.Path, Own: x.Own, Writes: x.Writes, Deleted: x.Deleted})
	}
	return u
}

func entryOf(u *flow.Unit) store.JournalEntry {
	e := store.JournalEntry{Path: u.Path, Name: u.Name, Fingerprint: u.Fingerprint, Start: u.Start, Duration: u.Duration,
		Attempts: u.Attempts, Writes: u.Writes, Deleted: u.Deleted, Outcome: u.Outcome, Err: u.Err}
	for _, x := range u.Undo {
		e.Undo = append(e.Undo, store.JournalUndo{Key: x.Key, Name: x.Name, Path: x.Path, Own: x.Own, Writes: x.Writes, Deleted: x.Deleted})
	}
	return e
}

// Completed implements flow.Journal. With Config.JournalEffects, units
// without effects wait for the next one that has some.
func (j *runJournal) Completed(ctx context.Context, path string) (*flow.Unit, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.effects || !j.c.cfg.JournalEffects {
		if err := j.flushLocked(ctx); err != nil {
			return nil, err
		}
	}
	return j.done[path], nil
}

// Complete implements flow.Journal: a step is written by the next
// Completed, or when the run ends (flush); an element of an Each or a
// branch of an All at once, since the units beside it may be running
// already.
func (j *runJournal) Complete(ctx context.Context, u *flow.Unit) error {
	e := entryOf(u)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.pending = append(j.pending, e)
	if !u.NoEffects {
		j.effects = true
	}
	if strings.HasSuffix(u.Path, "]") {
		return j.flushLocked(ctx)
	}
	return nil
}

// flush writes the pending units.
func (j *runJournal) flush(ctx context.Context) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.flushLocked(ctx)
}

func (j *runJournal) flushLocked(ctx context.Context) error {
	if len(j.pending) == 0 {
		return nil
	}
	err := j.c.durable.j.AppendJournal(context.WithoutCancel(ctx), j.id, j.pending...)
	j.c.health.wrote(err)
	if err != nil {
		return err
	}
	j.pending, j.effects = j.pending[:0], false
	return nil
}

// take returns the pending units and forgets them (they go with a park).
func (j *runJournal) take() []store.JournalEntry {
	j.mu.Lock()
	defer j.mu.Unlock()
	p := j.pending
	j.pending, j.effects = nil, false
	return p
}

// reload writes the pending units and reads the journal again: a run
// restarted after a Fatal error resumes after the units its first try
// completed, from values as stored (never ones a later step changed in
// place).
func (j *runJournal) reload(ctx context.Context) error {
	if err := j.flush(ctx); err != nil {
		return err
	}
	fresh, _, err := j.c.loadJournal(ctx, j.id)
	if err != nil {
		return err
	}
	j.mu.Lock()
	j.done = fresh.done
	j.mu.Unlock()
	return nil
}

// prepareDurable loads the journal of m for a run and checks it against
// the flow. A journal that the flow no longer matches is cleared when the
// channel restarts such messages from the top (Config.RestartOnChange);
// otherwise prepareDurable returns the flow's *flow.ChangedError.
func (c *Channel) prepareDurable(ctx context.Context, m *message.Message) (*runJournal, error) {
	j, units, err := c.loadJournal(ctx, m.ID)
	if err != nil {
		return nil, fmt.Errorf("channel %q: %w", c.cfg.Name, err)
	}
	if err := c.cfg.Flow.Changed(units); err != nil {
		if !c.cfg.RestartOnChange {
			return nil, err
		}
		c.log.Warn("flow changed: running the message from the top", "id", m.ID, "change", err)
		if err := c.durable.j.ClearJournal(ctx, m.ID); err != nil {
			return nil, fmt.Errorf("channel %q: %w", c.cfg.Name, err)
		}
		return &runJournal{c: c, id: m.ID, done: map[string]*flow.Unit{}}, nil
	}
	return j, nil
}

// changed ends a run that cannot resume because the flow changed: the
// message goes to state error, the error naming the change.
func (c *Channel) changed(ctx context.Context, m *message.Message, cause error) Result {
	err := fmt.Errorf("channel %q: not resumed: %w (replay it to run it from the top)", c.cfg.Name, cause)
	res := Result{Settle: Fail, Outcome: errors.KindFailed, State: store.Error, Message: m, Err: err, ErrorID: newErrorID()}
	if terr := c.store.Transition(context.WithoutCancel(ctx), m.ID, store.Error,
		store.Update{Outcome: errors.KindFailed, Err: err.Error()}); terr != nil {
		c.log.Error("store transition failed", "id", m.ID, "to", store.Error, "error", terr)
		return c.left(m, errors.Join(err, terr))
	}
	c.counts[2].Add(1)
	c.lastErr.Store(err.Error())
	c.log.Error("message not resumed: its flow changed", "id", m.ID, "error_id", res.ErrorID, "error", err)
	return res
}

// park records a run that parked: its wait, the units it completed, its
// context and trace; the message waits in state waiting.
func (c *Channel) park(ctx context.Context, m *message.Message, j *runJournal, pe *flow.ParkError, u store.Update) Result {
	w := store.Wait{Path: pe.Path, Step: pe.Step, Fingerprint: pe.Fingerprint, Signal: pe.Wait.Signal, Into: pe.Wait.Into,
		For: pe.Wait.For, Timeout: pe.Wait.Timeout, Reason: pe.Wait.Reason}
	err := c.durable.j.Park(context.WithoutCancel(ctx), m.ID, w, u, j.take()...)
	c.health.wrote(err)
	if err != nil {
		c.log.Error("store park failed", "id", m.ID, "error", err)
		return c.left(m, fmt.Errorf("channel %q: %w", c.cfg.Name, err))
	}
	select {
	case c.durable.poke <- struct{}{}:
	default:
	}
	c.counts[5].Add(1)
	return Result{Settle: Ack, Outcome: errors.KindWaiting, State: store.Waiting, Message: m}
}

// waitingResult answers a delivery of a message that waits.
func (c *Channel) waitingResult(rec *store.Record) Result {
	c.counts[4].Add(1)
	return Result{Settle: Ack, Outcome: errors.KindWaiting, State: store.Waiting, Message: rec.Message}
}

// Signal delivers the signal name with values to the message id, which
// waits for it at a `wait` step of a durable channel's flow (see
// Config.Durable): the values are journaled as the step's writes (under
// its into key), the message leaves state waiting and its run resumes
// after the step. Signal returns the result of that run (which may park
// again). It fails, wrapping store.ErrNotWaiting, when the message does
// not wait for that signal (it was signalled already, its wait timed
// out, it waits for another signal), store.ErrNotFound for an unknown
// message and [ErrNotDurable] on a channel that is not durable.
func (c *Channel) Signal(ctx context.Context, id, name string, values map[string]any) (Result, error) {
	if err := c.errNotBuilt(); err != nil {
		return Result{}, err
	}
	if c.durable == nil {
		return Result{}, fmt.Errorf("channel %q: signal %q: %w", c.cfg.Name, name, ErrNotDurable)
	}
	w, err := c.durable.j.Wait(ctx, id)
	if err != nil {
		return Result{}, fmt.Errorf("channel %q: signal %q: %w", c.cfg.Name, name, err)
	}
	if w.Signal != name {
		what := "a timer"
		if w.Signal != "" {
			what = fmt.Sprintf("signal %q", w.Signal)
		}
		return Result{}, fmt.Errorf("channel %q: signal %q: message %q waits for %s at step %q: %w",
			c.cfg.Name, name, id, what, w.Step, store.ErrNotWaiting)
	}
	writes := map[string]any{}
	if w.Into != "" {
		v := map[string]any{}
		for k, x := range values {
			v[k] = x
		}
		writes[w.Into] = v
	} else {
		for k, x := range values {
			writes[k] = x
		}
	}
	e := store.JournalEntry{Path: w.Path, Name: w.Step, Fingerprint: w.Fingerprint, Start: w.Since, Duration: time.Since(w.Since), Writes: writes}
	if err := c.durable.j.Wake(ctx, id, w.Path, e); err != nil {
		return Result{}, fmt.Errorf("channel %q: signal %q: %w", c.cfg.Name, name, err)
	}
	c.inflight.Add(1)
	defer c.inflight.Done()
	return c.resume(ctx, id)
}

// resume runs a woken message (processing) under its lock.
func (c *Channel) resume(ctx context.Context, id string) (Result, error) {
	rec, err := c.store.Get(ctx, id)
	if err != nil {
		return Result{}, fmt.Errorf("channel %q: resume: %w", c.cfg.Name, err)
	}
	unlock, err := c.lock(ctx, rec.Message)
	if err != nil {
		return Result{}, fmt.Errorf("channel %q: resume %q: %w", c.cfg.Name, id, err)
	}
	defer unlock()
	if rec, err = c.store.Get(ctx, id); err != nil {
		return Result{}, fmt.Errorf("channel %q: resume: %w", c.cfg.Name, err)
	}
	if rec.State != store.Pending && rec.State != store.Processing {
		// Run by another path meanwhile (a redelivery, a timer).
		return Result{Settle: Ack, State: rec.State, Outcome: errors.KindOK, Message: rec.Message}, nil
	}
	// Wake left it processing: the run is its attempt.
	return c.runMessage(ctx, rec.Message, nil, rec.State == store.Processing, false, nil), nil
}

// timers wakes the messages whose wait is due, until intake stops: a
// wait's timeout or a durable sleep. It holds no goroutine per waiting
// message: it asks the store for the next due time and sleeps until then
// (or until a message parks).
func (c *Channel) timers(intake, ctx context.Context) {
	var runs sync.WaitGroup
	defer runs.Wait()
	for {
		due, err := c.durable.j.DueWaits(intake, time.Now(), TimerBatch)
		if err != nil && intake.Err() == nil {
			c.log.Error("durable timers", "error", err)
		}
		for _, w := range due {
			if !c.fire(intake, ctx, w, &runs) {
				return
			}
		}
		if len(due) == TimerBatch {
			continue
		}
		wait := time.Minute
		if next, ok, err := c.durable.j.NextDue(intake); err != nil {
			wait = time.Second
		} else if ok {
			wait = min(wait, max(time.Until(next), 0))
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.durable.poke:
			t.Stop()
		case <-intake.Done():
			t.Stop()
			return
		}
	}
}

// fire wakes one due wait and runs its message in the background. It
// returns false when intake stopped.
func (c *Channel) fire(intake, ctx context.Context, w *store.Wait, runs *sync.WaitGroup) bool {
	e := store.JournalEntry{Path: w.Path, Name: w.Step, Fingerprint: w.Fingerprint, Start: w.Since, Duration: time.Since(w.Since),
		Outcome: w.Timeout}
	if w.Timeout != errors.KindOK {
		e.Err = w.Reason
	}
	select {
	case c.durable.sem <- struct{}{}:
	case <-intake.Done():
		return false
	}
	err := c.durable.j.Wake(intake, w.ID, w.Path, e)
	c.health.wrote(err)
	if err != nil {
		<-c.durable.sem
		if !errors.Is(err, store.ErrNotWaiting) {
			c.log.Error("wake a due message", "id", w.ID, "error", err)
		}
		return intake.Err() == nil
	}
	c.inflight.Add(1)
	runs.Add(1)
	go func() {
		defer runs.Done()
		defer c.inflight.Done()
		defer func() { <-c.durable.sem }()
		if c.slots != nil {
			select {
			case c.slots <- struct{}{}:
				defer func() { <-c.slots }()
			case <-intake.Done():
				return // woken: pending, it runs at the next start
			}
		}
		if _, err := c.resume(ctx, w.ID); err != nil {
			c.log.Error("resume a woken message", "id", w.ID, "error", err)
		}
	}()
	return true
}

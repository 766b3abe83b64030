package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit.
//
// Every write of a Store (Put, Begin, Transition, Probe) is a write
// operation: a function that runs its statements in a transaction it is
// given. Callers queue their operations; one caller at a time, the
// leader, takes what is queued (up to MaxBatch operations, waiting up to
// MaxWait for more), runs the operations one after the other in one
// transaction on the single writing connection and commits it, then
// answers each caller and hands the lead to the first caller still
// queued. A lone writer is its own leader and commits its own write, with
// no goroutine to wake; concurrent writers queue while a leader commits,
// and the next leader commits them together. A caller returns when the transaction
// that holds its operation has committed: what it was told is written is
// in the database, as durable as Sync makes a commit.
//
// An operation that fails leaves the batch without it: it ends in one of
// two ways.
//   - It knows it wrote nothing (a message already stored, a transition of
//     an unknown message): it returns its error wrapped by unwritten, the
//     error goes to its caller and the others go on in the same
//     transaction.
//   - Anything else (a statement failing half-way): the transaction is
//     rolled back, the error goes to that caller, and the batch runs again
//     without it in a new transaction. An operation may therefore run more
//     than once before it commits; it must do nothing but its statements
//     on the transaction.
//
// A transaction that cannot begin or commit (a full disk, an I/O error)
// fails every operation of its batch with that error; none of them is
// written, and batches committed before are not touched.
//
// To add a table or an operation to the batch (a journal, say), write a
// function of the transaction and pass it to Store.write; it commits in
// the same transaction as the writes queued beside it.

// writeOp is a queued write operation.
type writeOp struct {
	f     func(*sql.Tx) error
	state atomic.Int32 // opQueued, opLead, opTaken or opAbandoned
	done  chan error   // buffered: whoever answers never blocks on it
}

const (
	opQueued    = iota // queued, not yet in a batch
	opLead             // its caller is the next leader (errLead is on its way)
	opTaken            // in a batch: its caller waits for the commit
	opAbandoned        // its caller gave up before it was taken
)

// errLead tells a queued caller that it leads the next batch.
var errLead = errors.New("lead the next batch")

var opPool = sync.Pool{New: func() any { return &writeOp{done: make(chan error, 1)} }}

// unwritten wraps the error of an operation that failed before it wrote
// anything: the batch goes on without it.
type unwritten struct{ err error }

func (u unwritten) Error() string { return u.err.Error() }
func (u unwritten) Unwrap() error { return u.err }

// writeQueue is the state of group commit.
type writeQueue struct {
	mu      sync.Mutex
	pending []*writeOp    // queued, oldest first
	leading bool          // a leader is running a batch
	more    chan struct{} // tells a leader waiting for MaxWait that writes came
}

// write queues f, waits for the transaction holding it to commit and
// returns f's error or the transaction's.
//
// ctx bounds the wait in the queue: a caller whose ctx is done before its
// operation is taken into a batch returns ctx's error and the operation
// never runs. Once taken, the operation commits or fails with its batch,
// and its caller waits for that: a batch is bounded in size and in the
// time it waits for writes, so the wait is short. f should run its
// statements with a context that is not canceled (the operation is the
// caller's no more once taken).
func (s *Store) write(ctx context.Context, f func(*sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := opPool.Get().(*writeOp)
	op.f = f
	q := &s.wq
	q.mu.Lock()
	if !q.leading {
		// Nobody commits: lead, with op first.
		q.leading = true
		op.state.Store(opLead)
		q.pending = append(q.pending, op)
		q.mu.Unlock()
	} else {
		op.state.Store(opQueued)
		q.pending = append(q.pending, op)
		q.mu.Unlock()
		select {
		case q.more <- struct{}{}:
		default:
		}
		var err error
		select {
		case err = <-op.done:
		case <-ctx.Done():
			if op.state.CompareAndSwap(opQueued, opAbandoned) {
				return ctx.Err() // the leader drops op; it is not reused
			}
			err = <-op.done
		}
		if err != errLead {
			op.f = nil
			opPool.Put(op)
			return err
		}
	}
	s.lead()
	err := <-op.done
	op.f = nil
	opPool.Put(op)
	return err
}

// takeLocked moves queued operations to batch, up to MaxBatch, dropping
// those given up. q.mu is held.
func (s *Store) takeLocked(batch []*writeOp) []*writeOp {
	q := &s.wq
	i := 0
	for ; i < len(q.pending) && len(batch) < s.opts.MaxBatch; i++ {
		op := q.pending[i]
		if op.state.CompareAndSwap(opLead, opTaken) || op.state.CompareAndSwap(opQueued, opTaken) {
			batch = append(batch, op)
		}
	}
	n := copy(q.pending, q.pending[i:])
	clear(q.pending[n:])
	q.pending = q.pending[:n]
	return batch
}

// lead runs one batch, with the leader's operation first, then hands the
// lead to the first caller still queued, if any.
func (s *Store) lead() {
	q := &s.wq
	// Let the goroutines that are about to queue a write run first, so
	// that they join this batch rather than wait for the next: under
	// load it makes batches several times bigger, for fewer commits;
	// with nothing else to run it returns at once.
	runtime.Gosched()
	q.mu.Lock()
	batch := s.takeLocked(nil)
	q.mu.Unlock()
	if s.opts.MaxWait > 0 && len(batch) < s.opts.MaxBatch {
		timer := time.NewTimer(s.opts.MaxWait)
	wait:
		for len(batch) < s.opts.MaxBatch {
			select {
			case <-q.more:
				q.mu.Lock()
				batch = s.takeLocked(batch)
				q.mu.Unlock()
			case <-timer.C:
				break wait
			}
		}
		timer.Stop()
	}
	s.commit(batch)
	q.mu.Lock()
	for len(q.pending) > 0 {
		op := q.pending[0]
		if op.state.CompareAndSwap(opQueued, opLead) {
			q.mu.Unlock()
			op.done <- errLead
			return
		}
		q.pending[0] = nil
		q.pending = q.pending[1:] // given up
	}
	q.leading = false
	q.mu.Unlock()
}

// commit runs the operations of batch in one transaction and answers
// their callers.
func (s *Store) commit(ops []*writeOp) {
	s.batches.Add(1)
	results := make([]error, len(ops))
	ctx := context.Background()
	for len(ops) > 0 {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			answerAll(ops, fmt.Errorf("begin transaction: %w", err))
			return
		}
		failed := -1
		var ferr error
		for i, op := range ops {
			err := op.f(tx)
			if u, ok := errors.AsType[unwritten](err); ok {
				results[i] = u.err
				continue
			}
			if err != nil {
				failed, ferr = i, err
				break
			}
			results[i] = nil
		}
		if failed >= 0 {
			_ = tx.Rollback()
			ops[failed].done <- ferr
			ops = slices.Delete(ops, failed, failed+1)
			results = results[:len(ops)]
			continue
		}
		if err := tx.Commit(); err != nil {
			answerAll(ops, fmt.Errorf("commit: %w", err))
			return
		}
		for i, op := range ops {
			op.done <- results[i]
		}
		return
	}
}

// answerAll gives err to every caller of ops.
func answerAll(ops []*writeOp, err error) {
	for _, op := range ops {
		op.done <- err
	}
}

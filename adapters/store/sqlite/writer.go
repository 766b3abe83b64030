package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit.
//
// Every write of a Store (Put, Begin, Transition, Probe) is a write
// operation: a function that runs its statements in a transaction it is
// given. Callers queue their operations; one writer goroutine takes what
// is queued (up to MaxBatch operations, waiting up to MaxWait for more),
// runs the operations one after the other in one transaction and commits
// it, then answers each caller. A caller returns when the transaction
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
	state atomic.Int32 // opQueued, opTaken or opAbandoned
	done  chan error   // buffered: the writer never blocks on it
}

const (
	opQueued    = iota // in the queue, not yet taken by the writer
	opTaken            // in a batch: its caller waits for the commit
	opAbandoned        // its caller gave up before the writer took it
)

var opPool = sync.Pool{New: func() any { return &writeOp{done: make(chan error, 1)} }}

// unwritten wraps the error of an operation that failed before it wrote
// anything: the batch goes on without it.
type unwritten struct{ err error }

func (u unwritten) Error() string { return u.err.Error() }
func (u unwritten) Unwrap() error { return u.err }

// write queues f, waits for the transaction holding it to commit and
// returns f's error or the transaction's.
//
// ctx bounds the wait in the queue: a caller whose ctx is done before the
// writer takes its operation into a batch returns ctx's error and the
// operation never runs. Once taken, the operation commits or fails with
// its batch, and its caller waits for that: a batch is bounded in size
// and in the time it waits for writes, so the wait is short.
// f should run its statements with a context that is not canceled (the
// operation is the caller's no more once taken).
func (s *Store) write(ctx context.Context, f func(*sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := opPool.Get().(*writeOp)
	op.f = f
	op.state.Store(opQueued)
	select {
	case s.queue <- op:
	case <-ctx.Done():
		op.f = nil
		opPool.Put(op)
		return ctx.Err()
	}
	var err error
	select {
	case err = <-op.done:
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opAbandoned) {
			return ctx.Err() // the writer drops op; it is not reused
		}
		err = <-op.done
	}
	op.f = nil
	opPool.Put(op)
	return err
}

// writer runs the batches until the queue is closed.
func (s *Store) writer() {
	defer close(s.stopped)
	batch := make([]*writeOp, 0, s.opts.MaxBatch)
	var timer *time.Timer
	if s.opts.MaxWait > 0 {
		timer = time.NewTimer(time.Hour)
		timer.Stop()
	}
	for {
		op, ok := <-s.queue
		if !ok {
			return
		}
		if !op.take() {
			continue
		}
		batch = append(batch[:0], op)
		batch = s.fill(batch, timer)
		s.commit(batch)
		clear(batch)
	}
}

// take marks op taken into a batch, unless its caller gave up on it.
func (op *writeOp) take() bool { return op.state.CompareAndSwap(opQueued, opTaken) }

// fill adds to batch what is queued, up to MaxBatch operations, waiting
// up to MaxWait for more when fewer are queued.
func (s *Store) fill(batch []*writeOp, timer *time.Timer) []*writeOp {
	for len(batch) < s.opts.MaxBatch {
		select {
		case op, ok := <-s.queue:
			if !ok {
				return batch
			}
			if op.take() {
				batch = append(batch, op)
			}
			continue
		default:
		}
		break
	}
	if timer == nil || len(batch) >= s.opts.MaxBatch {
		return batch
	}
	timer.Reset(s.opts.MaxWait)
	defer timer.Stop()
	for len(batch) < s.opts.MaxBatch {
		select {
		case op, ok := <-s.queue:
			if !ok {
				return batch
			}
			if op.take() {
				batch = append(batch, op)
			}
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// commit runs the operations of batch in one transaction and answers
// their callers.
func (s *Store) commit(batch []*writeOp) {
	ops := slices.Clone(batch)
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
			ops = append(ops[:failed], ops[failed+1:]...)
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

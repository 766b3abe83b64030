// Package store keeps the messages a channel takes from its sources,
// together with their processing state and history, so that no message is
// lost across crashes and finished messages can be searched and replayed.
//
// # States
//
// A record starts in Pending when a channel stores the message (Put),
// before anything else happens to it. The channel then moves it through
// the states with Transition:
//
//	Pending ──▶ Processing ──▶ Done       the flow succeeded
//	                       ├──▶ Rejected  the flow refused the message
//	                       ├──▶ Error     the flow failed
//	                       └──▶ Dead      set aside: a dead letter (failed on
//	                                      every allowed delivery) or poison
//	                                      (its runs kept crashing the process)
//
// A Dead record is not owed (Recover skips it) and a channel does not run
// it again on its own; replaying it by hand moves it on.
//
// Every transition is appended to the record's History with its time and
// error text, and entering Processing increments Attempts. Any state may
// follow any other: replaying a message means moving a Done, Rejected,
// Error or Dead record back to Processing (or Pending) and running it again; the
// history keeps every earlier run. A transition may also replace the
// stored message's Context and Trace with those of the run.
//
// A transition that finishes a run records how it ended as data, beside
// the error text: the run's Outcome (an errors.Kind: ok, stop,
// retry-exhausted, failed, panic, ...) and, for a rejection, the Reason of
// its Stop. Whoever reads a record (a channel answering a duplicate
// delivery, flowrun messages) takes them from there; nothing parses Err.
//
// # Recover on start
//
// A channel must call Put before it runs the flow and Transition after, so
// the store always knows about every message it has accepted. Records in
// Pending or Processing therefore belong to messages whose outcome was
// never recorded: the process stopped or crashed while they were queued or
// running. When a channel starts it calls Recover and processes those
// records again (oldest first; it may do so while it takes new messages,
// under the same per-message lock). Flows must therefore tolerate running
// a message more than once; Attempts tells how many runs started. A run
// that ends on purpose without an outcome (canceled by a shutdown) moves
// its record back to Pending with that outcome; so the Processing entries
// that end a record's history are runs that died with their process, and
// CrashedRuns counts them: a channel sets aside a message that keeps
// crashing its process instead of running it again.
//
// # Stores
//
// Stores share one behaviour, which package storetest checks, and are safe
// for concurrent use:
//
//   - Memory (NewMemory, in this package): a map; nothing survives the
//     process.
//   - File (package store/file): one JSON file per message, written
//     atomically; the index is rebuilt when the directory is opened.
//   - SQLite (package store/sqlite): an SQLite database in WAL mode,
//     through the pure-Go modernc.org/sqlite driver, so builds need no C
//     compiler. Concurrent writes are group-committed: one transaction
//     commits the writes queued meanwhile, and each caller returns once
//     its write has committed. A program that imports only this package
//     links no SQLite.
//   - PostgreSQL (package store/postgres): tables in a PostgreSQL
//     database, through pgx, shared by many workers in many processes.
//
// The SQLite and file stores take a durability option: by default a
// write that returned survives a crash of the process (a power loss may
// lose the last writes, never corrupt the store); with sync=full it
// survives a power loss too, at the cost of an fsync per batch of writes.
//
// Stores keep copies of the messages, contexts and traces they are given,
// and the records they return are copies. Errors are *OpError values that
// name the store, the operation and the message ID, and wrap ErrNotFound,
// ErrExists, ErrClosed, ErrInvalid or the underlying cause, for errors.Is
// and errors.As.
//
// Stored messages are normalized the same way by every store: Time is in
// UTC, Context holds what DecodeContext decodes (map[string]any, []any,
// float64 numbers, and json.Number for a number a float64 would not write
// back unchanged, so 12345678901234567891 is returned with all its digits)
// and Trace is compacted JSON. Payloads are kept byte for byte.
//
// # Writing a store
//
// A store written elsewhere implements Store, normalizes what it is given
// with Normalize and NormalizeUpdate, decodes the contexts it returns with
// DecodeContext, checks queries with Query.Validate
// and, if it has no query engine of its own, runs them over an index in
// memory with Query.Select and Query.Count. Its tests run storetest.Run
// (and storetest.RunDurable if it keeps messages across a restart).
//
// # Journal of durable runs
//
// A store that implements the optional Journal keeps, for a channel with
// `durable: steps`, the units each message's runs completed (step path,
// context delta, attempts, times, the flow's fingerprint) and the wait of
// a message parked in state Waiting (a signal, a timer and its due time).
// Waiting is a state of its own, outside Pending/Processing: Recover does
// not return it; Journal.Wake moves it to Processing with the step's
// completion journaled, once. Memory, File, SQLite and PostgreSQL
// implement Journal (SQLite in the tables journal and waits, created when
// missing, in one transaction per operation; PostgreSQL likewise, in the
// tables TABLE_journal and TABLE_waits, under the lock of the message's
// row; File in a journal file beside each record, its waits indexed in
// memory); a durable channel on a store that does
// not is refused. storetest.RunJournal and RunJournalDurable check an
// implementation.
//
// # Health
//
// A store that can check it is writable implements the optional Prober:
// Probe writes a probe record where records go, makes it durable and
// removes it, failing as a write would on a read-only folder or database
// or a full disk. Memory, File, SQLite and PostgreSQL implement it; storetest.Run
// checks it for a store that does. A channel probes its store when it
// starts (an unwritable store refuses to start) and, while its writes
// fail, every second until a probe succeeds. A store that is not a
// Prober is taken as writable until a write fails.
package store

package sqlite

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/svcflow/svcflow/adapters/store"
)

// Sync is how durable a committed write is.
type Sync string

// The durability levels of [Options.Sync].
const (
	// SyncNormal, the default: a write a caller was told is committed
	// survives a crash or a kill of the process. A power loss or an
	// operating system crash may lose the last committed writes (those
	// not yet checkpointed), never corrupt the database. It is SQLite's
	// synchronous=NORMAL in WAL mode: a commit writes the log and syncs
	// nothing; the log is synced when it is checkpointed.
	SyncNormal Sync = "normal"
	// SyncFull: a write a caller was told is committed survives a power
	// loss too. It is SQLite's synchronous=FULL: every commit, that is
	// every batch of writes (see [Options]), syncs the log to the disk,
	// which costs an fsync per batch (from tens of microseconds on a disk
	// with a write cache to several milliseconds without one). Group
	// commit shares it between the writes of a batch, so it costs
	// concurrent writers little and a lone writer most.
	SyncFull Sync = "full"
)

// Default batch bounds (see [Options]).
const (
	// DefaultMaxBatch is the number of writes one transaction commits at
	// most, unless Options.MaxBatch says otherwise.
	DefaultMaxBatch = 256
)

// Options tune a Store. The zero Options is the default: SyncNormal,
// batches of up to DefaultMaxBatch writes, no waiting.
//
// Writes are group-committed: one caller at a time takes the writes that
// callers have queued (its own first), runs them in one transaction on
// the single writing connection and commits it, and each caller returns
// once the transaction that holds its write has committed. A batch is
// what queued while the previous one was committing, so a lone writer
// pays one commit per write (and commits it itself, with no goroutine to
// wake) and concurrent writers share commits. A write that fails leaves
// its batch, which commits without it; a commit that fails (a full disk)
// fails every write of its batch, and nothing committed before is lost.
type Options struct {
	// Sync is how durable a commit is: SyncNormal (empty) or SyncFull.
	Sync Sync
	// MaxBatch caps the writes of one transaction (0: DefaultMaxBatch).
	MaxBatch int
	// MaxWait is how long the writer waits for more writes to join a
	// batch that is not full (0: it does not wait). Waiting makes bigger
	// batches, which pays with SyncFull on a slow disk, at the cost of
	// that much latency for every write.
	MaxWait time.Duration
}

// withDefaults checks o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	switch o.Sync {
	case "":
		o.Sync = SyncNormal
	case SyncNormal, SyncFull:
	default:
		return o, fmt.Errorf("%w: sync %q: want normal or full", store.ErrInvalid, o.Sync)
	}
	if o.MaxBatch < 0 || o.MaxWait < 0 {
		return o, fmt.Errorf("%w: negative batch size or wait", store.ErrInvalid)
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	return o, nil
}

// ParseDSN splits a data source name, PATH or PATH?QUERY, into the
// database path and its options, as the sqlite store component reads its
// path. The query sets the fields of Options: sync=normal|full,
// batch=N (MaxBatch), wait=DURATION (MaxWait, as time.ParseDuration reads
// it), e.g. data/intake.db?sync=full. A path that holds a '?' of its own
// cannot be given this way; [Open] and [OpenOptions] take a path as it
// is.
func ParseDSN(dsn string) (path string, o Options, err error) {
	path, query, ok := strings.Cut(dsn, "?")
	if !ok {
		return path, o, nil
	}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return "", o, fmt.Errorf("%w: options %q: %w", store.ErrInvalid, query, err)
	}
	for k, vs := range vals {
		v := vs[len(vs)-1]
		switch k {
		case "sync":
			o.Sync = Sync(v)
		case "batch":
			if o.MaxBatch, err = strconv.Atoi(v); err != nil {
				return "", o, fmt.Errorf("%w: batch=%s: not a number", store.ErrInvalid, v)
			}
		case "wait":
			if o.MaxWait, err = time.ParseDuration(v); err != nil {
				return "", o, fmt.Errorf("%w: wait=%s: %w", store.ErrInvalid, v, err)
			}
		default:
			return "", o, fmt.Errorf("%w: unknown option %q (want sync, batch or wait)", store.ErrInvalid, k)
		}
	}
	if o, err = o.withDefaults(); err != nil {
		return "", o, err
	}
	return path, o, nil
}

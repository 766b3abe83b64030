package file

import (
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/svcflow/svcflow/adapters/store"
)

// Sync is how durable a write that returned is.
type Sync string

// The durability levels of [Options.Sync].
const (
	// SyncNormal, the default: a write that returned survives a crash or
	// a kill of the process. Each record is written to a temporary file
	// that is synced, then renamed over the record's file, so a power loss
	// or an operating system crash never leaves a torn record, but it may
	// undo the last renames: a record may be found as it was before its
	// last writes, or missing if it was new.
	SyncNormal Sync = "normal"
	// SyncFull: a write that returned survives a power loss too: after
	// the rename the directory is synced. Writers that renamed meanwhile
	// share one sync of the directory (group commit), so it costs
	// concurrent writers one fsync per group and a lone writer one per
	// write, on top of the fsync of each record's file that both levels
	// pay.
	SyncFull Sync = "full"
)

// Options tune a Store. The zero Options is the default, SyncNormal.
type Options struct {
	// Sync is how durable a write is: SyncNormal (empty) or SyncFull.
	Sync Sync
}

func (o Options) withDefaults() (Options, error) {
	switch o.Sync {
	case "":
		o.Sync = SyncNormal
	case SyncNormal, SyncFull:
	default:
		return o, fmt.Errorf("%w: sync %q: want normal or full", store.ErrInvalid, o.Sync)
	}
	return o, nil
}

// ParseDSN splits DIR or DIR?QUERY into the folder and its options, as
// the file store component reads its dir: the query may set
// sync=normal|full (data/intake?sync=full). A folder whose name holds a
// '?' cannot be given this way; [Open] and [OpenOptions] take a folder as
// it is.
func ParseDSN(dsn string) (dir string, o Options, err error) {
	dir, query, ok := strings.Cut(dsn, "?")
	if !ok {
		return dir, o, nil
	}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return "", o, fmt.Errorf("%w: options %q: %w", store.ErrInvalid, query, err)
	}
	for k, vs := range vals {
		if k != "sync" {
			return "", o, fmt.Errorf("%w: unknown option %q (want sync)", store.ErrInvalid, k)
		}
		o.Sync = Sync(vs[len(vs)-1])
	}
	if o, err = o.withDefaults(); err != nil {
		return "", o, err
	}
	return dir, o, nil
}

// groupSync runs a sync (of the directory) for many callers at once: a
// caller returns after a sync that started after it called has ended, and
// with that sync's error. While one sync runs, the callers that come wait
// for it to end and then share the next one.
type groupSync struct {
	mu      sync.Mutex
	cond    *sync.Cond // on mu; set on first use
	running bool
	started uint64 // syncs started
	ended   uint64 // syncs ended: the latest is number ended
	failed  uint64 // number of the latest sync that failed, 0 if none
	err     error  // its error
	runs    uint64 // syncs run, for tests
	waiting int    // callers waiting for a run to end, for tests
}

// sync returns once a run of f that started after this call has ended:
// nil if it and every run after it that ended before the caller looked
// succeeded, else the error of the latest failed run.
func (g *groupSync) sync(f func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	need := g.started + 1 // the first run that starts after now
	for {
		if g.ended >= need {
			if g.failed >= need {
				return g.err
			}
			return nil
		}
		if !g.running {
			break
		}
		g.waiting++
		g.cond.Wait()
		g.waiting--
	}
	// No run is going on and none that covers this call has ended: run
	// one, for every caller waiting.
	g.running = true
	g.started++
	n := g.started
	g.mu.Unlock()
	err := f()
	g.mu.Lock()
	g.running = false
	g.ended = n
	g.runs++
	if err != nil {
		g.failed, g.err = n, err
	}
	g.cond.Broadcast()
	if err != nil {
		return err
	}
	return nil
}

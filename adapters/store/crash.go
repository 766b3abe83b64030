package store

// CrashedRuns returns how many runs of r in a row, counted back from its
// latest transition, entered Processing and recorded no outcome: runs
// that ended with their process (a crash, a kill, an os.Exit) instead of
// with a transition. It is zero unless r is Processing. A run left on
// purpose (canceled by a shutdown, a Fatal error that outlasted its
// restarts) records its outcome when it ends, which breaks the count.
//
// A channel reads it when it recovers a message that no run of its own
// holds, to set aside a message that keeps killing its process (see
// channel.Config.MaxCrashes).
func CrashedRuns(r *Record) int {
	if r == nil || r.State != Processing {
		return 0
	}
	n := 0
	for i := len(r.History) - 1; i >= 0 && r.History[i].State == Processing; i-- {
		n++
	}
	return n
}

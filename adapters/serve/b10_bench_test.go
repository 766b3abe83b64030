package serve_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/svcflow/svcflow/adapters/serve"
)

// startB10 starts one of B10's servers: the channel of B7 on the store
// kind names ("memory", "sqlite", "sqlite-full"; traces on, as a
// channel has them by default), with its database in a folder of its own
// that stop removes.
func startB10(kind string) (url string, stop func(), err error) {
	var dsn string
	switch kind {
	case "memory":
		dsn = "memory:"
	case "sqlite":
		dsn = "sqlite:DB"
	case "sqlite-full":
		dsn = "sqlite:DB?sync=full"
	default:
		return "", nil, fmt.Errorf("unknown server %q", kind)
	}
	dir, err := os.MkdirTemp("", "b10-")
	if err != nil {
		return "", nil, err
	}
	dsn = strings.Replace(dsn, "DB", filepath.Join(dir, "c.db"), 1)
	st, err := serve.OpenStore(nil, dsn)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	url, stopChannel, err := startChannel(st, false)
	if err != nil {
		st.Close()
		os.RemoveAll(dir)
		return "", nil, err
	}
	return url, func() {
		stopChannel()
		st.Close()
		os.RemoveAll(dir)
	}, nil
}

// B10: requests per second through a channel on the SQLite store (the
// default of serve) versus the same channel on the memory store, from
// 32 concurrent keep-alive clients, with sync=normal (the default) and
// with sync=full. Each server runs in a process of its own; they take
// the load in alternating rounds whose order rotates, as in B7.
// ratio-sqlite is sqlite / memory requests per second (target 0.7 or
// more); ratio-sqlite-full the same with sync=full; cpu-ratio-* the
// servers' CPU time per request, store / memory (warm-up included), which
// a machine busy with other work disturbs less.
func BenchmarkB10Store(b *testing.B) {
	kinds := []string{"sqlite", "sqlite-full", "memory"}
	servers := make([]*b7Server, len(kinds))
	loaders := make([]*loader, len(kinds))
	for i, k := range kinds {
		servers[i] = startB7Server(b, k)
		loaders[i] = newLoader()
	}
	warm := newLoader()
	for _, s := range servers {
		warm.send(b, s.url, 1000)
	}
	const round = 1000
	b.ResetTimer()
	for r, done := 0, 0; done < b.N; r, done = r+1, done+round {
		n := min(round, b.N-done)
		for j := range kinds {
			i := (r + j) % len(kinds)
			loaders[i].send(b, servers[i].url, n)
		}
	}
	b.StopTimer()
	cpu := make([]time.Duration, len(kinds))
	for i, s := range servers {
		cpu[i] = s.stop(b)
	}
	mem := len(kinds) - 1
	memRPS := loaders[mem].report(b, "memory")
	total := float64(b.N + 1000) // with the warm-up
	for i, k := range kinds {
		b.ReportMetric(float64(cpu[i].Microseconds())/total, k+"-cpu-µs/req")
		if i != mem {
			b.ReportMetric(loaders[i].report(b, k)/memRPS, "ratio-"+k)
			b.ReportMetric(float64(cpu[i])/float64(cpu[mem]), "cpu-ratio-"+k)
		}
	}
}

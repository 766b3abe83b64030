package serve_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// b13Config is a channel on the memory store whose flow a plan changes
// back and forth (a safe change: the channel is swapped while it
// serves), beside one the plans leave alone.
const b13Config = `version: 1
flows:
  orders:
    input: [n]
    steps:
      - set: {total: "n * 2"}
      - set: {version: "'v1'"}
channels:
  intake:
    from: {http: {listen: "127.0.0.1:0", path: /orders}}
    flow: orders
    store: memory:
  other:
    from: {http: {listen: "127.0.0.1:0", path: /other}}
    flow: orders
    store: memory:
`

// BenchmarkB13HotReload applies a safe change (intake's flow) to a
// server under load from 16 clients, b.N times, alternating two
// configurations. It reports the time an apply takes (ms/apply: from the
// request to the answer, once the old instance drained) and the
// requests per second answered during the applies against those of an
// equal window just before each (the steady state), and their ratio.
func BenchmarkB13HotReload(b *testing.B) {
	rs := startReload(b, b13Config)
	v2 := strings.Replace(b13Config, `"'v1'"`, `"'v2'"`, 1)
	var answered, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := client.Post(rs.base+"/orders", "application/json", strings.NewReader(`{"n": 2}`))
				if err != nil {
					failed.Add(1)
					continue
				}
				body, _ := io.ReadAll(r.Body)
				_ = r.Body.Close()
				if r.StatusCode == http.StatusOK {
					answered.Add(1)
				} else {
					failed.Add(1)
					b.Logf("%d %s", r.StatusCode, body)
				}
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
		client.CloseIdleConnections()
	}()
	time.Sleep(200 * time.Millisecond) // warm up
	var applyTime, steadyTime time.Duration
	var during, steady int64
	b.ResetTimer()
	for i := range b.N {
		text := v2
		if i%2 == 1 {
			text = b13Config
		}
		p := rs.plan(text)
		n0, t0 := answered.Load(), time.Now()
		code, res := rs.apply(p, false)
		d := time.Since(t0)
		during += answered.Load() - n0
		applyTime += d
		if code != http.StatusOK {
			b.Fatalf("apply: %d %v", code, res)
		}
		n1, t1 := answered.Load(), time.Now()
		time.Sleep(max(d, 20*time.Millisecond))
		steady += answered.Load() - n1
		steadyTime += time.Since(t1)
	}
	b.StopTimer()
	duringRate := float64(during) / applyTime.Seconds()
	steadyRate := float64(steady) / steadyTime.Seconds()
	b.ReportMetric(float64(applyTime.Milliseconds())/float64(b.N), "ms/apply")
	b.ReportMetric(duringRate, "req/s-during")
	b.ReportMetric(steadyRate, "req/s-steady")
	b.ReportMetric(duringRate/steadyRate, "ratio")
	if f := failed.Load(); f > 0 {
		b.Logf("%d requests not answered 200 (503 while a route has no running channel would be one)", f)
	}
}

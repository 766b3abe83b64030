package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/httpsource"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// benchFlow is a 5-step order flow: validate, price, fork on the tier,
// discount, total.
func benchFlow() *flow.Flow {
	type item struct {
		Price float64 `json:"price"`
		Qty   int     `json:"qty"`
	}
	rate := func(name string, r float64) flow.Service {
		return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
			c.Set("rate", r)
			return nil
		}, flow.Provides(fc.Key[float64]("rate")))
	}
	return flow.New("order",
		flow.Func("validate", func(ctx context.Context, in struct{ Items []item }) (struct{}, error) {
			if len(in.Items) == 0 {
				return struct{}{}, errors.Stop("no items")
			}
			return struct{}{}, nil
		}),
		flow.Func("price", func(ctx context.Context, in struct{ Items []item }) (struct{ Subtotal float64 }, error) {
			var s float64
			for _, it := range in.Items {
				s += it.Price * float64(it.Qty)
			}
			return struct{ Subtotal float64 }{s}, nil
		}),
		flow.Fork("tier", flow.On("gold", rate("gold", 0.2)), flow.Default(rate("std", 0))),
		flow.Func("discount", func(ctx context.Context, in struct {
			Subtotal float64
			Rate     float64
		}) (struct{ Discount float64 }, error) {
			return struct{ Discount float64 }{in.Subtotal * in.Rate}, nil
		}),
		flow.Func("total", func(ctx context.Context, in struct{ Subtotal, Discount float64 }) (struct{ Total float64 }, error) {
			return struct{ Total float64 }{in.Subtotal - in.Discount}, nil
		}),
	).Input(fc.Any("items"), fc.Key[string]("tier")).MustBuild()
}

var benchBody = []byte(`{"tier": "gold", "items": [{"price": 2.5, "qty": 2}, {"price": 1, "qty": 3}]}`)

// loader sends POSTs from 32 concurrent keep-alive clients and records
// their latencies.
type loader struct {
	client *http.Client
	lat    []time.Duration
	busy   time.Duration
}

func newLoader() *loader {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	return &loader{client: &http.Client{Transport: tr}}
}

// send posts n requests to url, 32 at a time.
func (l *loader) send(b *testing.B, url string, n int) {
	const workers = 32
	lat := make([][]time.Duration, workers)
	next := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for range next {
				t0 := time.Now()
				resp, err := l.client.Post(url, "application/json", bytes.NewReader(benchBody))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	for range n {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	l.busy += time.Since(start)
	l.lat = append(l.lat, slices.Concat(lat...)...)
}

func (l *loader) report(b *testing.B, name string) float64 {
	slices.Sort(l.lat)
	rps := float64(len(l.lat)) / l.busy.Seconds()
	b.ReportMetric(rps, name+"-req/s")
	if len(l.lat) > 0 {
		b.ReportMetric(float64(l.lat[len(l.lat)*99/100].Microseconds()), name+"-p99-µs")
	}
	return rps
}

// startChannel serves benchFlow through an HTTP route, a channel with st
// (the memory store "memory:" gives, bounded, when nil), and its
// supervisor.
func startChannel(st store.Store, noTrace bool) (url string, stop func(), err error) {
	if st == nil {
		st = store.NewMemory(store.WithMaxFinished(store.DefaultMaxFinished))
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httpsource.NewServer(httpsource.Config{Addr: "127.0.0.1:0", Logger: quiet})
	route, err := srv.Route("POST", "/orders")
	if err != nil {
		return "", nil, err
	}
	ch, err := channel.New(channel.Config{Name: "orders", Flow: benchFlow(), Sources: []channel.Source{route},
		Store: st, Logger: quiet, NoTrace: noTrace})
	if err != nil {
		return "", nil, err
	}
	if err := srv.Listen(); err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx) }()
	if err := ch.Start(ctx); err != nil {
		cancel()
		return "", nil, err
	}
	if err := srv.WaitReady(ctx); err != nil {
		cancel()
		return "", nil, err
	}
	return "http://" + srv.Addr() + "/orders", func() {
		_ = ch.Stop(context.Background())
		cancel()
		<-done
	}, nil
}

// startBare serves benchFlow from a plain net/http handler.
func startBare() (url string, stop func(), err error) {
	f := benchFlow()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		c, err := fc.FromJSON(body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if err := f.RunContext(r.Context(), c); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: h}
	go func() { _ = hs.Serve(ln) }()
	return fmt.Sprintf("http://%s/orders", ln.Addr()), func() { _ = hs.Shutdown(context.Background()) }, nil
}

// b7Env names the environment variable that turns the test binary into one
// of B7's servers.
const b7Env = "SVCFLOW_B7_SERVER"

// serveB7 runs one B7 server ("channel", "notrace", "nostore" or "bare") in
// this process: it prints its URL, serves until its standard input closes, and
// returns the exit code.
func serveB7(kind string) int {
	var (
		url  string
		stop func()
		err  error
	)
	switch kind {
	case "channel", "notrace":
		url, stop, err = startChannel(nil, kind == "notrace")
	case "nostore":
		url, stop, err = startChannel(discard{}, true)
	case "bare":
		url, stop, err = startBare()
	default:
		url, stop, err = startB10(kind)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// SVCFLOW_B7_CPUPROFILE=prefix writes prefix-KIND.pprof (relative to
	// the package directory), to see where one server's time goes.
	if prefix := os.Getenv("SVCFLOW_B7_CPUPROFILE"); prefix != "" {
		f, err := os.Create(prefix + "-" + kind + ".pprof")
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer func() { pprof.StopCPUProfile(); f.Close() }()
		}
	}
	fmt.Println(url)
	_, _ = io.Copy(io.Discard, os.Stdin) // until the benchmark closes it
	stop()
	return 0
}

// b7Server is a B7 server running in a child process of its own, so that
// its garbage collector works only for it.
type b7Server struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	url   string
}

func startB7Server(b *testing.B, kind string) *b7Server {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), b7Env+"="+kind)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.Fatalf("%s server: %v", kind, err)
	}
	return &b7Server{cmd: cmd, stdin: stdin, url: strings.TrimSpace(line)}
}

// stop ends the server and returns the CPU time it used.
func (s *b7Server) stop(b *testing.B) time.Duration {
	_ = s.stdin.Close()
	if err := s.cmd.Wait(); err != nil {
		b.Errorf("server: %v", err)
	}
	return s.cmd.ProcessState.UserTime() + s.cmd.ProcessState.SystemTime()
}

// B7: requests per second through a channel (HTTP source + flow + memory
// store + supervisor, with and without traces) versus a bare net/http
// handler running the same flow. A channel whose store keeps nothing
// ("nostore", no trace either; not a configuration to run, since it loses
// what it is given) shows what the HTTP source and the supervisor cost
// alone. Each server runs in a process of its own
// (so that one's garbage is not collected in another's time); they take
// the load in alternating rounds, whose order rotates, so that drift of
// the machine hits them alike. ratio-* is channel / bare requests per
// second; cpu-ratio-* the servers' CPU time per request, channel / bare
// (warm-up requests included).
func BenchmarkB7HTTP(b *testing.B) {
	kinds := []string{"channel", "notrace", "nostore", "bare"}
	servers := make([]*b7Server, len(kinds))
	loaders := make([]*loader, len(kinds))
	for i, k := range kinds {
		servers[i] = startB7Server(b, k)
		loaders[i] = newLoader()
	}
	warm := newLoader()
	for _, s := range servers {
		warm.send(b, s.url, 2000)
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
	bare := len(kinds) - 1
	bareRPS := loaders[bare].report(b, "bare")
	total := float64(b.N + 2000) // with the warm-up
	for i, k := range kinds {
		b.ReportMetric(float64(cpu[i].Microseconds())/total, k+"-cpu-µs/req")
		if i != bare {
			b.ReportMetric(loaders[i].report(b, k)/bareRPS, "ratio-"+k)
			b.ReportMetric(float64(cpu[i])/float64(cpu[bare]), "cpu-ratio-"+k)
		}
	}
}

// discard is a store that keeps nothing, for the "nostore" server.
type discard struct{}

func (discard) Put(context.Context, *message.Message) error   { return nil }
func (discard) Begin(context.Context, *message.Message) error { return nil }
func (discard) Transition(context.Context, string, store.State, store.Update) error {
	return nil
}
func (discard) Get(context.Context, string) (*store.Record, error)           { return nil, store.ErrNotFound }
func (discard) Search(context.Context, store.Query) ([]*store.Record, error) { return nil, nil }
func (discard) Count(context.Context, store.Query) (int, error)              { return 0, nil }
func (discard) Close() error                                                 { return nil }

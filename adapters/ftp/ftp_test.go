package ftp_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/channel"
	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/ftp"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func TestMain(m *testing.M) {
	// The test FTP server (not the source) may leave a passive data
	// listener that no client connected to, until its 60s accept timeout.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("goftp.io/server/v2.(*passiveSocket).ListenAndServe.func1"),
		goleak.IgnoreAnyFunction("goftp.io/server/v2.(*Session).Serve"))
}

var quiet = slog.New(slog.DiscardHandler)

// runs counts the flow's runs per file name and keeps the last body.
type runs struct {
	mu     sync.Mutex
	n      map[string]int
	bodies map[string]any
	meta   map[string]any
}

func (r *runs) count(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[name]
}

// newChannel is a channel over st whose flow records each run and
// rejects files whose content is "reject" and fails those whose content
// is "fail".
func newChannel(t *testing.T, src channel.Source, st store.Store, r *runs) *channel.Channel {
	t.Helper()
	f := flow.New("files", flow.Step("record", func(ctx context.Context, c *fc.Context) error {
		meta, _ := c.Get("meta")
		m := meta.(map[string]any)
		name := m[ftp.MetaName].(string)
		body, _ := c.Get("body")
		r.mu.Lock()
		if r.n == nil {
			r.n, r.bodies, r.meta = map[string]int{}, map[string]any{}, map[string]any{}
		}
		r.n[name]++
		r.bodies[name] = body
		r.meta[name] = m
		r.mu.Unlock()
		switch body {
		case "reject":
			return errors.Stop("unwanted")
		case "fail":
			return errors.New("broken")
		}
		return nil
	})).MustBuild()
	var srcs []channel.Source
	if src != nil {
		srcs = append(srcs, src)
	}
	ch, err := channel.New(channel.Config{Name: "files", Flow: f, Store: st, Sources: srcs, Logger: quiet})
	require.NoError(t, err)
	return ch
}

func newSource(t *testing.T, srv *testServer, spec ftp.Spec) *ftp.Source {
	t.Helper()
	spec.Address = srv.addr
	spec.User, spec.Password = testUser, testPass
	if spec.Every == 0 {
		spec.Every = 20 * time.Millisecond
	}
	if spec.Timeout == 0 {
		spec.Timeout = 5 * time.Second
	}
	src, err := ftp.New(spec, ftp.WithLogger(quiet))
	require.NoError(t, err)
	return src
}

func countState(t *testing.T, st store.Store, s store.State) int {
	n, err := st.Count(context.Background(), store.Query{States: []store.State{s}})
	require.NoError(t, err)
	return n
}

// TestFilesProcessedOnceAndDeleted: the matching files of the folder are
// each run once and deleted; others are left alone.
func TestFilesProcessedOnceAndDeleted(t *testing.T) {
	srv := startServer(t)
	srv.put(t, "in/a.json", `{"n": 1}`)
	srv.put(t, "in/b.txt", "hello")
	srv.put(t, "in/c.skip", "not mine")
	srv.put(t, "in/sub/d.json", "{}")
	srv.put(t, "other.json", "{}")
	src := newSource(t, srv, ftp.Spec{Folder: "/in", Regex: `\.(json|txt)$`})
	st := store.NewMemory()
	var r runs
	ch := newChannel(t, src, st, &r)
	require.NoError(t, ch.Start(t.Context()))
	require.Eventually(t, func() bool { return countState(t, st, store.Done) == 2 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return !srv.exists("in/a.json") && !srv.exists("in/b.txt") }, 10*time.Second, 10*time.Millisecond)
	srv.put(t, "in/e.json", `{"n": 5}`) // a file that arrives later
	require.Eventually(t, func() bool { return countState(t, st, store.Done) == 3 && !srv.exists("in/e.json") }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, ch.Stop(context.Background()))

	assert.Equal(t, 1, r.count("a.json"))
	assert.Equal(t, 1, r.count("b.txt"))
	assert.Equal(t, 1, r.count("e.json"))
	assert.Equal(t, 0, r.count("c.skip"), "not matched by the regex")
	assert.True(t, srv.exists("in/c.skip"))
	assert.True(t, srv.exists("in/sub/d.json"), "sub-folders are not entered")
	assert.True(t, srv.exists("other.json"))
	assert.Equal(t, "hello", r.bodies["b.txt"], "text content is the body")
	meta := r.meta["b.txt"].(map[string]any)
	assert.Equal(t, "/in/b.txt", meta[ftp.MetaPath])
	assert.Equal(t, "5", meta[ftp.MetaSize])
	assert.Equal(t, srv.addr, meta[ftp.MetaAddress])
	assert.NotEmpty(t, meta[ftp.MetaModTime])
	rec, err := st.Get(context.Background(), meta["id"].(string))
	require.NoError(t, err)
	assert.Equal(t, "text/plain; charset=utf-8", rec.Message.ContentType)
}

// TestMoveAndFailed: done files are moved to move_to, rejected and
// failed ones to failed; a glob selects names too.
func TestMoveAndFailed(t *testing.T) {
	srv := startServer(t)
	srv.put(t, "in/ok.csv", "a,b\n1,2\n")
	srv.put(t, "in/no.csv", "reject")
	srv.put(t, "in/bad.csv", "fail")
	srv.put(t, "in/x.json", "{}")
	src := newSource(t, srv, ftp.Spec{Folder: "/in", Glob: "*.csv", After: ftp.AfterMove, Failed: "/errors"})
	assert.Equal(t, "/in/done", src.Spec().MoveTo, "move_to defaults to done under the folder")
	st := store.NewMemory()
	var r runs
	ch := newChannel(t, src, st, &r)
	require.NoError(t, ch.Start(t.Context()))
	require.Eventually(t, func() bool {
		return srv.exists("in/done/ok.csv") && srv.exists("errors/no.csv") && srv.exists("errors/bad.csv")
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, ch.Stop(context.Background()))
	assert.False(t, srv.exists("in/ok.csv"))
	assert.True(t, srv.exists("in/x.json"), "not matched by the glob")
	assert.Equal(t, 1, countState(t, st, store.Done))
	assert.Equal(t, 1, countState(t, st, store.Rejected))
	assert.Equal(t, 1, countState(t, st, store.Error))
}

// TestKeepAndRestart: with after: keep, a file stays and is run once,
// neither at the next polls nor by a new source over the same store (a
// restart); a file that failed without a failed folder stays and is
// tried again at the next start only.
func TestKeepAndRestart(t *testing.T) {
	srv := startServer(t)
	srv.put(t, "a.txt", "one")
	srv.put(t, "b.txt", "two")
	srv.put(t, "c.txt", "fail")
	st := store.NewMemory()
	var r runs
	var mu sync.Mutex
	deliveries := map[string]int{}
	delivered := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return deliveries[name]
	}
	run := func(marker string) {
		src := newSource(t, srv, ftp.Spec{After: ftp.AfterKeep})
		ch := newChannel(t, nil, st, &r) // the test runs the source itself, to count deliveries
		require.NoError(t, ch.Start(t.Context()))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() {
			done <- src.Run(ctx, channel.HandlerFunc(func(ctx context.Context, m *message.Message) channel.Result {
				mu.Lock()
				deliveries[m.Meta[ftp.MetaName]]++
				mu.Unlock()
				return ch.Handle(ctx, m)
			}))
		}()
		// Two files put one after the other are each delivered by a later
		// poll than the one before: polls that would deliver a.txt again
		// if the source did not remember it.
		for _, name := range []string{marker + "-1.txt", marker + "-2.txt"} {
			srv.put(t, name, name)
			require.Eventually(t, func() bool { return delivered(name) == 1 }, 10*time.Second, 5*time.Millisecond)
		}
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, ch.Stop(context.Background()))
	}
	run("first")
	assert.Equal(t, 1, delivered("a.txt"), "a kept file is delivered once while the source runs")
	assert.Equal(t, 1, delivered("c.txt"), "a failed file is not tried again in the same run")
	run("second")
	assert.Equal(t, 2, delivered("a.txt"), "the next start sees it again")
	assert.Equal(t, 1, r.count("a.txt"), "and the store answers it without running it")
	assert.Equal(t, 1, r.count("b.txt"))
	assert.Equal(t, 2, r.count("c.txt"), "the failed file ran again at the next start")
	assert.Equal(t, 1, r.count("first-1.txt"))
	assert.True(t, srv.exists("a.txt"))
	assert.True(t, srv.exists("c.txt"))
}

// TestConnectionDropMidDownload: the server cuts the connection halfway
// through a download and is down for a while; the source reconnects and
// the file is processed once, whole.
func TestConnectionDropMidDownload(t *testing.T) {
	srv := startServer(t)
	big := strings.Repeat("0123456789abcdef", 64<<10/16) // 64 KiB
	srv.put(t, "in/big.txt", big)
	srv.driver.mu.Lock()
	srv.driver.dropOn = "/in/big.txt"
	srv.driver.mu.Unlock()
	src := newSource(t, srv, ftp.Spec{Folder: "/in"})
	st := store.NewMemory()
	var r runs
	ch := newChannel(t, src, st, &r)
	require.NoError(t, ch.Start(t.Context()))
	require.Eventually(t, func() bool {
		srv.driver.mu.Lock()
		defer srv.driver.mu.Unlock()
		return srv.driver.dropped == 1
	}, 10*time.Second, 5*time.Millisecond)
	srv.restart() // down, then up again on the same port
	require.Eventually(t, func() bool { return countState(t, st, store.Done) == 1 && !srv.exists("in/big.txt") }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, ch.Stop(context.Background()))
	assert.Equal(t, 1, r.count("big.txt"))
	assert.Equal(t, big, r.bodies["big.txt"], "the whole file, not the half before the cut")
	assert.GreaterOrEqual(t, srv.driver.downloads("/in/big.txt"), 2)
}

// TestTLS: explicit TLS (AUTH TLS); a certificate that is not trusted
// is refused unless insecure_skip_verify.
func TestTLS(t *testing.T) {
	for _, mode := range []string{"explicit"} {
		t.Run(mode, func(t *testing.T) {
			root, addr := startTLSServer(t, mode == "explicit")
			require.NoError(t, os.WriteFile(filepath.Join(root, "a.txt"), []byte("secret"), 0o644))
			spec := ftp.Spec{Address: addr, User: testUser, Password: testPass, TLS: mode, Every: 20 * time.Millisecond, Timeout: 5 * time.Second}
			src, err := ftp.New(spec, ftp.WithLogger(quiet))
			require.NoError(t, err)
			err = src.Connect(t.Context())
			require.Error(t, err, "a self-signed certificate is not trusted")
			assert.Contains(t, err.Error(), addr)

			spec.InsecureSkipVerify = true
			src, err = ftp.New(spec, ftp.WithLogger(quiet))
			require.NoError(t, err)
			st := store.NewMemory()
			var r runs
			ch := newChannel(t, src, st, &r)
			require.NoError(t, ch.Start(t.Context()))
			require.Eventually(t, func() bool {
				_, err := os.Stat(filepath.Join(root, "a.txt"))
				return countState(t, st, store.Done) == 1 && err != nil
			}, 10*time.Second, 10*time.Millisecond)
			require.NoError(t, ch.Stop(context.Background()))
			assert.Equal(t, "secret", r.bodies["a.txt"])
		})
	}
}

// TestBadAddress: a first connection that fails ends Run with an error
// naming the address; so do refused credentials.
func TestBadAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	src, err := ftp.New(ftp.Spec{Address: addr, Timeout: 2 * time.Second}, ftp.WithLogger(quiet))
	require.NoError(t, err)
	err = src.Run(t.Context(), channel.HandlerFunc(func(context.Context, *message.Message) channel.Result { return channel.Result{} }))
	require.Error(t, err)
	assert.Contains(t, err.Error(), addr)

	srv := startServer(t)
	src, err = ftp.New(ftp.Spec{Address: srv.addr, User: testUser, Password: "wrong"}, ftp.WithLogger(quiet))
	require.NoError(t, err)
	err = src.Connect(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), srv.addr)
	assert.Contains(t, err.Error(), "login as svc")

	src, err = ftp.New(ftp.Spec{Address: srv.addr, User: testUser, Password: testPass, Folder: "/missing"}, ftp.WithLogger(quiet))
	require.NoError(t, err)
	err = src.Connect(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "list /missing")
}

// TestServeStartFails: serve connects the ftp sources before the
// channels start: a bad address stops it with the address.
func TestServeStartFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	cfg := load(t, `version: 1
flows:
  work:
    steps: [{set: {x: "1"}}]
channels:
  work:
    from: {ftp: {address: "`+addr+`", timeout: 2s}}
    flow: work
    store: memory
`)
	s, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "off", Logger: quiet})
	require.NoError(t, err)
	err = s.Run(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), addr)
}

// TestServeYAML: a channel whose source is ftp, from YAML, under serve.
func TestServeYAML(t *testing.T) {
	srv := startServer(t)
	srv.put(t, "drop/o-1.json", `{"qty": 2}`)
	t.Setenv("FTP_TEST_PASSWORD", testPass)
	cfg := load(t, `version: 1
flows:
  work:
    input: [qty]
    steps: [{set: {total: "qty * 2"}}]
channels:
  work:
    from: {ftp: {address: "`+srv.addr+`", user: svc, password: "${FTP_TEST_PASSWORD}", folder: /drop, regex: '^o-\d+\.json$', every: 20ms, after: move, move_to: /archive}}
    flow: work
    store: memory
`)
	s, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "off", Logger: quiet})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	require.Eventually(t, func() bool { return srv.exists("archive/o-1.json") }, 10*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
}

func load(t *testing.T, text string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "serve.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	cfg, err := config.Load([]string{path})
	require.NoError(t, err)
	return cfg
}

// TestSpecErrors: spec errors are reported at file:line:col when the
// channels are checked (flowrun validate), and connect to nothing.
func TestSpecErrors(t *testing.T) {
	cfg := load(t, `version: 1
flows:
  work:
    steps: [{set: {x: "1"}}]
channels:
  work:
    from: {ftp: {address: "127.0.0.1:1", regex: "(", every: soon}}
    flow: work
    store: memory
  other:
    from: {ftp: {address: "127.0.0.1:1", after: shred}}
    flow: work
    store: memory
  third:
    from: {ftp: {user: x}}
    flow: work
    store: memory
`)
	err := serve.Check(cfg, serve.Options{DataDir: t.TempDir()})
	require.Error(t, err)
	t.Log(err)
	for _, want := range []string{
		`serve.yaml:7:61: channel "work": from: ftp: every: expected a duration`,
		`serve.yaml:11:49: channel "other": from: ftp: after: `,
		`serve.yaml:15:17: channel "third": from: ftp: missing address`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	cfg = load(t, `version: 1
flows:
  work:
    steps: [{set: {x: "1"}}]
channels:
  work:
    from: {ftp: {address: "127.0.0.1:1", regex: "("}}
    flow: work
    store: memory
`)
	err = serve.Check(cfg, serve.Options{DataDir: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `serve.yaml:7:11: channel "work": from: ftp: regex: "(": error parsing regexp`)
	assert.ErrorIs(t, err, ftp.ErrInvalid)
}

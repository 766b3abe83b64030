package microservicebus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/bus"
	snats "github.com/svcflow/svcflow/adapters/nats"
	"github.com/svcflow/svcflow/cmd/flowrun/cli"
	"github.com/svcflow/svcflow/errors"
)

// hubStub is the "IoT hub" of hub.yaml and edge.yaml: it records the
// readings and emails it gets, by their Idempotency-Key.
type hubStub struct {
	mu       sync.Mutex
	readings map[string]map[string]bool // ts -> keys
	emails   map[string]map[string]bool // subject -> keys
}

func (h *hubStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var b struct {
		TS          any    `json:"ts"`
		Temperature any    `json:"temperature"`
		To          string `json:"to"`
		Subject     string `json:"subject"`
	}
	key := r.Header.Get("Idempotency-Key")
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || key == "" {
		http.Error(w, `{"error": "bad request"}`, http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	add := func(m map[string]map[string]bool, k string) {
		if m[k] == nil {
			m[k] = map[string]bool{}
		}
		m[k][key] = true
	}
	switch r.URL.Path {
	case "/readings":
		add(h.readings, fmt.Sprint(b.TS))
	case "/emails":
		add(h.emails, b.Subject)
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok": true}`)
}

// count returns how many of the readings test-0..n-1 arrived, how many
// arrived under more than one message id, and how many readings not
// from the test (the sensor's) arrived.
func (h *hubStub) count(n int) (got, twice, sensor int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ts := range h.readings {
		if !strings.HasPrefix(ts, "test-") {
			sensor++
		}
	}
	for i := range n {
		if keys := h.readings["test-"+strconv.Itoa(i)]; len(keys) > 0 {
			got++
			if len(keys) > 1 {
				twice++
			}
		}
	}
	return got, twice, sensor
}

func (h *hubStub) hotEmails() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for subj := range h.emails {
		if strings.Contains(subj, "test-") {
			n++
		}
	}
	return n
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is one flowrun serve process.
type proc struct {
	cmd  *exec.Cmd
	done chan error
}

func startProc(t *testing.T, bin string, args []string, admin, logPath string) *proc {
	t.Helper()
	cmd := exec.Command(bin, append(args, "--admin", admin)...)
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	t.Cleanup(func() { log.Close() })
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	require.Eventually(t, func() bool {
		r, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	}, 60*time.Second, 20*time.Millisecond, "process ready (see %s)", logPath)
	return p
}

// metric reads one value of a process's /metrics.
func metric(t *testing.T, admin, series string) float64 {
	t.Helper()
	r, err := http.Get("http://" + admin + "/metrics")
	require.NoError(t, err)
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(t, err)
	return v
}

// TestTwoProcesses runs hub.yaml and edge.yaml as two flowrun serve
// processes on one nats-server, the services split between them, and
// drives them from a third bus (this test's, with no services of its
// own): requests and submits cross processes both ways (the test to
// emailhandler and com; the sensor in the edge to com in the hub; com to
// emailhandler), a broadcast reaches the logger of the hub, and the hub
// process SIGKILLed while readings are submitted to com and restarted
// loses none of them: every reading reaches the hub stub, each under one
// message id (its effect counted once by id).
func TestTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowrun")
	}
	bin := filepath.Join(t.TempDir(), "flowrun")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/flowrun")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: freePort(t), JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	require.NoError(t, err)
	srv.Start()
	defer func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	}()
	require.True(t, srv.ReadyForConnections(10*time.Second))
	url := srv.ClientURL()

	stub := &hubStub{readings: map[string]map[string]bool{}, emails: map[string]map[string]bool{}}
	hs := httptest.NewServer(stub)
	defer hs.Close()

	logs := t.TempDir()
	common := []string{"--set", "bus.transport.nats.url=" + url, "--set", "bus.transport.nats.ack_wait=2s",
		"--set", "vars.hub=" + hs.URL, "--drain", "10s"}
	hubData, edgeData := t.TempDir(), t.TempDir()
	hubAdmin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	edgeAdmin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	hubArgs := append([]string{"serve", "hub.yaml", "--data", hubData}, common...)
	hub := startProc(t, bin, hubArgs, hubAdmin, filepath.Join(logs, "hub.log"))
	edge := startProc(t, bin, append([]string{"serve", "edge.yaml", "--data", edgeData}, common...), edgeAdmin, filepath.Join(logs, "edge.log"))

	// This test's bus: no services, the same transport.
	tr, err := snats.NewTransport(snats.TransportSpec{URL: []string{url}, AckWait: 2 * time.Second}, "", nil)
	require.NoError(t, err)
	tb := bus.New(bus.Options{Transport: tr, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, tb.Start(t.Context()))
	defer func() { require.NoError(t, tb.Stop(context.Background())) }()
	ctx := t.Context()

	// Requests to the edge's emailhandler: a reply, and a Stop's reason.
	out, err := tb.Request(ctx, "emailhandler", "SendEmail", map[string]any{"to": "ops@example.com", "subject": "hi"})
	require.NoError(t, err)
	assert.Equal(t, true, out["sent"])
	_, err = tb.Request(ctx, "emailhandler", "SendEmail", map[string]any{"subject": "hi"})
	se, ok := errors.AsType[*errors.StopError](err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, "no recipient", se.Reason)
	_, err = tb.Request(ctx, "nobody", bus.Process, nil)
	require.ErrorIs(t, err, bus.ErrUnknownDestination)

	// The sensor (edge) submits readings to com (hub) every second.
	require.Eventually(t, func() bool { _, _, sensor := stub.count(0); return sensor > 0 }, 30*time.Second, 20*time.Millisecond,
		"a sensor reading crossed from the edge to com in the hub")

	// A broadcast reaches the hub's logger.
	require.NoError(t, tb.Submit(ctx, bus.Broadcast, "Log", map[string]any{"text": "hello all"}))
	require.Eventually(t, func() bool {
		return metric(t, hubAdmin, `svcflow_bus_messages_total{outcome="ok",service="logger"}`) >= 1
	}, 30*time.Second, 20*time.Millisecond)

	// Readings submitted to com while its process is SIGKILLed and
	// restarted: none lost, each under one id.
	const n = 300
	killed := false
	for i := range n {
		temp := 25
		if i%10 == 0 {
			temp = 35 // hot: com submits an email to the edge's emailhandler
		}
		require.NoError(t, tb.Submit(ctx, "com", bus.Process, map[string]any{"ts": "test-" + strconv.Itoa(i), "temperature": temp}))
		if i == n/3 {
			require.Eventually(t, func() bool { got, _, _ := stub.count(n); return got > 0 }, 30*time.Second, 5*time.Millisecond)
			require.NoError(t, hub.cmd.Process.Signal(syscall.SIGKILL))
			hub.done <- <-hub.done // waited for; kept for the cleanup
			killed = true
		}
	}
	require.True(t, killed)
	got, _, _ := stub.count(n)
	t.Logf("%d of %d readings reached the hub before the restart", got, n)
	hub = startProc(t, bin, hubArgs, hubAdmin, filepath.Join(logs, "hub.log"))
	require.Eventually(t, func() bool { got, _, _ := stub.count(n); return got == n }, 60*time.Second, 20*time.Millisecond,
		"every reading reaches the hub (logs in %s)", logs)
	got, twice, _ := stub.count(n)
	assert.Equal(t, n, got)
	assert.Zero(t, twice, "a reading run again after the kill keeps its message id")
	require.Eventually(t, func() bool { return stub.hotEmails() >= n/10 }, 60*time.Second, 20*time.Millisecond,
		"com (hub) submitted an email to emailhandler (edge) for every hot reading")

	// flowrun bus send reaches the edge's emailhandler from a third process.
	var sout, serr bytes.Buffer
	code := cli.Run(ctx, []string{"bus", "send", "emailhandler", "SendEmail", "--input", `{"to": "ops@example.com", "subject": "from bus send"}`,
		"edge.yaml", "--set", "bus.transport.nats.url=" + url, "--set", "vars.hub=" + hs.URL}, cli.WithStdio(nil, &sout, &serr))
	require.Equal(t, 0, code, serr.String())
	assert.Contains(t, sout.String(), `"sent": true`)

	for _, p := range []*proc{hub, edge} {
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		err := <-p.done
		p.done <- err // for the cleanup
		require.NoError(t, err)
	}
}

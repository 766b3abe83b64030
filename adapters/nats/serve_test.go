package nats_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	_ "github.com/svcflow/svcflow/adapters/component/all"
	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/serve"
)

func load(t *testing.T, text string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "serve.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	cfg, err := config.Load([]string{path})
	require.NoError(t, err)
	return cfg
}

const embeddedYAML = `version: 1
flows:
  work:
    input: [kind, qty, meta]
    steps:
      - stop: {if: "kind == 'stop'", reason: "unwanted"}
      - set: {total: "qty * 2"}
      - publish: {subject: "done.{{.kind}}", body_template: '{"id": {{.meta.id}}, "total": {{.total}}}', into: ack}
channels:
  work:
    from: {nats: {listen: "127.0.0.1:0", stream: WORK, subjects: [work.>], dead_letter: dead.work}}
    flow: work
    store: memory
`

// TestServeEmbedded: a nats source with no url runs an embedded
// nats-server storing under the data folder; the publish step of the
// flow publishes to it with the message id (a repeated run is a
// duplicate the stream drops); /readyz and /metrics report the source.
func TestServeEmbedded(t *testing.T) {
	data := t.TempDir()
	srv, err := serve.New(load(t, embeddedYAML), serve.Options{DataDir: data, Admin: "127.0.0.1:0", Drain: 5 * time.Second, Logger: quiet})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	addrs := srv.Addrs()
	require.NotEmpty(t, addrs["nats"], "the embedded server's URL")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	admin := "http://" + addrs["admin"]
	get := func(path string) (int, string) {
		r, err := http.Get(admin + path)
		if err != nil {
			return 0, ""
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	require.Eventually(t, func() bool { code, _ := get("/readyz"); return code == 200 }, 10*time.Second, 10*time.Millisecond)
	_, err = os.Stat(filepath.Join(data, "nats", "jetstream"))
	require.NoError(t, err, "JetStream stores under the data folder")

	nc, js := client(t, addrs["nats"])
	_ = nc
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "DONE", Subjects: []string{"done.>"}})
	require.NoError(t, err)
	publish(t, js, "work.a", "m1", `{"kind": "gold", "qty": 3}`)
	publish(t, js, "work.a", "m2", `{"kind": "stop", "qty": 1}`)
	publish(t, js, "work.a", "m1", `{"kind": "gold", "qty": 3}`) // a duplicate: the stream drops it

	doneStream, err := js.Stream(context.Background(), "DONE")
	require.NoError(t, err)
	cons, err := doneStream.OrderedConsumer(context.Background(), jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	require.NoError(t, err)
	assert.JSONEq(t, `{"id": "m1", "total": 6}`, string(m.Data()))
	assert.Equal(t, "done.gold", m.Subject())
	assert.True(t, strings.HasPrefix(m.Headers().Get(natsgo.MsgIdHdr), "m1."), "the message id is meta.id and the step's name")

	ch, ok := srv.Channel("work")
	require.True(t, ok)
	require.Eventually(t, func() bool { return ch.Status().Outcomes["rejected"] == 1 }, 10*time.Second, 10*time.Millisecond)
	res, err := ch.Replay(context.Background(), "m1")
	require.NoError(t, err)
	require.NoError(t, res.Err)
	assert.Equal(t, true, res.Message.Context["ack"].(map[string]any)["duplicate"], "a repeated publish is a duplicate")
	info, err := doneStream.Info(context.Background())
	require.NoError(t, err)
	assert.Equal(t, uint64(1), info.State.Msgs, "published once")

	require.Eventually(t, func() bool {
		_, body := get("/metrics")
		return strings.Contains(body, `svcflow_nats_messages_total{channel="work",consumer="work",event="acked",stream="WORK"} 2`) &&
			strings.Contains(body, `svcflow_nats_consumer_pending{channel="work",consumer="work",stream="WORK"} 0`)
	}, 10*time.Second, 10*time.Millisecond)
	_, body := get("/metrics")
	assert.Contains(t, body, `svcflow_nats_messages_total{channel="work",consumer="work",event="delivered",stream="WORK"} 2`)
	assert.Contains(t, body, `svcflow_nats_connected{channel="work",consumer="work",stream="WORK"} 1`)
	assert.Equal(t, 1, strings.Count(body, "# TYPE svcflow_nats_messages_total"))
}

// TestServeReadyzFollowsConnection: /readyz answers 503 naming nats while
// the server is away, and 200 again once the source reconnected.
func TestServeReadyzFollowsConnection(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	ns := startServer(t, dir, port)
	url := ns.ClientURL()
	cfg := load(t, `version: 1
flows:
  work:
    steps: [{set: {x: "1"}}]
channels:
  work:
    from: {nats: {url: "`+url+`", stream: WORK, subjects: [work.>]}}
    flow: work
    store: memory
`)
	srv, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "127.0.0.1:0", Drain: 5 * time.Second, Logger: quiet})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	admin := "http://" + srv.Addrs()["admin"]
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	readyz := func() (int, string) {
		r, err := http.Get(admin + "/readyz")
		if err != nil {
			return 0, ""
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	require.Eventually(t, func() bool { code, _ := readyz(); return code == 200 }, 10*time.Second, 10*time.Millisecond)
	stopServer(ns)
	require.Eventually(t, func() bool { code, body := readyz(); return code == 503 && strings.Contains(body, `"nats"`) }, 10*time.Second, 10*time.Millisecond)
	ns = startServer(t, dir, port)
	require.Eventually(t, func() bool { code, _ := readyz(); return code == 200 }, 20*time.Second, 10*time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	stopServer(ns)
}

// TestServeBadURL: serve fails to start, naming the URL.
func TestServeBadURL(t *testing.T) {
	url := "nats://127.0.0.1:" + itoa(freePort(t))
	cfg := load(t, `version: 1
flows:
  work:
    steps: [{set: {x: "1"}}]
channels:
  work:
    from: {nats: {url: "`+url+`", stream: WORK, subjects: [work.>]}}
    flow: work
    store: memory
`)
	srv, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "off", Logger: quiet})
	require.NoError(t, err)
	err = srv.Run(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "connect "+url)
}

// TestValidatePositions: nats spec errors are reported at file:line:col,
// those of steps when the file is read, those of sources when its
// channels are checked (flowrun validate does both).
func TestValidatePositions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serve.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`version: 1
flows:
  work:
    steps:
      - set: {x: "1"}
      - publish: {subject: "a.*.b", url: "http://x"}
`), 0o644))
	_, err := config.Load([]string{path})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `serve.yaml:6:28: publish: subject: "a.*.b" is not a subject without wildcards`)
	assert.Contains(t, err.Error(), `serve.yaml:6:42: publish: url: "http://x" is not a NATS URL`)

	cfg := load(t, `version: 1
flows:
  work:
    steps: [{set: {x: "1"}}]
channels:
  work:
    from:
      nats: {stream: WORK, subjects: [work.>], retention: forever, ack_wait: soon, dead_letter: work.dead}
    flow: work
    store: memory
  other:
    from: {nats: {subjects: [x.>], url: "localhost:4222"}}
    flow: work
    store: memory
`)
	err = serve.Check(cfg, serve.Options{DataDir: t.TempDir()})
	require.Error(t, err)
	t.Log(err)
	for _, want := range []string{
		`serve.yaml:8:59: channel "work": from: nats: retention: expected workqueue, limits or interest, got "forever"`,
		`serve.yaml:8:78: channel "work": from: nats: ack_wait: expected a duration such as 250ms or 2s, got "soon"`,
		`serve.yaml:12:18: channel "other": from: nats: missing stream (the JetStream stream)`,
	} {
		assert.Contains(t, err.Error(), want)
	}

	// What the constructor checks is positioned at the source.
	cfg = load(t, `version: 1
flows:
  work:
    steps: [{set: {x: "1"}}]
channels:
  work:
    from: {nats: {url: "localhost:4222", stream: WORK, subjects: [work.>], dead_letter: work.dead}}
    flow: work
    store: memory
`)
	err = serve.Check(cfg, serve.Options{DataDir: t.TempDir()})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `serve.yaml:7:11: channel "work": from: nats: url: "localhost:4222" is not a NATS URL`)
	assert.Contains(t, err.Error(), `dead_letter: "work.dead" is one of the stream's subjects (work.>)`)
}

package nats_test

import (
	"context"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snats "github.com/svcflow/svcflow/adapters/nats"
	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
)

const sinkYAML = `version: 1
flows:
  work:
    input: [qty, meta]
    steps:
      - set: {total: "qty * 2"}
channels:
  work:
    from: {nats: {listen: "127.0.0.1:0", stream: WORK, subjects: [work.>]}}
    flow: work
    store: memory
    to:
      - nats: {listen: "127.0.0.1:0", subject: sunk.work}
      - nats: {listen: "127.0.0.1:0", subject: sunk.tmpl, id: "{{.meta.id}}.tmpl", body_template: '{"id": {{.meta.id}}, "total": {{.total}}}'}
  bad:
    from: {nats: {listen: "127.0.0.1:0", stream: BAD, subjects: [bad.>], max_deliver: 2, dead_letter: dead.bad}}
    flow: work
    store: memory
    retry_after: 10ms
    to: {nats: {listen: "127.0.0.1:0", subject: nowhere.bad, timeout: 1s}}
`

// TestServeSinks: channels send the output of each run to their sinks
// (to:) before the ack, on the embedded server: the output but meta, or
// a template of it, with the message id as Nats-Msg-Id; a sink that fails
// fails the message with a retry: it is delivered again, then
// dead-lettered with the sink's error.
func TestServeSinks(t *testing.T) {
	data := t.TempDir()
	srv, err := serve.New(load(t, sinkYAML), serve.Options{DataDir: data, Drain: 5 * time.Second, Logger: quiet})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	url := srv.Addrs()["nats"]
	require.NotEmpty(t, url)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	_, js := client(t, url)
	sunk, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: "SUNK", Subjects: []string{"sunk.>"}})
	require.NoError(t, err)
	publish(t, js, "work.a", "m1", `{"qty": 3}`)

	cons, err := sunk.OrderedConsumer(context.Background(), jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	got := map[string]jetstream.Msg{}
	for len(got) < 2 {
		m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		require.NoError(t, err)
		got[m.Subject()] = m
	}
	assert.JSONEq(t, `{"qty": 3, "total": 6}`, string(got["sunk.work"].Data()), "the output but meta")
	assert.JSONEq(t, `{"id": "m1", "total": 6}`, string(got["sunk.tmpl"].Data()))
	assert.Equal(t, "m1", got["sunk.work"].Headers().Get(natsgo.MsgIdHdr), "the message id dedupes a repeat")
	assert.Equal(t, "m1.tmpl", got["sunk.tmpl"].Headers().Get(natsgo.MsgIdHdr))
	ch, ok := srv.Channel("work")
	require.True(t, ok)
	require.Eventually(t, func() bool {
		rec, err := ch.Store().Get(context.Background(), "m1")
		return err == nil && rec.State == store.Done
	}, 10*time.Second, 5*time.Millisecond)

	// A sink that cannot publish: retried, then dead-lettered with its error.
	publish(t, js, "bad.a", "b1", `{"qty": 1}`)
	dead, err := js.StreamNameBySubject(context.Background(), "dead.bad")
	require.NoError(t, err)
	ds, err := js.Stream(context.Background(), dead)
	require.NoError(t, err)
	dc, err := ds.OrderedConsumer(context.Background(), jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	m, err := dc.Next(jetstream.FetchMaxWait(20 * time.Second))
	require.NoError(t, err)
	assert.Contains(t, m.Headers().Get(snats.HeaderError), "sink nats nowhere.bad")
	assert.Equal(t, "2", m.Headers().Get(snats.HeaderDeliveries), "delivered again before it was dead-lettered")
	bad, ok := srv.Channel("bad")
	require.True(t, ok)
	rec, err := bad.Store().Get(context.Background(), "b1")
	require.NoError(t, err)
	assert.Equal(t, store.Error, rec.State)
	assert.Contains(t, rec.Err, "sink nats nowhere.bad")
}

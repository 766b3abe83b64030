package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPublish feeds a stream from a JSONL file with ids from a field, then
// from standard input with generated ids; publishing the same input again
// is deduplicated by the stream.
func TestPublish(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	require.NoError(t, err)
	srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	require.True(t, srv.ReadyForConnections(10*time.Second))
	nc, err := natsgo.Connect(srv.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	require.NoError(t, err)
	count := func() uint64 {
		info, err := stream.Info(ctx)
		require.NoError(t, err)
		return info.State.Msgs
	}

	file := writeFile(t, "orders.jsonl", "{\"order_id\": \"o-1\", \"total\": 3}\n\n{\"order_id\": 2, \"total\": 4}\nnot json\n{\"total\": 5}\n")
	r := flowrun(t, "", "publish", file, "--subject", "orders.new", "--url", srv.ClientURL(), "--id", "order_id", "--progress", "lines")
	assert.Equal(t, ExitFailure, r.code, r.errOut)
	assert.Contains(t, r.errOut, "line 4: not JSON")
	assert.Contains(t, r.errOut, "line 5: --id order_id: the record has no such field")
	assert.Contains(t, r.errOut, "publish: 4 records to orders.new in")
	assert.Contains(t, r.errOut, "2 published, 0 duplicates, 2 failed")
	assert.Equal(t, uint64(2), count())
	m, err := stream.GetMsg(ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, "2", m.Header.Get(natsgo.MsgIdHdr), "a number id keeps its digits")
	assert.JSONEq(t, `{"order_id": 2, "total": 4}`, string(m.Data))

	in := strings.Repeat("{\"a\": 1}\n", 3)
	r = flowrun(t, in, "publish", "-", "--subject", "orders.new", "--url", srv.ClientURL(), "--progress", "none")
	assert.Equal(t, ExitOK, r.code, r.errOut)
	assert.Contains(t, r.errOut, "3 published, 0 duplicates, 0 failed", "identical lines are different records")
	r = flowrun(t, in, "publish", "-", "--subject", "orders.new", "--url", srv.ClientURL(), "--progress", "none")
	assert.Equal(t, ExitOK, r.code, r.errOut)
	assert.Contains(t, r.errOut, "0 published, 3 duplicates, 0 failed", "the same input again is deduplicated")
	assert.Equal(t, uint64(5), count())

	r = flowrun(t, "", "publish", file, "--url", srv.ClientURL())
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, "--subject is required")
	r = flowrun(t, "", "publish", file, "--subject", "x", "--url", "nats://127.0.0.1:1", "--timeout", "1s")
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, "connect nats://127.0.0.1:1")
}

package nats_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	snats "github.com/svcflow/svcflow/adapters/nats"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// TestMaxDeliveriesWithoutOutcome: a message whose every delivery ends
// without an outcome (each run cut short, as when the worker is killed
// during it: the source never settles it) is dead-lettered once the
// server reports max_deliver reached: it lands on the dead-letter subject
// with an error saying the deliveries ran out without an outcome, leaves
// the work-queue stream, and its record in the channel's store is dead.
func TestMaxDeliveriesWithoutOutcome(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	defer stopServer(srv)
	url := srv.ClientURL()
	sp := spec(url)
	sp.MaxDeliver, sp.AckWait, sp.DeadLetter = 2, time.Second, "dead.work"
	src, err := snats.NewSource("crashy", sp, "", quiet)
	require.NoError(t, err)
	var r runs
	cut := flow.Step("cut", func(ctx context.Context, c *fc.Context) error {
		r.add(metaID(c))
		return context.Canceled // the run ends with no outcome, as with a killed worker
	})
	st := store.NewMemory()
	runChannel(t, "crashy", flow.New("crashy", cut).MustBuild(), src, st)

	_, js := client(t, url)
	publish(t, js, "work.x", "c1", `{"n": 1}`)

	ctx := context.Background()
	var dead jetstream.Msg
	require.Eventually(t, func() bool {
		name, err := js.StreamNameBySubject(ctx, "dead.work")
		if err != nil {
			return false
		}
		s, err := js.Stream(ctx, name)
		if err != nil {
			return false
		}
		c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return false
		}
		dead, err = c.Next(jetstream.FetchMaxWait(200 * time.Millisecond))
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "the message reaches the dead-letter subject")
	assert.JSONEq(t, `{"n": 1}`, string(dead.Data()))
	assert.Contains(t, dead.Headers().Get(snats.HeaderError), "deliveries exhausted without an outcome")
	assert.Equal(t, "c1", dead.Headers().Get(snats.HeaderID))
	assert.Equal(t, "2", dead.Headers().Get(snats.HeaderDeliveries))
	assert.Equal(t, 2, r.get("c1"), "run once per delivery")

	require.Eventually(t, func() bool {
		rec, err := st.Get(ctx, "c1")
		return err == nil && rec.State == store.Dead
	}, 10*time.Second, 10*time.Millisecond, "the local record is dead")
	rec, err := st.Get(ctx, "c1")
	require.NoError(t, err)
	assert.Contains(t, rec.Err, "deliveries exhausted without an outcome")
	require.Eventually(t, func() bool {
		s, err := js.Stream(ctx, "WORK")
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.State.Msgs == 0
	}, 10*time.Second, 10*time.Millisecond, "gone from the work queue")
}

package channel_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/errors"
)

// errDiskFull stands for what a store says when its disk is full.
var errDiskFull = errors.New("write data.db: no space left on device")

// flakyStore is a store whose writes and probes fail while full is set,
// as a store on a full disk does; reads still work.
type flakyStore struct {
	store.Store
	full   atomic.Bool
	probes atomic.Int64
}

func newFlaky() *flakyStore { return &flakyStore{Store: store.NewMemory()} }

func (s *flakyStore) fail(op string) error {
	if s.full.Load() {
		return &store.OpError{Store: "flaky", Op: op, Err: errDiskFull}
	}
	return nil
}

func (s *flakyStore) Put(ctx context.Context, m *message.Message) error {
	if err := s.fail("put"); err != nil {
		return err
	}
	return s.Store.Put(ctx, m)
}

func (s *flakyStore) Begin(ctx context.Context, m *message.Message) error {
	if err := s.fail("begin"); err != nil {
		return err
	}
	return s.Store.Begin(ctx, m)
}

func (s *flakyStore) Transition(ctx context.Context, id string, to store.State, u store.Update) error {
	if err := s.fail("transition"); err != nil {
		return err
	}
	return s.Store.Transition(ctx, id, to, u)
}

func (s *flakyStore) Probe(ctx context.Context) error {
	s.probes.Add(1)
	return s.fail("probe")
}

func fastProbes(t *testing.T) {
	old := channel.ProbeInterval
	channel.ProbeInterval = 20 * time.Millisecond
	t.Cleanup(func() { channel.ProbeInterval = old })
}

func TestStartRefusesAnUnwritableStore(t *testing.T) {
	st := newFlaky()
	st.full.Store(true)
	ch, err := channel.New(channel.Config{Name: "orders", Flow: orderFlow(t), Store: st})
	require.NoError(t, err)
	err = ch.Start(t.Context())
	require.Error(t, err)
	assert.ErrorIs(t, err, channel.ErrStoreNotWritable)
	assert.ErrorIs(t, err, errDiskFull)
	assert.Equal(t, `channel "orders": start: store not writable: store flaky: probe: write data.db: no space left on device`, err.Error())
	assert.Equal(t, channel.StateStopped, ch.Status().State)

	st.full.Store(false)
	require.NoError(t, ch.Start(t.Context()), "a writable store starts")
	require.NoError(t, ch.Stop(t.Context()))
}

func TestStoreWriteFailuresAreReportedUntilAProbeSucceeds(t *testing.T) {
	fastProbes(t)
	st := newFlaky()
	ch, err := channel.New(channel.Config{Name: "orders", Flow: orderFlow(t), Store: st, RetryAfter: 3 * time.Second})
	require.NoError(t, err)
	require.NoError(t, ch.Start(t.Context()))
	defer ch.Stop(context.Background())
	ctx := t.Context()

	var accepted []string // messages answered Ack: all must be done
	handle := func(m *message.Message) channel.Result {
		res := ch.Handle(ctx, m)
		if res.Settle == channel.Ack {
			accepted = append(accepted, m.ID)
		}
		return res
	}
	res := handle(jsonMsg(t, map[string]any{"n": 1}))
	require.Equal(t, store.Done, res.State)
	assert.Empty(t, ch.Status().StoreError)

	st.full.Store(true)
	refused := jsonMsg(t, map[string]any{"n": 2})
	res = handle(refused)
	assert.Equal(t, channel.Leave, res.Settle, "a message the store cannot record is left with its source")
	assert.Equal(t, 3*time.Second, res.RetryAfter, "and redelivered later (HTTP 503 with Retry-After)")
	assert.ErrorIs(t, res.Err, errDiskFull)
	status := ch.Status()
	assert.Contains(t, status.StoreError, "no space left on device")
	assert.Equal(t, channel.StateRunning, status.State)

	// Probes run while writes fail; they fail too.
	require.Eventually(t, func() bool { return st.probes.Load() >= 3 }, 5*time.Second, 5*time.Millisecond)
	assert.NotEmpty(t, ch.Status().StoreError)

	// Space returns: a probe sees it without any traffic.
	st.full.Store(false)
	require.Eventually(t, func() bool { return ch.Status().StoreError == "" }, 5*time.Second, 5*time.Millisecond)
	n := st.probes.Load()
	time.Sleep(5 * channel.ProbeInterval)
	assert.Equal(t, n, st.probes.Load(), "probing stops once the store is writable")

	res = handle(refused) // the source delivers it again
	require.Equal(t, store.Done, res.State, res.Err)
	for _, id := range accepted {
		rec, err := ch.Store().Get(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, store.Done, rec.State, id)
	}
	assert.Len(t, accepted, 2)
}

func TestAWriteThatSucceedsClearsTheStoreError(t *testing.T) {
	st := newFlaky()
	// The write that succeeds clears the error at once, without a probe.
	ch, err := channel.New(channel.Config{Name: "orders", Flow: orderFlow(t), Store: st})
	require.NoError(t, err)
	running(t, ch)
	st.full.Store(true)
	res := ch.Handle(t.Context(), jsonMsg(t, map[string]any{"n": 1}))
	assert.Equal(t, channel.Leave, res.Settle)
	assert.NotEmpty(t, ch.Status().StoreError)
	st.full.Store(false)
	res = ch.Handle(t.Context(), jsonMsg(t, map[string]any{"n": 2}))
	assert.Equal(t, store.Done, res.State)
	assert.Empty(t, ch.Status().StoreError)
}

func TestRefusedWritesAreNotStoreFailures(t *testing.T) {
	ch, err := channel.New(channel.Config{Name: "orders", Flow: orderFlow(t)})
	require.NoError(t, err)
	running(t, ch)
	m := jsonMsg(t, map[string]any{"n": 1})
	require.Equal(t, store.Done, ch.Handle(t.Context(), m).State)
	require.Equal(t, store.Done, ch.Handle(t.Context(), m).State, "a duplicate (ErrExists) is answered from the store")
	_, err = ch.Replay(t.Context(), "missing")
	require.Error(t, err)
	assert.Empty(t, ch.Status().StoreError)
}

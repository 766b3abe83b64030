package poll_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/poll"
	"github.com/svcflow/svcflow/adapters/store"
	flowerrors "github.com/svcflow/svcflow/errors"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// logBuffer collects log lines safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func quiet() poll.Option {
	return poll.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// poller is a poll function that returns batch(n) on its n-th call (from
// 1) and records when it was called.
type poller struct {
	mu    sync.Mutex
	start time.Time
	at    []time.Duration
	batch func(n int) ([]*message.Message, error)
}

func (p *poller) poll(context.Context) ([]*message.Message, error) {
	p.mu.Lock()
	p.at = append(p.at, time.Since(p.start))
	n := len(p.at)
	p.mu.Unlock()
	if p.batch == nil {
		return nil, nil
	}
	return p.batch(n)
}

func (p *poller) times() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Duration(nil), p.at...)
}

// msgs returns messages with the given IDs.
func msgs(ids ...string) []*message.Message {
	out := make([]*message.Message, len(ids))
	for i, id := range ids {
		out[i] = &message.Message{ID: id, ContentType: message.ContentTypeJSON, Payload: []byte(`{}`)}
	}
	return out
}

// handler records handled IDs and fails the test if two calls overlap.
type handler struct {
	t        *testing.T
	mu       sync.Mutex
	ids      []string
	inFlight atomic.Int32
	block    time.Duration // (fake) time each call takes
}

func (h *handler) Handle(_ context.Context, m *message.Message) channel.Result {
	if h.inFlight.Add(1) > 1 {
		h.t.Errorf("handler called concurrently (message %s)", m.ID)
	}
	defer h.inFlight.Add(-1)
	h.mu.Lock()
	h.ids = append(h.ids, m.ID)
	h.mu.Unlock()
	if h.block > 0 {
		time.Sleep(h.block) // fake time inside the synctest bubble
	}
	return channel.Result{Settle: channel.Ack, State: "done", Message: m}
}

func (h *handler) handled() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.ids...)
}

// runFor runs src with h inside the current synctest bubble for d of fake
// time, then stops it and checks that Run returned nil.
func runFor(t *testing.T, src channel.Source, h channel.Handler, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, h) }()
	time.Sleep(d) // fake time
	cancel()
	require.NoError(t, <-done)
}

func TestPollsOnIntervalInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &poller{start: time.Now(), batch: func(n int) ([]*message.Message, error) {
			return msgs(fmt.Sprintf("%d-a", n), fmt.Sprintf("%d-b", n), fmt.Sprintf("%d-c", n)), nil
		}}
		src, err := poll.New("orders", 10*time.Second, p.poll, quiet())
		require.NoError(t, err)
		assert.Equal(t, "orders", src.Name())
		h := &handler{t: t}
		runFor(t, src, h, 35*time.Second)
		assert.Equal(t, []time.Duration{0, 10 * time.Second, 20 * time.Second, 30 * time.Second}, p.times())
		assert.Equal(t, []string{
			"1-a", "1-b", "1-c", "2-a", "2-b", "2-c", "3-a", "3-b", "3-c", "4-a", "4-b", "4-c",
		}, h.handled())
	})
}

func TestFirstPollAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &poller{start: time.Now()}
		src, err := poll.New("orders", time.Minute, p.poll, poll.WithFirstPollAfter(5*time.Second), quiet())
		require.NoError(t, err)
		runFor(t, src, &handler{t: t}, 2*time.Minute)
		assert.Equal(t, []time.Duration{5 * time.Second, 65 * time.Second}, p.times())
	})
}

func TestSlowBatchDelaysNextPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &poller{start: time.Now(), batch: func(n int) ([]*message.Message, error) {
			if n == 1 {
				return msgs("slow"), nil
			}
			return nil, nil
		}}
		src, err := poll.New("orders", 10*time.Second, p.poll, quiet())
		require.NoError(t, err)
		h := &handler{t: t, block: 25 * time.Second}
		runFor(t, src, h, 50*time.Second)
		// The first batch ends at 25s: the next poll starts at once, and the
		// ones after it come every 10s from there; no poll overlaps a batch.
		assert.Equal(t, []time.Duration{0, 25 * time.Second, 35 * time.Second, 45 * time.Second}, p.times())
		assert.Equal(t, []string{"slow"}, h.handled())
	})
}

func TestPollErrorsAreLoggedAndPollingGoesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &logBuffer{}
		p := &poller{start: time.Now(), batch: func(n int) ([]*message.Message, error) {
			switch n {
			case 2:
				return msgs("partial"), errors.New("db: connection reset")
			case 3:
				panic("poll bug")
			}
			return msgs(fmt.Sprint(n)), nil
		}}
		src, err := poll.New("orders", time.Second, p.poll, poll.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
		require.NoError(t, err)
		h := &handler{t: t}
		runFor(t, src, h, 3500*time.Millisecond)
		assert.Len(t, p.times(), 4)
		assert.Equal(t, []string{"1", "partial", "4"}, h.handled())
		assert.Contains(t, logs.String(), `msg="poll failed" source=orders err="poll: orders: db: connection reset"`)
		assert.Contains(t, logs.String(), "poll function panicked: poll bug")
	})
}

func TestStopMidBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type settled struct {
			id  string
			res channel.Result
		}
		var (
			mu      sync.Mutex
			results []settled
		)
		entered := make(chan context.Context)
		release := make(chan struct{})
		src, err := poll.New("orders", time.Minute,
			func(context.Context) ([]*message.Message, error) { return msgs("a", "b", "c"), nil },
			poll.WithSettle(func(_ context.Context, m *message.Message, r channel.Result) {
				mu.Lock()
				results = append(results, settled{m.ID, r})
				mu.Unlock()
			}), quiet())
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- src.Run(ctx, channel.HandlerFunc(func(hctx context.Context, m *message.Message) channel.Result {
				entered <- hctx
				<-release
				return channel.Result{Settle: channel.Nack, State: "error", Message: m, RetryAfter: time.Second}
			}))
		}()
		hctx := <-entered
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Run returned %v while a message was being handled", err)
		default:
		}
		assert.NoError(t, hctx.Err(), "stopping the source must not cancel the message in flight")
		close(release)
		require.NoError(t, <-done)

		require.Len(t, results, 3)
		assert.Equal(t, "a", results[0].id)
		assert.Equal(t, channel.Nack, results[0].res.Settle)
		for _, r := range results[1:] {
			assert.Equal(t, channel.Leave, r.res.Settle, r.id)
			assert.Equal(t, store.Pending, r.res.State)
			assert.Equal(t, flowerrors.KindCanceled, r.res.Outcome)
			assert.ErrorIs(t, r.res.Err, poll.ErrNotHanded)
		}
		assert.Equal(t, "b", results[1].id)
		assert.Equal(t, "c", results[2].id)
	})
}

func TestCancelInterruptsPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &logBuffer{}
		started := make(chan struct{})
		src, err := poll.New("orders", time.Minute, func(ctx context.Context) ([]*message.Message, error) {
			close(started)
			<-ctx.Done()
			return msgs("late"), ctx.Err()
		}, poll.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
		require.NoError(t, err)
		h := &handler{t: t}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx, h) }()
		<-started
		cancel()
		require.NoError(t, <-done)
		assert.Empty(t, h.handled(), "messages of a poll that ended after stop are not handed over")
		assert.NotContains(t, logs.String(), "poll failed", "a canceled poll is not an error")
		assert.Contains(t, logs.String(), "not acknowledged", "the dropped message is logged")
	})
}

func TestNewErrors(t *testing.T) {
	fn := func(context.Context) ([]*message.Message, error) { return nil, nil }
	for _, tt := range []struct {
		name  string
		every time.Duration
		fn    func(context.Context) ([]*message.Message, error)
		opts  []poll.Option
		want  string
	}{
		{"", time.Second, fn, nil, "poll: invalid poll source: empty name"},
		{"x", 0, fn, nil, "poll: x: invalid poll source: interval 0s, want > 0"},
		{"x", -time.Second, fn, nil, "interval -1s, want > 0"},
		{"x", time.Second, nil, nil, "nil poll function"},
		{"x", time.Second, fn, []poll.Option{poll.WithFirstPollAfter(-1)}, "first poll after -1ns"},
	} {
		_, err := poll.New(tt.name, tt.every, tt.fn, tt.opts...)
		require.ErrorIs(t, err, poll.ErrInvalid)
		assert.ErrorContains(t, err, tt.want)
	}
	src, err := poll.New("x", time.Second, fn)
	require.NoError(t, err)
	assert.ErrorContains(t, src.Run(context.Background(), nil), "nil handler")
}

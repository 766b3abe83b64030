package cron_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/cron"
	"github.com/svcflow/svcflow/adapters/message"
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

func quiet() cron.Option {
	return cron.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// call is one handler call seen by a test.
type call struct {
	at time.Time
	m  *message.Message
}

// recorder is a handler that records its calls and answers with result.
type recorder struct {
	mu     sync.Mutex
	calls  []call
	result func(n int, m *message.Message) channel.Result // n counts from 1
	block  time.Duration                                  // (fake) time each call takes
}

func (r *recorder) Handle(ctx context.Context, m *message.Message) channel.Result {
	r.mu.Lock()
	r.calls = append(r.calls, call{time.Now(), m})
	n := len(r.calls)
	r.mu.Unlock()
	if r.block > 0 {
		time.Sleep(r.block) // fake time inside the synctest bubble
	}
	if r.result != nil {
		return r.result(n, m)
	}
	return channel.Result{Settle: channel.Ack, State: "done", Message: m}
}

func (r *recorder) times(start time.Time) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for _, c := range r.calls {
		out = append(out, c.at.Sub(start))
	}
	return out
}

// runFor runs src with h inside the current synctest bubble for d of fake
// time, then stops it and checks that Run returned nil.
func runFor(t *testing.T, src channel.Source, h channel.Handler, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, h) }()
	time.Sleep(d) // fake time: returns once every goroutine is blocked and the clock reached d
	cancel()
	require.NoError(t, <-done)
}

func TestEveryMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		src, err := cron.New("@every 1m", quiet())
		require.NoError(t, err)
		assert.Equal(t, "cron @every 1m", src.Name())
		rec := &recorder{}
		runFor(t, src, rec, 3*time.Minute+30*time.Second)

		require.Equal(t, []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute}, rec.times(start))
		for i, c := range rec.calls {
			tick := start.Add(time.Duration(i+1) * time.Minute).UTC()
			var p cron.Payload
			require.NoError(t, json.Unmarshal(c.m.Payload, &p))
			assert.Equal(t, cron.Payload{Tick: tick.Format(time.RFC3339Nano), Schedule: "@every 1m"}, p)
			assert.Equal(t, "application/json", c.m.ContentType)
			assert.Equal(t, map[string]string{"cron.spec": "@every 1m", "cron.tick": tick.Format(time.RFC3339Nano)}, c.m.Meta)
			assert.Equal(t, cron.TickID("@every 1m", tick), c.m.ID)
			assert.True(t, c.m.Time.Equal(tick))
		}
		assert.Equal(t, `{"tick":"2000-01-01T00:01:00Z","schedule":"@every 1m"}`, string(rec.calls[0].m.Payload))
	})
}

func TestStandardSpec(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now() // the bubble's clock starts at midnight UTC
		src, err := cron.New("*/15 * * * *", cron.WithLocation(time.UTC), quiet())
		require.NoError(t, err)
		rec := &recorder{}
		runFor(t, src, rec, time.Hour)
		assert.Equal(t, []time.Duration{15 * time.Minute, 30 * time.Minute, 45 * time.Minute, time.Hour}, rec.times(start))
	})
}

func TestLocation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		plus2 := time.FixedZone("UTC+2", 2*60*60)
		src, err := cron.New("0 3 * * *", cron.WithLocation(plus2), quiet()) // 03:00 at UTC+2 is 01:00 UTC
		require.NoError(t, err)
		rec := &recorder{}
		runFor(t, src, rec, 2*time.Hour)
		assert.Equal(t, []time.Duration{time.Hour}, rec.times(start))
		assert.Equal(t, "2000-01-01T01:00:00Z", rec.calls[0].m.Meta[cron.MetaTick])
	})
}

func TestSecondsField(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		src, err := cron.New("*/10 * * * * *", cron.WithSeconds(), quiet())
		require.NoError(t, err)
		rec := &recorder{}
		runFor(t, src, rec, 35*time.Second)
		assert.Equal(t, []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second}, rec.times(start))
	})
}

func TestNoOverlapSkipsTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		logs := &logBuffer{}
		src, err := cron.New("@every 1m", cron.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
		require.NoError(t, err)
		rec := &recorder{block: 90 * time.Second}
		runFor(t, src, rec, 4*time.Minute+30*time.Second)
		// 1m runs until 2m30s, so the 2m tick is skipped; 3m runs to 4m30s
		// and 4m is skipped.
		assert.Equal(t, []time.Duration{time.Minute, 3 * time.Minute}, rec.times(start))
		assert.Contains(t, logs.String(), "cron tick skipped")
		assert.Contains(t, logs.String(), "tick=2000-01-01T00:02:00Z")
	})
}

func TestOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		src, err := cron.New("@every 1m", cron.WithOverlap(), quiet())
		require.NoError(t, err)
		rec := &recorder{block: 150 * time.Second}
		runFor(t, src, rec, 3*time.Minute+30*time.Second)
		assert.Equal(t, []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute}, rec.times(start))
	})
}

func TestNackRetriesBeforeNextTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		rec := &recorder{result: func(n int, m *message.Message) channel.Result {
			switch n {
			case 1: // the 1m tick: retry in 10s, then done
				return channel.Result{Settle: channel.Nack, State: "error", RetryAfter: 10 * time.Second}
			case 3: // the 2m tick: a retry after the 3m tick is given up
				return channel.Result{Settle: channel.Nack, State: "error", RetryAfter: 90 * time.Second}
			}
			return channel.Result{Settle: channel.Ack, State: "done"}
		}}
		src, err := cron.New("@every 1m", quiet())
		require.NoError(t, err)
		runFor(t, src, rec, 3*time.Minute+30*time.Second)
		assert.Equal(t, []time.Duration{time.Minute, time.Minute + 10*time.Second, 2 * time.Minute, 3 * time.Minute}, rec.times(start))
		assert.Equal(t, rec.calls[0].m.ID, rec.calls[1].m.ID, "a retry is the same message")
		assert.NotEqual(t, rec.calls[1].m.ID, rec.calls[2].m.ID)
	})
}

func TestStopWaitsForRunningTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		entered := make(chan context.Context)
		src, err := cron.New("@every 1m", quiet())
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- src.Run(ctx, channel.HandlerFunc(func(hctx context.Context, m *message.Message) channel.Result {
				entered <- hctx
				<-release
				return channel.Result{Settle: channel.Ack, State: "done"}
			}))
		}()
		hctx := <-entered
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Run returned %v while a tick was being handled", err)
		default:
		}
		assert.NoError(t, hctx.Err(), "stopping the source must not cancel a tick in flight")
		close(release)
		require.NoError(t, <-done)
	})
}

func TestBadSpecs(t *testing.T) {
	for _, tt := range []struct {
		spec string
		opts []cron.Option
		want string
	}{
		{"", nil, "empty spec string"},
		{"* * *", nil, "expected exactly 5 fields, found 3"},
		{"61 * * * *", nil, "end of range (61) above maximum (59)"},
		{"* * * * * *", nil, "expected exactly 5 fields, found 6"},
		{"*/10 * * * *", []cron.Option{cron.WithSeconds()}, "expected exactly 6 fields, found 5"},
		{"@every nope", nil, "failed to parse duration"},
		{"@sometimes", nil, "unrecognized descriptor"},
		{"CRON_TZ=Nowhere/Nope * * * * *", nil, "provided bad location Nowhere/Nope"},
	} {
		_, err := cron.New(tt.spec, tt.opts...)
		require.Error(t, err, tt.spec)
		assert.True(t, errors.Is(err, cron.ErrSpec), tt.spec)
		assert.ErrorContains(t, err, `cron: spec "`+tt.spec+`": invalid cron spec: `)
		assert.ErrorContains(t, err, tt.want)
	}
}

func TestTickID(t *testing.T) {
	at := time.Date(2024, 5, 1, 2, 30, 0, 0, time.UTC)
	id := cron.TickID("30 2 * * *", at)
	assert.Len(t, id, 36)
	assert.Equal(t, id, cron.TickID("30 2 * * *", at.In(time.FixedZone("X", 3600))), "the same instant in another zone")
	assert.NotEqual(t, id, cron.TickID("30 2 * * *", at.Add(24*time.Hour)))
	assert.NotEqual(t, id, cron.TickID("30 2 * * 1", at))
}

func TestNilHandler(t *testing.T) {
	src, err := cron.New("@hourly", cron.WithName("nightly"))
	require.NoError(t, err)
	assert.Equal(t, "nightly", src.Name())
	assert.ErrorContains(t, src.Run(context.Background(), nil), "cron: nightly: nil handler")
}

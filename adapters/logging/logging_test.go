package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/logging"
	"github.com/svcflow/svcflow/adapters/message"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func lines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(b.String()) {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

// TestJSONDurationsAndLevel: durations are strings, records below the
// level are dropped.
func TestJSONDurationsAndLevel(t *testing.T) {
	var b bytes.Buffer
	l, err := logging.New(&b, "json", slog.LevelInfo)
	require.NoError(t, err)
	l.Debug("hidden")
	l.Info("took", "duration", 1500*time.Microsecond, slog.Group("g", "d", 2*time.Second))
	got := lines(t, &b)
	require.Len(t, got, 1)
	assert.Equal(t, "1.5ms", got[0]["duration"])
	assert.Equal(t, map[string]any{"d": "2s"}, got[0]["g"])
	assert.NotContains(t, got[0], "channel")
}

func TestText(t *testing.T) {
	var b bytes.Buffer
	l, err := logging.New(&b, "text", slog.LevelDebug)
	require.NoError(t, err)
	l.Debug("took", "duration", 1500*time.Microsecond)
	assert.Contains(t, b.String(), "level=DEBUG msg=took duration=1.5ms\n")
}

func TestBadArguments(t *testing.T) {
	_, err := logging.New(&bytes.Buffer{}, "xml", slog.LevelInfo)
	assert.ErrorContains(t, err, `expected text or json, got "xml"`)
	_, err = logging.ParseLevel("verbose")
	assert.ErrorContains(t, err, `expected debug, info, warn or error, got "verbose"`)
	l, err := logging.ParseLevel("WARN")
	require.NoError(t, err)
	assert.Equal(t, slog.LevelWarn, l)
}

// TestTaggedWithChannelAndMessage: what a step logs with its context
// names the channel and the message.
func TestTaggedWithChannelAndMessage(t *testing.T) {
	var b bytes.Buffer
	l, err := logging.New(&b, "json", slog.LevelInfo)
	require.NoError(t, err)
	f := flow.New("f", flow.Step("say", func(ctx context.Context, c *fc.Context) error {
		l.InfoContext(ctx, "hello", "step", "say")
		return nil
	})).MustBuild()
	ch, err := channel.New(channel.Config{Name: "intake", Flow: f})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background())) // a channel handles messages while it runs
	t.Cleanup(func() { _ = ch.Stop(context.Background()) })
	m, err := message.NewJSON(map[string]any{}, nil)
	require.NoError(t, err)
	require.NoError(t, ch.Handle(t.Context(), m).Err)
	l.InfoContext(t.Context(), "outside")
	got := lines(t, &b)
	require.Len(t, got, 2)
	assert.Equal(t, "intake", got[0]["channel"])
	assert.Equal(t, m.ID, got[0]["message_id"])
	assert.Equal(t, "say", got[0]["step"])
	assert.NotContains(t, got[1], "message_id")
}

func ExampleNew() {
	var b bytes.Buffer
	l, err := logging.New(&b, "json", slog.LevelInfo)
	if err != nil {
		panic(err)
	}
	l.Info("draining", "timeout", 30*time.Second)
	var rec map[string]any
	_ = json.Unmarshal(b.Bytes(), &rec)
	fmt.Println(rec["level"], rec["msg"], rec["timeout"])
	// Output: INFO draining 30s
}

func ExampleHandler() {
	// Tag the records of a handler of your own with the channel and the
	// message of the run they are logged in.
	h := slog.NewJSONHandler(&bytes.Buffer{}, nil)
	logger := slog.New(logging.Handler(h))
	logger.Info("ready")
}

package channel

import (
	"context"

	"github.com/svcflow/svcflow/adapters/message"
)

// runKey is the context key of the message a channel runs.
type runKey struct{}

// running is what a run's context says about the run.
type running struct {
	channel, id string
}

// withRun returns ctx carrying the channel's name and the message's ID,
// for [MessageFrom].
func withRun(ctx context.Context, channel, id string) context.Context {
	return context.WithValue(ctx, runKey{}, &running{channel: channel, id: id})
}

// MessageFrom returns the channel and the ID of the message whose run ctx
// belongs to: the context a channel gives its flow, and so every step
// and middleware of the run. ok is false outside a channel's run. Loggers
// use it to tag records (package logging), tracing to name spans.
func MessageFrom(ctx context.Context) (channel, id string, ok bool) {
	r, ok := ctx.Value(runKey{}).(*running)
	if !ok {
		return "", "", false
	}
	return r.channel, r.id, true
}

// RunObserver observes each run of a message through a channel's flow
// (tracing: a span per run). Implementations must be safe for concurrent
// use.
type RunObserver interface {
	// BeginRun is called before the flow runs on m (once per run,
	// whatever the restarts after Fatal errors), with the run's context.
	// It returns the context to run the flow with, the ID of the trace
	// the run belongs to, recorded with the message's trace ("" for
	// none), and a function the channel calls with the run's error when
	// the flow has returned.
	BeginRun(ctx context.Context, channel, flow string, m *message.Message) (context.Context, string, func(error))
}

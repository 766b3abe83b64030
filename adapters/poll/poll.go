package poll

import (
	"context"
	"log/slog"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/internal/pollsrc"
)

// ErrInvalid is returned (wrapped) by New for a bad argument.
var ErrInvalid = pollsrc.ErrInvalid

// ErrNotHanded is the Result.Err given to the settle function (see
// WithSettle) for a message of a batch that was not handed to the handler
// because the source stopped first.
var ErrNotHanded = pollsrc.ErrNotHanded

// Option configures a poll source.
type Option = pollsrc.Option

// WithFirstPollAfter delays the first poll by d after Run starts (default
// 0: poll at once).
func WithFirstPollAfter(d time.Duration) Option { return pollsrc.WithFirstPollAfter(d) }

// WithSettle sets a function called after each message with the
// handler's result, so the polled system can be told: mark a row done,
// release a claim, schedule a retry. It runs on Run's goroutine, before
// the next message is handed over, with a context that is not canceled by
// stopping the source.
//
// Messages of a batch that were not handed over because the source stopped
// are settled too, with Result{Settle: channel.Leave, Outcome:
// errors.KindCanceled, State: store.Pending, Message: m, Err: ErrNotHanded}.
//
// Without WithSettle, results other than Ack are logged.
func WithSettle(fn func(ctx context.Context, m *message.Message, r channel.Result)) Option {
	return pollsrc.WithSettle(fn)
}

// WithLogger sets the logger for poll errors and unsuccessful results
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return pollsrc.WithLogger(l) }

// New returns a source named name that calls fn every interval and hands
// the messages it returns to the handler, one at a time, in order: the
// polling business service. every must be positive and fn non-nil.
//
// Its Run calls fn, hands each returned message to the handler and
// settles it, then waits until one interval after that poll started, and
// so on: polls never overlap, and a batch that takes longer than the
// interval is followed at once by the next poll (missed polls are not
// made up). An error from fn (or a panic in it) is logged and the next
// poll comes as usual; messages returned beside an error are still handed
// over. fn gets Run's context, so canceling it interrupts a poll. The
// handler gets a context with its values but not its cancellation: when
// it is canceled the message being handled finishes, the rest of the
// batch is not handed over (see WithSettle), and Run returns nil.
func New(name string, every time.Duration, fn func(ctx context.Context) ([]*message.Message, error), opts ...Option) (channel.Source, error) {
	return pollsrc.New(name, every, fn, opts...)
}

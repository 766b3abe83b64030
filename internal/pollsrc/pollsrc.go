// Package pollsrc is the polling source behind package adapters/poll
// (its exported API) and the polling business services of package
// adapters/production: a function called on an interval whose messages
// are handed to a channel.Handler. It is internal so that the production
// can poll without linking the poll source component.
package pollsrc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
	flowerrors "github.com/svcflow/svcflow/errors"
)

// ErrInvalid is returned (wrapped) by New for a bad argument.
var ErrInvalid = errors.New("invalid poll source")

// ErrNotHanded is the Result.Err given to the settle function (see
// WithSettle) for a message of a batch that was not handed to the handler
// because the source stopped first.
var ErrNotHanded = errors.New("source stopped before the message was handed over")

// Option configures a poll source.
type Option func(*source)

// WithFirstPollAfter delays the first poll by d after Run starts (default
// 0: poll at once).
func WithFirstPollAfter(d time.Duration) Option {
	return func(s *source) { s.first = d }
}

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
	return func(s *source) { s.settle = fn }
}

// WithLogger sets the logger for poll errors and unsuccessful results
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *source) { s.log = l }
}

// source is the channel.Source returned by New.
type source struct {
	name   string
	every  time.Duration
	fn     func(ctx context.Context) ([]*message.Message, error)
	first  time.Duration
	settle func(ctx context.Context, m *message.Message, r channel.Result)
	log    *slog.Logger
}

var _ channel.Source = (*source)(nil)

// New returns a source named name that calls fn every interval and hands
// the messages it returns to the handler, one at a time, in order: the
// polling business service. every must be positive and fn non-nil.
func New(name string, every time.Duration, fn func(ctx context.Context) ([]*message.Message, error), opts ...Option) (channel.Source, error) {
	switch {
	case name == "":
		return nil, fmt.Errorf("poll: %w: empty name", ErrInvalid)
	case every <= 0:
		return nil, fmt.Errorf("poll: %s: %w: interval %v, want > 0", name, ErrInvalid, every)
	case fn == nil:
		return nil, fmt.Errorf("poll: %s: %w: nil poll function", name, ErrInvalid)
	}
	s := &source{name: name, every: every, fn: fn}
	for _, opt := range opts {
		opt(s)
	}
	if s.first < 0 {
		return nil, fmt.Errorf("poll: %s: %w: first poll after %v, want >= 0", name, ErrInvalid, s.first)
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// Name implements channel.Source.
func (s *source) Name() string { return s.name }

// Run implements channel.Source. It calls fn, hands each returned message
// to h and settles it, then waits until one interval after that poll
// started, and so on: polls never overlap, and a batch that takes longer
// than the interval is followed at once by the next poll (missed polls are
// not made up). An error from fn (or a panic in it) is logged and the next
// poll comes as usual; messages returned beside an error are still handed
// over.
//
// fn gets ctx, so canceling ctx interrupts a poll. The handler gets a
// context with ctx's values but not its cancellation: when ctx is canceled
// the message being handled finishes, the rest of the batch is not handed
// over (see WithSettle), and Run returns nil.
func (s *source) Run(ctx context.Context, h channel.Handler) error {
	if h == nil {
		return fmt.Errorf("poll: %s: nil handler", s.name)
	}
	hctx := context.WithoutCancel(ctx)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	next := time.Now().Add(s.first)
	for {
		if wait := time.Until(next); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return nil
		}
		started := time.Now()
		msgs, err := s.poll(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("poll failed", "source", s.name, "err", err)
		}
		for i, m := range msgs {
			if m == nil {
				s.log.Error("poll returned a nil message", "source", s.name, "index", i)
				continue
			}
			if ctx.Err() != nil {
				s.done(hctx, m, channel.Result{Settle: channel.Leave, Outcome: flowerrors.KindCanceled, State: store.Pending, Message: m, Err: ErrNotHanded})
				continue
			}
			s.done(hctx, m, h.Handle(channel.WaitWhenBusy(hctx), m))
		}
		next = started.Add(s.every)
	}
}

// poll calls fn, turning a panic into an error.
func (s *source) poll(ctx context.Context) (msgs []*message.Message, err error) {
	defer func() {
		if v := recover(); v != nil {
			msgs, err = nil, fmt.Errorf("poll: %s: poll function panicked: %v\n%s", s.name, v, debug.Stack())
		}
	}()
	msgs, err = s.fn(ctx)
	if err != nil {
		err = fmt.Errorf("poll: %s: %w", s.name, err)
	}
	return msgs, err
}

// done settles one message.
func (s *source) done(ctx context.Context, m *message.Message, r channel.Result) {
	if s.settle != nil {
		s.settle(ctx, m, r)
		return
	}
	switch r.Settle {
	case channel.Ack:
	case channel.Fail:
		s.log.Error("polled message failed", "source", s.name, "id", m.ID, "state", r.State, "error_id", r.ErrorID, "err", r.Err)
	default:
		s.log.Warn("polled message not acknowledged", "source", s.name, "id", m.ID,
			"settle", r.Settle.String(), "state", r.State, "retry_after", r.RetryAfter, "err", r.Err)
	}
}

package cron

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	robfig "github.com/robfig/cron/v3"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
)

// Meta keys set on every tick's message.
const (
	// MetaSpec holds the schedule's spec as given to New.
	MetaSpec = "cron.spec"
	// MetaTick holds the tick's scheduled time, RFC 3339 with nanoseconds,
	// in UTC.
	MetaTick = "cron.tick"
)

// MinRetryAfter is the shortest wait before a nacked tick is handed to the
// handler again.
const MinRetryAfter = time.Second

// ErrSpec is returned (wrapped) by New for a spec that does not parse.
var ErrSpec = errors.New("invalid cron spec")

// idSpace is the UUID namespace of tick message IDs.
var idSpace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/svcflow/svcflow/adapters/cron"))

// TickID returns the message ID of the tick of spec at t: a UUID (version
// 5) derived from the spec and the tick time, so the same tick always has
// the same ID.
func TickID(spec string, t time.Time) string {
	return uuid.NewSHA1(idSpace, []byte(spec+"\n"+t.UTC().Format(time.RFC3339Nano))).String()
}

// Payload is the JSON payload of a tick's message.
type Payload struct {
	// Tick is the scheduled time of the tick (RFC 3339 with nanoseconds,
	// UTC); a late timer does not change it.
	Tick string `json:"tick"`
	// Schedule is the spec given to New.
	Schedule string `json:"schedule"`
}

// Option configures a cron source.
type Option func(*source)

// WithSeconds makes the spec take a leading seconds field (six fields:
// "*/10 * * * * *" is every ten seconds). Descriptors still work.
func WithSeconds() Option {
	return func(s *source) { s.seconds = true }
}

// WithOverlap lets a tick start while the previous one is still being
// handled. By default such a tick is skipped and logged.
func WithOverlap() Option {
	return func(s *source) { s.overlap = true }
}

// WithLocation interprets the spec in loc (default time.Local). A spec
// that starts with "CRON_TZ=<zone> " names its own zone, which wins.
func WithLocation(loc *time.Location) Option {
	return func(s *source) { s.loc = loc }
}

// WithLogger sets the logger for skipped ticks and unsuccessful results
// (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *source) { s.log = l }
}

// WithName sets the source's Name (default "cron <spec>").
func WithName(name string) Option {
	return func(s *source) { s.name = name }
}

// source is the channel.Source returned by New.
type source struct {
	spec    string
	sched   robfig.Schedule
	seconds bool
	overlap bool
	loc     *time.Location
	log     *slog.Logger
	name    string
}

var _ channel.Source = (*source)(nil)

// New returns a source that produces one message per tick of spec.
//
// spec is a standard five-field cron expression ("minute hour
// day-of-month month day-of-week", e.g. "30 2 * * 1-5"), six fields with
// WithSeconds, or a descriptor: @yearly, @monthly, @weekly, @daily,
// @hourly, or @every <duration> (e.g. "@every 1m30s", counted from Run's
// start and rounded to whole seconds). A spec that does not parse is an
// error wrapping ErrSpec that quotes the spec and says what is wrong.
func New(spec string, opts ...Option) (channel.Source, error) {
	s := &source{spec: spec, loc: time.Local}
	for _, opt := range opts {
		opt(s)
	}
	if s.loc == nil {
		s.loc = time.Local
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	fields := robfig.Minute | robfig.Hour | robfig.Dom | robfig.Month | robfig.Dow | robfig.Descriptor
	if s.seconds {
		fields |= robfig.Second
	}
	sched, err := robfig.NewParser(fields).Parse(strings.TrimSpace(spec))
	if err != nil {
		return nil, fmt.Errorf("cron: spec %q: %w: %w", spec, ErrSpec, err)
	}
	s.sched = sched
	return s, nil
}

// Name implements channel.Source.
func (s *source) Name() string {
	if s.name != "" {
		return s.name
	}
	return "cron " + s.spec
}

// Run implements channel.Source. It waits for each tick with a timer and
// hands the tick's message to h on a goroutine of its own, so a slow
// handler does not delay the schedule: without WithOverlap, a tick that
// comes while the previous one is still being handled is skipped (and
// logged).
//
// Settling: Ack ends the tick. Nack hands the same message (same ID) to h
// again after Result.RetryAfter (at least MinRetryAfter), as long as that
// is before the next tick;
// otherwise the tick is given up (logged), since the next one supersedes
// it. Fail and Leave are logged: a schedule cannot redeliver, the
// channel's store keeps the message.
//
// When ctx is canceled Run stops ticking and returns nil once the handler
// calls in flight have returned. Those calls get a context that carries
// ctx's values but not its cancellation: stopping the source stops intake,
// it does not abort ticks already taken.
func (s *source) Run(ctx context.Context, h channel.Handler) error {
	if h == nil {
		return fmt.Errorf("cron: %s: nil handler", s.Name())
	}
	var (
		wg    sync.WaitGroup
		busy  atomic.Bool
		hctx  = context.WithoutCancel(ctx)
		timer = time.NewTimer(time.Hour)
	)
	timer.Stop()
	defer func() {
		timer.Stop()
		wg.Wait()
	}()
	for {
		now := time.Now().In(s.loc)
		tick := s.sched.Next(now)
		if tick.IsZero() {
			s.log.Warn("cron schedule never fires", "source", s.Name())
			<-ctx.Done()
			return nil
		}
		timer.Reset(tick.Sub(now))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		if !s.overlap && !busy.CompareAndSwap(false, true) {
			s.log.Warn("cron tick skipped: the previous tick is still running",
				"source", s.Name(), "tick", tick.UTC().Format(time.RFC3339Nano))
			continue
		}
		m := s.message(tick)
		wg.Go(func() {
			if !s.overlap {
				defer busy.Store(false)
			}
			s.handle(ctx, hctx, h, m, tick)
		})
	}
}

// message builds the message of the tick at t.
func (s *source) message(t time.Time) *message.Message {
	tick := t.UTC().Format(time.RFC3339Nano)
	payload, _ := json.Marshal(Payload{Tick: tick, Schedule: s.spec}) // two strings: cannot fail
	return &message.Message{
		ID:          TickID(s.spec, t),
		Time:        t.UTC(),
		ContentType: message.ContentTypeJSON,
		Payload:     payload,
		Meta:        map[string]string{MetaSpec: s.spec, MetaTick: tick},
	}
}

// handle hands m to h and settles the result, retrying a Nack while the
// retry still comes before the next tick.
func (s *source) handle(ctx, hctx context.Context, h channel.Handler, m *message.Message, tick time.Time) {
	log := s.log.With("source", s.Name(), "id", m.ID, "tick", m.Meta[MetaTick])
	for attempt := 1; ; attempt++ {
		res := h.Handle(channel.WaitWhenBusy(hctx), m.Clone())
		switch res.Settle {
		case channel.Ack:
			return
		case channel.Fail:
			log.Error("cron tick failed", "state", res.State, "error_id", res.ErrorID, "err", res.Err)
			return
		case channel.Leave:
			log.Warn("cron tick left unprocessed", "state", res.State, "err", res.Err)
			return
		case channel.Nack:
		default:
			log.Error("cron tick: unknown settle", "settle", res.Settle.String(), "err", res.Err)
			return
		}
		delay := max(res.RetryAfter, MinRetryAfter)
		retryAt := time.Now().Add(delay)
		if next := s.sched.Next(tick.In(s.loc)); !next.IsZero() && !retryAt.Before(next) {
			log.Warn("cron tick given up: its retry would come after the next tick",
				"attempts", attempt, "retry_after", res.RetryAfter, "err", res.Err)
			return
		}
		log.Info("cron tick will be retried", "attempt", attempt, "retry_after", delay, "err", res.Err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			log.Warn("cron tick retry abandoned: source stopped", "attempts", attempt)
			return
		case <-t.C:
		}
	}
}

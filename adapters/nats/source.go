package nats

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	ferrors "github.com/svcflow/svcflow/errors"
)

// Headers a dead letter carries besides the original message's.
const (
	// HeaderError is the error text of the run that ended the message.
	HeaderError = "Svcflow-Error"
	// HeaderOutcome is the run's outcome (an errors.Kind name).
	HeaderOutcome = "Svcflow-Outcome"
	// HeaderSubject, HeaderStream and HeaderSequence say where the message
	// was: its subject, stream and stream sequence.
	HeaderSubject  = "Svcflow-Subject"
	HeaderStream   = "Svcflow-Stream"
	HeaderSequence = "Svcflow-Sequence"
	// HeaderDeliveries is how many times it was delivered.
	HeaderDeliveries = "Svcflow-Deliveries"
	// HeaderID is the message's id in the channel's store.
	HeaderID = "Svcflow-Id"
)

// Meta keys of a message from a nats source (the run reads them under
// meta: meta.nats_subject, ...).
const (
	MetaSubject  = "nats_subject"
	MetaStream   = "nats_stream"
	MetaSequence = "nats_sequence"
)

// traceHeaders are the W3C trace context headers a delivery's meta keeps
// under their own names (package telemetry continues the trace; the
// publish step and the sink send it).
var traceHeaders = []string{"traceparent", "tracestate"}

// Source consumes a JetStream stream with a durable pull consumer: every
// worker process that names the same stream and consumer shares its
// messages. Make one with [NewSource] or from YAML (the nats source
// component).
//
// Each message is handed to the channel with the id of its Nats-Msg-Id
// header, or STREAM-SEQUENCE when it has none, so a redelivered message
// is known to the channel's store, and a flow's effects are made
// idempotent with meta.id. The channel's result settles it:
//
//   - done, or rejected on purpose (a Stop): Ack; never delivered again.
//   - retries ran out (Nack): Nak with a delay, the channel's retry_after
//     (or the error's Retry-After hint) doubled for each earlier delivery,
//     at most max_nak_delay; on the last delivery (max_deliver) instead:
//     Term, and the message is published to the dead-letter subject with
//     the error.
//   - failed (an error that is not transient, a panic, a message set
//     aside after crashes): Term and dead-letter at once.
//   - Fatal or canceled (a broken processor, a shutdown): no ack; the
//     server redelivers it after ack_wait. A channel that was busy (its
//     max_in_flight reached) Naks with its delay instead.
//   - every delivery up to max_deliver ended that way, or with its
//     worker (killed during the run): the server's MAX_DELIVERIES
//     advisory makes the source publish the message to the dead-letter
//     subject with [ErrExhausted]'s text, remove it from a work-queue
//     stream and set its record in the channel's store dead.
//
// A message still running is reported in progress every heartbeat, so a
// long run is not redelivered to another worker. A lost connection is
// retried for ever with a backoff (100ms doubling to 5s); messages
// unacknowledged meanwhile are redelivered, so nothing is lost.
//
// A Source is safe for concurrent use; its Run may be called again after
// it returned.
type Source struct {
	spec Spec
	name string
	log  *slog.Logger
	ep   *endpoint

	stats    Stats
	consumer atomic.Pointer[jetstream.Consumer]
}

// Stats counts what a source did with the messages delivered to it since
// it was made.
type Stats struct {
	Delivered   atomic.Int64 // messages delivered, redeliveries included
	Redelivered atomic.Int64 // deliveries of messages delivered before
	Acked       atomic.Int64 // acked: done or rejected
	Nacked      atomic.Int64 // redelivery asked with a delay
	Terminated  atomic.Int64 // terminated (and dead-lettered when configured)
	Left        atomic.Int64 // not acked: redelivered after ack_wait
}

// NewSource returns a source for spec (the nats component's spec, with
// defaults applied as the YAML reader applies them), named name. Without
// a URL, its embedded server stores under dataDir/nats. It opens nothing
// until it runs.
func NewSource(name string, spec Spec, dataDir string, log *slog.Logger) (*Source, error) {
	if log == nil {
		log = slog.Default()
	}
	if err := spec.check(name); err != nil {
		return nil, err
	}
	s := &Source{spec: spec, name: name, log: log.With("source", "nats "+spec.Stream+"/"+spec.Consumer)}
	s.ep = &endpoint{name: "source " + name, where: spec.where(), dataDir: dataDir, log: s.log, setup: s.setup}
	return s, nil
}

// Name implements channel.Source: "nats STREAM/CONSUMER".
func (s *Source) Name() string { return "nats " + s.spec.Stream + "/" + s.spec.Consumer }

// Stats returns the source's counters.
func (s *Source) Stats() *Stats { return &s.stats }

// setup makes or checks the stream, the dead-letter stream and the
// consumer.
func (s *Source) setup(ctx context.Context, js jetstream.JetStream) error {
	if err := ensureStream(ctx, js, s.spec.streamConfig()); err != nil {
		return fmt.Errorf("nats source %s: %w", s.Name(), err)
	}
	if s.spec.DeadLetter != "" {
		if err := ensureDeadLetter(ctx, js, s.spec.Stream, s.spec.DeadLetter, storage(s.spec.Storage), s.spec.Replicas); err != nil {
			return fmt.Errorf("nats source %s: %w", s.Name(), err)
		}
	}
	c, err := ensureConsumer(ctx, js, s.spec.Stream, s.spec.consumerConfig())
	if err != nil {
		return fmt.Errorf("nats source %s: %w", s.Name(), err)
	}
	s.consumer.Store(&c)
	return nil
}

// inflight is a message being handled, for heartbeats.
type inflight struct {
	msg   jetstream.Msg
	start time.Time
}

// Run consumes until ctx is canceled, then stops taking messages, hands
// back (Nak) those fetched but not started, waits for the running ones to
// be settled and returns nil.
func (s *Source) Run(ctx context.Context, h channel.Handler) error {
	if _, err := s.ep.acquire(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while connecting
		}
		return err
	}
	defer s.ep.release()
	cp := s.consumer.Load()
	if cp == nil {
		return fmt.Errorf("nats source %s: no consumer", s.Name())
	}
	it, err := (*cp).Messages(jetstream.PullMaxMessages(s.spec.Concurrency))
	if err != nil {
		return fmt.Errorf("nats source %s: %w", s.Name(), err)
	}
	watch, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	unwatch := s.watchMaxDeliveries(watch, h)
	defer func() {
		stopWatch()
		unwatch()
	}()
	hctx := channel.WaitWhenBusy(context.WithoutCancel(ctx))
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		running = map[*inflight]struct{}{}
	)
	hbDone := make(chan struct{})
	var hbWG sync.WaitGroup
	hbWG.Go(func() { s.heartbeats(hbDone, &mu, running) })
	// A pool of long-lived workers: a goroutine per message would grow
	// its stack anew for every run.
	work := make(chan jetstream.Msg)
	for range s.spec.Concurrency {
		wg.Go(func() {
			for msg := range work {
				f := &inflight{msg: msg, start: time.Now()}
				mu.Lock()
				running[f] = struct{}{}
				mu.Unlock()
				s.handle(hctx, h, msg)
				mu.Lock()
				delete(running, f)
				mu.Unlock()
			}
		})
	}
	for ctx.Err() == nil {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				break
			}
			s.log.Warn("nats: next message", "error", err)
			select { // the connection is down: the client reconnects meanwhile
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		work <- msg
	}
	close(work)
	// Stopping: messages fetched but not started go back at once, for
	// another worker (else they would wait for ack_wait).
	it.Drain()
	for {
		msg, err := it.Next(jetstream.NextMaxWait(50 * time.Millisecond))
		if err != nil {
			break
		}
		_ = msg.Nak()
	}
	it.Stop()
	wg.Wait()
	close(hbDone)
	hbWG.Wait()
	return nil
}

// heartbeats reports the messages running longer than a heartbeat in
// progress, every heartbeat, until done is closed.
func (s *Source) heartbeats(done chan struct{}, mu *sync.Mutex, running map[*inflight]struct{}) {
	t := time.NewTicker(s.spec.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			mu.Lock()
			var due []jetstream.Msg
			for f := range running {
				if now.Sub(f.start) >= s.spec.Heartbeat {
					due = append(due, f.msg)
				}
			}
			mu.Unlock()
			for _, m := range due {
				if err := m.InProgress(); err != nil {
					s.log.Warn("nats: in progress", "error", err)
				}
			}
		}
	}
}

// messageOf turns a delivery into a channel message.
func messageOf(msg jetstream.Msg, meta *jetstream.MsgMetadata) *message.Message {
	hdr := msg.Headers()
	ct := hdr.Get("Content-Type")
	if ct == "" {
		ct = message.ContentTypeJSON
	}
	m := &message.Message{Time: meta.Timestamp.UTC(), ContentType: ct, Payload: msg.Data(), Meta: map[string]string{
		MetaSubject:  msg.Subject(),
		MetaStream:   meta.Stream,
		MetaSequence: strconv.FormatUint(meta.Sequence.Stream, 10),
	}}
	for _, k := range traceHeaders { // W3C trace context: a traced run continues it
		if v := hdr.Get(k); v != "" {
			m.Meta[k] = v
		}
	}
	if id := hdr.Get(natsgo.MsgIdHdr); id != "" {
		m.ID = id
	} else {
		m.ID = meta.Stream + "-" + strconv.FormatUint(meta.Sequence.Stream, 10)
	}
	return m
}

// handle runs one delivery through the channel and settles it.
func (s *Source) handle(ctx context.Context, h channel.Handler, msg jetstream.Msg) {
	s.stats.Delivered.Add(1)
	meta, err := msg.Metadata()
	if err != nil {
		s.log.Error("nats: a delivery without metadata: terminated", "subject", msg.Subject(), "error", err)
		s.term(ctx, msg, nil, nil, err, ferrors.KindFailed)
		return
	}
	if meta.NumDelivered > 1 {
		s.stats.Redelivered.Add(1)
	}
	m := messageOf(msg, meta)
	res := h.Handle(ctx, m)
	last := s.spec.MaxDeliver > 0 && meta.NumDelivered >= uint64(s.spec.MaxDeliver)
	switch res.Settle {
	case channel.Ack:
		s.stats.Acked.Add(1)
		if err := msg.Ack(); err != nil {
			s.log.Warn("nats: ack", "id", m.ID, "error", err)
		}
	case channel.Nack:
		if last {
			s.term(ctx, msg, meta, m, res.Err, res.Outcome)
			return
		}
		s.nak(msg, meta, res)
	case channel.Fail:
		s.term(ctx, msg, meta, m, res.Err, res.Outcome)
	default: // Leave
		if res.Outcome == ferrors.KindRetry { // busy: not run, not recorded
			s.nak(msg, meta, res)
			return
		}
		s.stats.Left.Add(1) // redelivered after ack_wait
	}
}

// nak asks for a redelivery after the result's delay, doubled per earlier
// delivery unless the error gave the delay.
func (s *Source) nak(msg jetstream.Msg, meta *jetstream.MsgMetadata, res channel.Result) {
	d := res.RetryAfter
	if _, hinted := ferrors.RetryAfterHint(res.Err); !hinted {
		for i := uint64(1); i < meta.NumDelivered && d < s.spec.MaxNakDelay; i++ {
			d *= 2
		}
	}
	d = min(d, s.spec.MaxNakDelay)
	s.stats.Nacked.Add(1)
	if err := msg.NakWithDelay(d); err != nil {
		s.log.Warn("nats: nak", "error", err)
	}
}

// term dead-letters a message (when a dead-letter subject is set) and
// terminates it. When the dead letter cannot be published the message is
// left for redelivery instead: nothing is dropped unrecorded.
func (s *Source) term(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, m *message.Message, cause error, outcome ferrors.Kind) {
	reason := "failed"
	if cause != nil {
		reason = cause.Error()
	}
	if s.spec.DeadLetter != "" {
		if err := s.deadLetter(ctx, msg, meta, m, reason, outcome); err != nil {
			s.log.Error("nats: dead letter not published; the message is redelivered", "subject", s.spec.DeadLetter, "error", err)
			s.stats.Nacked.Add(1)
			_ = msg.NakWithDelay(s.spec.Heartbeat)
			return
		}
	}
	s.stats.Terminated.Add(1)
	if err := msg.TermWithReason(oneLine(reason, 256)); err != nil {
		s.log.Warn("nats: term", "error", err)
	}
}

// deadLetter publishes the message to the dead-letter subject with its
// error and where it came from, and waits for the stream's ack.
func (s *Source) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, m *message.Message, reason string, outcome ferrors.Kind) error {
	nc := s.ep.conn()
	if nc == nil {
		return errors.New("not connected")
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	dl := natsgo.NewMsg(s.spec.DeadLetter)
	dl.Data = msg.Data()
	for k, v := range msg.Headers() {
		if k != natsgo.MsgIdHdr {
			dl.Header[k] = v
		}
	}
	dl.Header.Set(HeaderError, oneLine(reason, 4096))
	dl.Header.Set(HeaderOutcome, outcome.String())
	dl.Header.Set(HeaderSubject, msg.Subject())
	id := ""
	if meta != nil {
		dl.Header.Set(HeaderStream, meta.Stream)
		dl.Header.Set(HeaderSequence, strconv.FormatUint(meta.Sequence.Stream, 10))
		dl.Header.Set(HeaderDeliveries, strconv.FormatUint(meta.NumDelivered, 10))
		id = meta.Stream + "-" + strconv.FormatUint(meta.Sequence.Stream, 10) + "-dead"
	}
	if m != nil {
		dl.Header.Set(HeaderID, m.ID)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var opts []jetstream.PublishOpt
	if id != "" {
		opts = append(opts, jetstream.WithMsgID(id))
	}
	_, err = js.PublishMsg(pctx, dl, opts...)
	return err
}

// oneLine makes s fit a header: one line, at most n bytes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n]
	}
	return s
}

// WritePrometheus writes the counters of sources in the Prometheus text
// format, and their consumers' pending counts (asked of the server,
// within a second each).
func WritePrometheus(w io.Writer, sources ...*Source) error {
	var b strings.Builder
	labels := func(s *Source) string {
		return fmt.Sprintf("channel=%q,stream=%q,consumer=%q", s.name, s.spec.Stream, s.spec.Consumer)
	}
	b.WriteString("# HELP svcflow_nats_messages_total Deliveries of a nats source by what became of them: delivered (all), redelivered, acked, nacked, terminated, left.\n")
	b.WriteString("# TYPE svcflow_nats_messages_total counter\n")
	for _, s := range sources {
		for _, c := range []struct {
			event string
			n     *atomic.Int64
		}{{"delivered", &s.stats.Delivered}, {"redelivered", &s.stats.Redelivered}, {"acked", &s.stats.Acked},
			{"nacked", &s.stats.Nacked}, {"terminated", &s.stats.Terminated}, {"left", &s.stats.Left}} {
			fmt.Fprintf(&b, "svcflow_nats_messages_total{%s,event=%q} %d\n", labels(s), c.event, c.n.Load())
		}
	}
	b.WriteString("# HELP svcflow_nats_connected Whether a nats source is connected (1) or not (0).\n")
	b.WriteString("# TYPE svcflow_nats_connected gauge\n")
	type pending struct {
		labels       string
		pending, ack uint64
	}
	var ps []pending
	for _, s := range sources {
		connected := 0
		if s.ep.Ready() {
			connected = 1
		}
		fmt.Fprintf(&b, "svcflow_nats_connected{%s} %d\n", labels(s), connected)
		if cp := s.consumer.Load(); cp != nil && connected == 1 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			info, err := (*cp).Info(ctx)
			cancel()
			if err == nil {
				ps = append(ps, pending{labels(s), info.NumPending, uint64(info.NumAckPending)})
			}
		}
	}
	b.WriteString("# HELP svcflow_nats_consumer_pending Messages of the stream the consumer has not delivered yet.\n")
	b.WriteString("# TYPE svcflow_nats_consumer_pending gauge\n")
	for _, p := range ps {
		fmt.Fprintf(&b, "svcflow_nats_consumer_pending{%s} %d\n", p.labels, p.pending)
	}
	b.WriteString("# HELP svcflow_nats_consumer_ack_pending Messages delivered and not acknowledged yet, all workers together.\n")
	b.WriteString("# TYPE svcflow_nats_consumer_ack_pending gauge\n")
	for _, p := range ps {
		fmt.Fprintf(&b, "svcflow_nats_consumer_ack_pending{%s} %d\n", p.labels, p.ack)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

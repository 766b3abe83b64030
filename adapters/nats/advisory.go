package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/store"
	ferrors "github.com/svcflow/svcflow/errors"
)

// ErrExhausted is the error of a message dead-lettered because all its
// deliveries ended without an outcome: each ended with its worker (killed
// during the run, say), so no worker ever settled it.
var ErrExhausted = errors.New("deliveries exhausted without an outcome")

// maxDeliveriesAdvisory is the part of JetStream's MAX_DELIVERIES
// advisory the source reads.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// storer is what a handler that keeps a store (a *channel.Channel) has.
type storer interface{ Store() store.Store }

// watchMaxDeliveries subscribes to the server's advisory of a message of
// the source's consumer that reached max_deliver without being settled:
// its deliveries all ended without an outcome (each worker died during
// the run), so the settle mapping never ran. The message is fetched by
// its stream sequence, published to the dead-letter subject with an
// error saying so, removed from a work-queue stream, and its record in
// the handler's store, when there is one, is set dead. Every worker of
// the consumer hears the advisory: each marks its own store, and the dead
// letter's message id (STREAM-SEQUENCE-dead) makes the stream keep one.
// It returns the unsubscribe function.
func (s *Source) watchMaxDeliveries(ctx context.Context, h channel.Handler) func() {
	if s.spec.MaxDeliver <= 0 {
		return func() {}
	}
	nc := s.ep.conn()
	if nc == nil {
		return func() {}
	}
	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + s.spec.Stream + "." + s.spec.Consumer
	work := make(chan maxDeliveriesAdvisory, 64)
	done := make(chan struct{})
	sub, err := nc.Subscribe(subject, func(m *natsgo.Msg) {
		var a maxDeliveriesAdvisory
		if err := json.Unmarshal(m.Data, &a); err != nil || a.StreamSeq == 0 {
			s.log.Warn("nats: an advisory that cannot be read", "subject", m.Subject, "error", err)
			return
		}
		select {
		case work <- a:
		default:
			s.log.Error("nats: too many max deliveries advisories at once: one is not handled", "sequence", a.StreamSeq)
		}
	})
	if err != nil {
		s.log.Error("nats: cannot watch the max deliveries advisories: messages whose deliveries all crashed are not dead-lettered", "error", err)
		return func() {}
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case a := <-work:
				s.exhausted(context.WithoutCancel(ctx), h, a)
			}
		}
	}()
	return func() {
		_ = sub.Unsubscribe()
		<-done
	}
}

// exhausted dead-letters the message of an advisory and sets its record
// dead.
func (s *Source) exhausted(ctx context.Context, h channel.Handler, a maxDeliveriesAdvisory) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	nc := s.ep.conn()
	if nc == nil {
		return
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	st, err := js.Stream(ctx, s.spec.Stream)
	if err != nil {
		s.log.Error("nats: max deliveries: stream", "sequence", a.StreamSeq, "error", err)
		return
	}
	raw, err := st.GetMsg(ctx, a.StreamSeq)
	if err != nil {
		s.log.Error("nats: max deliveries: the message is gone from the stream", "sequence", a.StreamSeq, "error", err)
		return
	}
	id := raw.Header.Get(natsgo.MsgIdHdr)
	if id == "" {
		id = s.spec.Stream + "-" + strconv.FormatUint(a.StreamSeq, 10)
	}
	cause := fmt.Errorf("%w: %d deliveries, each ended before the message was settled (a worker killed during the run, say)", ErrExhausted, a.Deliveries)
	s.log.Error("nats: message dead-lettered: its deliveries ran out without an outcome", "id", id, "sequence", a.StreamSeq, "deliveries", a.Deliveries)
	if s.spec.DeadLetter != "" {
		dl := natsgo.NewMsg(s.spec.DeadLetter)
		dl.Data = raw.Data
		for k, v := range raw.Header {
			if k != natsgo.MsgIdHdr {
				dl.Header[k] = v
			}
		}
		dl.Header.Set(HeaderError, oneLine(cause.Error(), 4096))
		dl.Header.Set(HeaderOutcome, ferrors.KindFatal.String())
		dl.Header.Set(HeaderSubject, raw.Subject)
		dl.Header.Set(HeaderStream, s.spec.Stream)
		dl.Header.Set(HeaderSequence, strconv.FormatUint(a.StreamSeq, 10))
		dl.Header.Set(HeaderDeliveries, strconv.FormatUint(a.Deliveries, 10))
		dl.Header.Set(HeaderID, id)
		if _, err := js.PublishMsg(ctx, dl, jetstream.WithMsgID(s.spec.Stream+"-"+strconv.FormatUint(a.StreamSeq, 10)+"-dead")); err != nil {
			s.log.Error("nats: dead letter not published", "id", id, "subject", s.spec.DeadLetter, "error", err)
			return
		}
	}
	s.stats.Terminated.Add(1)
	if s.spec.Retention == "workqueue" || s.spec.Retention == "" {
		// settled for good: a work queue keeps no message no worker will take
		if err := st.DeleteMsg(ctx, a.StreamSeq); err != nil && !errorsIsNotFound(err) {
			s.log.Warn("nats: max deliveries: remove from the stream", "id", id, "error", err)
		}
	}
	if sh, ok := h.(storer); ok && sh.Store() != nil {
		rec, err := sh.Store().Get(ctx, id)
		if err != nil {
			return // not this worker's (or not recorded): nothing to mark
		}
		switch rec.State {
		case store.Done, store.Rejected, store.Dead:
			return
		}
		if err := sh.Store().Transition(ctx, id, store.Dead, store.Update{Outcome: ferrors.KindFatal, Err: cause.Error()}); err != nil {
			s.log.Error("nats: max deliveries: store transition failed", "id", id, "error", err)
		}
	}
}

func errorsIsNotFound(err error) bool { return errors.Is(err, jetstream.ErrMsgNotFound) }

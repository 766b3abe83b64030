package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svcflow/svcflow/adapters/bus"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
)

// Headers of the bus's messages on NATS.
const (
	// HeaderBusFrom is the service that sent a bus message ("" from
	// outside the bus).
	HeaderBusFrom = "Svcflow-Bus-From"
	// HeaderBusLocal lists, on a broadcast, the services of the sending
	// process (comma-separated): they had it there, so no consumer of
	// theirs runs it again.
	HeaderBusLocal = "Svcflow-Bus-Local"
	// HeaderBusTimeout is, on a request, the milliseconds the requester
	// still waits.
	HeaderBusTimeout = "Svcflow-Bus-Timeout"
)

// broadcastToken is the destination token of a broadcast's subject
// (PREFIX._all.ACTION): "*" cannot be published.
const broadcastToken = "_all"

// TransportSpec is the YAML form of the nats bus transport:
//
//	bus:
//	  transport:
//	    nats:
//	      url: nats://127.0.0.1:4222   # or a list; none: the embedded server (under --data)
//	      stream: SVC                  # the stream of the submits
//	      prefix: svc                  # subjects PREFIX.<destination>.<action>
//	      ack_wait: 30s
type TransportSpec struct {
	URL    []string `yaml:"url" spec:"oneormany" doc:"server URLs (nats://host:4222), one or several (a cluster); none: the embedded server of this process, as a nats source without url starts it (JetStream under --data)"`
	Listen string   `yaml:"listen" default:"127.0.0.1:4222" doc:"the embedded server's client address when the transport starts it; unused with url"`

	Stream   string        `yaml:"stream" default:"SVC" doc:"the JetStream stream that keeps submitted messages until every service they are for ran them (interest retention; subjects PREFIX.*.*)"`
	Prefix   string        `yaml:"prefix" default:"svc" doc:"the first token of the subjects: PREFIX.<destination>.<action> carries submits, PREFIX.<destination>.<action>.request requests"`
	Storage  string        `yaml:"storage" default:"file" enum:"file,memory" doc:"where the stream keeps messages"`
	Replicas int           `yaml:"replicas" default:"1" doc:"the stream's replicas in a cluster (1 for one server)"`
	AckWait  time.Duration `yaml:"ack_wait" default:"30s" doc:"how long a submitted message may be held by a process without being run (or reported in progress) before it is delivered again: after a crash, the time until another process (or the restarted one) runs it"`
	Timeout  time.Duration `yaml:"timeout" default:"5s" doc:"bound on one submit, the stream's ack included"`
}

func (s *TransportSpec) check() error {
	var errs []error
	if err := (where{URL: s.URL, Listen: s.Listen}).check(); err != nil {
		errs = append(errs, err)
	}
	if s.Stream == "" {
		s.Stream = "SVC"
	}
	if s.Prefix == "" {
		s.Prefix = "svc"
	}
	if !validName(s.Stream) {
		errs = append(errs, component.FieldErrorf("stream", "%q: a stream name is a word without spaces, dots, * or >", s.Stream))
	}
	if !validName(s.Prefix) {
		errs = append(errs, component.FieldErrorf("prefix", "%q: the prefix is one subject token, a word without dots, * or >", s.Prefix))
	}
	if s.AckWait == 0 {
		s.AckWait = 30 * time.Second
	}
	if s.AckWait < time.Second {
		errs = append(errs, component.FieldErrorf("ack_wait", "must be 1s or more, got %v", s.AckWait))
	}
	if s.Replicas == 0 {
		s.Replicas = 1
	}
	if s.Replicas < 1 || s.Replicas > 5 {
		errs = append(errs, component.FieldErrorf("replicas", "must be from 1 to 5, got %d", s.Replicas))
	}
	if s.Timeout <= 0 {
		s.Timeout = 5 * time.Second
	}
	return errors.Join(errs...)
}

// TransportComponent is the nats bus transport component (YAML
// `bus: {transport: {nats: {...}}}`).
var TransportComponent = component.Transport("nats", "carries the bus's messages between processes on NATS: submits on a JetStream stream read by a durable consumer per service, requests by request/reply",
	func(env component.Env, s TransportSpec) (any, error) {
		return NewTransport(s, env.DataDir, env.Logger)
	})

func init() { component.Register(TransportComponent) }

// Transport carries the messages of a bus.Bus between processes on NATS,
// so that services declared with the same Go and YAML code run in
// different processes (set it as bus.Options.Transport, or declare it in
// YAML). Each process's bus hands it the messages for services it does
// not have:
//
//   - Submit publishes to the subject PREFIX.<destination>.<action> of
//     the stream (default SVC, made when missing, interest retention) with
//     the message id as Nats-Msg-Id, and returns once the stream acked
//     it: from then on the message is not lost. Each service reads its
//     messages with a durable consumer named after it, shared by every
//     process that runs the service; a process acknowledges a message
//     after its run ended (whatever the outcome), so a message whose
//     process was killed (SIGKILL) before it ran to its end is delivered
//     again after ack_wait, to the restarted process or another one that
//     runs the service. Delivery is at least once: a run cut short by a
//     crash runs again with the same meta.id, by which effects are made
//     idempotent. A destination without a consumer (no process ever ran
//     the service) is bus.ErrUnknownDestination.
//   - A broadcast is published once, to PREFIX._all.<action>, which every
//     service's consumer also reads: every service of every process runs
//     it once, a service that was down when it was sent when it comes back.
//     The sending process's own services had it from their bus already;
//     services without the action, stopped or disabled skip it.
//   - Request uses NATS request/reply on PREFIX.<destination>.<action>.request
//     with a queue group per service (one process runs it), bounded by the
//     context's deadline; the reply carries the output, or the error with
//     its kind (bus.DecodeReply). No process subscribed is
//     bus.ErrUnknownDestination. A request is not durable: the requester
//     waits for it and gets an error when it cannot be run.
//
// A message refused by the receiving service (stopped by StopService,
// disabled by the bus state, no such action) is acknowledged and logged:
// as in one process, a refused message never runs. A Transport is started
// and stopped by its bus.
type Transport struct {
	spec TransportSpec
	log  *slog.Logger
	ep   *endpoint

	known sync.Map // destinations with a consumer

	mu      sync.Mutex
	js      jetstream.JetStream
	nc      *natsgo.Conn
	r       bus.Receiver
	local   []string
	cancel  context.CancelFunc
	loops   sync.WaitGroup // the consumers' loops
	work    sync.WaitGroup // requests being answered
	subs    []*natsgo.Subscription
	its     []jetstream.MessagesContext
	closing bool // no more requests are answered

	flight   sync.Mutex
	inflight map[jetstream.Msg]struct{} // submits received, not yet run to their end
	drained  *sync.Cond
}

// NewTransport returns a transport for spec (defaults applied as the YAML
// reader applies them; zero values get them too); without a URL it uses
// the embedded server storing under dataDir/nats. It connects when the
// bus starts it.
func NewTransport(spec TransportSpec, dataDir string, log *slog.Logger) (*Transport, error) {
	if log == nil {
		log = slog.Default()
	}
	if spec.Listen == "" {
		spec.Listen = "127.0.0.1:4222"
	}
	if spec.Storage == "" {
		spec.Storage = "file"
	}
	if err := spec.check(); err != nil {
		return nil, err
	}
	t := &Transport{spec: spec, log: log.With("transport", "nats "+spec.Stream), inflight: map[jetstream.Msg]struct{}{}}
	t.drained = sync.NewCond(&t.flight)
	t.ep = &endpoint{name: "bus transport " + spec.Stream, where: spec.where(), dataDir: dataDir, log: t.log}
	return t, nil
}

func (s *TransportSpec) where() where { return where{URL: s.URL, Listen: s.Listen} }

// consumerConfig is the durable consumer of one service.
func (t *Transport) consumerConfig(name string) jetstream.ConsumerConfig {
	p := t.spec.Prefix
	return jetstream.ConsumerConfig{Durable: name, AckPolicy: jetstream.AckExplicitPolicy, AckWait: t.spec.AckWait,
		MaxDeliver: -1, MaxAckPending: bus.DefaultMailbox,
		FilterSubjects: []string{p + "." + name + ".*", p + "." + broadcastToken + ".*"}}
}

// Start connects (or starts the embedded server), makes the stream when
// missing, and for each local service makes or updates its consumer,
// starts reading it and subscribes to its requests.
func (t *Transport) Start(ctx context.Context, local []string, r bus.Receiver) error {
	for _, name := range local {
		if !validName(name) || name == broadcastToken {
			return fmt.Errorf("nats transport: service %q: a name carried on NATS is a word without spaces, dots, * or > other than %q", name, broadcastToken)
		}
	}
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if _, ok := ctx.Deadline(); !ok {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, 30*time.Second)
		defer stop()
	}
	js, err := t.ep.acquire(ctx)
	if err != nil {
		cancel()
		return fmt.Errorf("nats transport: %w", err)
	}
	fail := func(err error) error {
		t.stopAll()
		t.mu.Lock()
		t.cancel, t.js, t.nc, t.r = nil, nil, nil, nil
		t.mu.Unlock()
		t.ep.release()
		return fmt.Errorf("nats transport: %w", err)
	}
	cfg := jetstream.StreamConfig{Name: t.spec.Stream, Subjects: []string{t.spec.Prefix + ".*.*"}, Retention: jetstream.InterestPolicy,
		Storage: storage(t.spec.Storage), Replicas: t.spec.Replicas, Duplicates: 2 * time.Minute}
	if err := ensureStream(ctx, js, cfg); err != nil {
		cancel()
		t.ep.release()
		return fmt.Errorf("nats transport: %w", err)
	}
	t.mu.Lock()
	t.js, t.nc, t.r, t.local, t.cancel, t.closing = js, t.ep.conn(), r, local, cancel, false
	t.mu.Unlock()
	for _, name := range local {
		c, err := js.CreateOrUpdateConsumer(ctx, t.spec.Stream, t.consumerConfig(name))
		if err != nil {
			return fail(fmt.Errorf("consumer %q of stream %q: %w", name, t.spec.Stream, err))
		}
		t.known.Store(name, true)
		it, err := c.Messages(jetstream.PullMaxMessages(64))
		if err != nil {
			return fail(fmt.Errorf("consumer %q: %w", name, err))
		}
		t.mu.Lock()
		t.its = append(t.its, it)
		t.mu.Unlock()
		t.loops.Go(func() { t.consume(run, name, it) })
		sub, err := t.ep.conn().QueueSubscribe(t.spec.Prefix+"."+name+".*.request", "svc_"+name, func(m *natsgo.Msg) {
			t.mu.Lock()
			if t.closing {
				t.mu.Unlock()
				data, _ := bus.EncodeReply(nil, fmt.Errorf("nats transport: service %q: %w", name, bus.ErrStopped))
				_ = m.Respond(data)
				return
			}
			t.work.Add(1)
			t.mu.Unlock()
			go func() {
				defer t.work.Done()
				t.answer(run, name, m)
			}()
		})
		if err != nil {
			return fail(fmt.Errorf("requests of %q: %w", name, err))
		}
		t.mu.Lock()
		t.subs = append(t.subs, sub)
		t.mu.Unlock()
	}
	if err := t.ep.conn().FlushWithContext(ctx); err != nil {
		return fail(err)
	}
	t.loops.Go(func() { t.heartbeats(run) })
	return nil
}

// stopAll unsubscribes, stops the consumers' loops and waits for them.
func (t *Transport) stopAll() {
	t.mu.Lock()
	subs, its, cancel := t.subs, t.its, t.cancel
	t.subs, t.its, t.closing = nil, nil, true
	t.mu.Unlock()
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
	for _, it := range its {
		it.Stop()
	}
	if cancel != nil {
		cancel()
	}
	t.loops.Wait()
	t.work.Wait()
}

// Stop stops taking messages, waits until ctx ends for the messages it
// handed to the bus to run (they are acknowledged then; the rest are
// delivered again later), and disconnects.
func (t *Transport) Stop(ctx context.Context) error {
	t.mu.Lock()
	if t.cancel == nil {
		t.mu.Unlock()
		return nil
	}
	t.mu.Unlock()
	// stop fetching, but keep the connection for the acks of the runs
	t.mu.Lock()
	subs, its := t.subs, t.its
	t.subs, t.its, t.closing = nil, nil, true
	t.mu.Unlock()
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
	for _, it := range its {
		it.Stop()
	}
	waited := make(chan struct{})
	go func() {
		t.flight.Lock()
		for len(t.inflight) > 0 && ctx.Err() == nil {
			t.drained.Wait()
		}
		t.flight.Unlock()
		close(waited)
	}()
	var err error
	select {
	case <-waited:
	case <-ctx.Done():
		err = fmt.Errorf("nats transport: %d messages not run before the stop: delivered again later: %w", t.pending(), ctx.Err())
		t.flight.Lock()
		t.drained.Broadcast()
		t.flight.Unlock()
		<-waited
	}
	t.stopAll()
	t.mu.Lock()
	t.cancel, t.js, t.nc, t.r = nil, nil, nil, nil
	t.mu.Unlock()
	t.ep.release()
	return err
}

func (t *Transport) pending() int {
	t.flight.Lock()
	defer t.flight.Unlock()
	return len(t.inflight)
}

// conn returns the JetStream context and connection while started.
func (t *Transport) conn() (jetstream.JetStream, *natsgo.Conn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.js == nil {
		return nil, nil, fmt.Errorf("nats transport: %w", bus.ErrBusStopped)
	}
	return t.js, t.nc, nil
}

// Submit publishes m to its subject and returns once the stream acked it.
func (t *Transport) Submit(ctx context.Context, m *bus.Message) error {
	js, _, err := t.conn()
	if err != nil {
		return err
	}
	dest := m.Destination
	if dest == bus.Broadcast {
		dest = broadcastToken
	} else if err := t.exists(ctx, js, dest); err != nil {
		return err
	}
	body, err := fc.AppendJSON(nil, m.Body)
	if err != nil {
		return fmt.Errorf("nats transport: submit to %q: encode body: %w", m.Destination, err)
	}
	if len(m.Body) == 0 {
		body = []byte("{}")
	}
	msg := natsgo.NewMsg(t.spec.Prefix + "." + dest + "." + m.Action)
	msg.Data = body
	msg.Header.Set("Content-Type", "application/json")
	if m.From != "" {
		msg.Header.Set(HeaderBusFrom, m.From)
	}
	if m.Destination == bus.Broadcast {
		t.mu.Lock()
		msg.Header.Set(HeaderBusLocal, strings.Join(t.local, ","))
		t.mu.Unlock()
	}
	if !validSubject(msg.Subject, false) {
		return fmt.Errorf("nats transport: submit to %q action %q: not a subject: %q", m.Destination, m.Action, msg.Subject)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.spec.Timeout)
		defer cancel()
	}
	var opts []jetstream.PublishOpt
	if m.ID != "" {
		opts = append(opts, jetstream.WithMsgID(m.ID))
	}
	if _, err := js.PublishMsg(ctx, msg, opts...); err != nil {
		return fmt.Errorf("nats transport: submit to %q action %q: %w", m.Destination, m.Action, err)
	}
	return nil
}

// exists checks that dest has a consumer: some process ran the service.
func (t *Transport) exists(ctx context.Context, js jetstream.JetStream, dest string) error {
	if _, ok := t.known.Load(dest); ok {
		return nil
	}
	if !validName(dest) || dest == broadcastToken {
		return fmt.Errorf("nats transport: submit to %q: %w", dest, bus.ErrUnknownDestination)
	}
	_, err := js.Consumer(ctx, t.spec.Stream, dest)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return fmt.Errorf("nats transport: submit to %q: %w: no process runs it (no consumer %q on stream %s)", dest, bus.ErrUnknownDestination, dest, t.spec.Stream)
	}
	if err != nil {
		return fmt.Errorf("nats transport: submit to %q: %w", dest, err)
	}
	t.known.Store(dest, true)
	return nil
}

// Request sends m to a process that runs its destination and waits for
// the reply until ctx ends.
func (t *Transport) Request(ctx context.Context, m *bus.Message) (map[string]any, error) {
	_, nc, err := t.conn()
	if err != nil {
		return nil, err
	}
	body, err := fc.AppendJSON(nil, m.Body)
	if err != nil {
		return nil, fmt.Errorf("nats transport: request to %q: encode body: %w", m.Destination, err)
	}
	msg := natsgo.NewMsg(t.spec.Prefix + "." + m.Destination + "." + m.Action + ".request")
	if !validSubject(msg.Subject, false) {
		return nil, fmt.Errorf("nats transport: request to %q: %w", m.Destination, bus.ErrUnknownDestination)
	}
	msg.Data = body
	if m.ID != "" {
		msg.Header.Set(natsgo.MsgIdHdr, m.ID)
	}
	if m.From != "" {
		msg.Header.Set(HeaderBusFrom, m.From)
	}
	if dl, ok := ctx.Deadline(); ok {
		msg.Header.Set(HeaderBusTimeout, strconv.FormatInt(time.Until(dl).Milliseconds(), 10))
	}
	resp, err := nc.RequestMsgWithContext(ctx, msg)
	if errors.Is(err, natsgo.ErrNoResponders) {
		return nil, fmt.Errorf("nats transport: request to %q: %w: no process runs it", m.Destination, bus.ErrUnknownDestination)
	}
	if err != nil {
		return nil, fmt.Errorf("nats transport: request to %q action %q: no reply: %w", m.Destination, m.Action, err)
	}
	return bus.DecodeReply(resp.Data)
}

// answer runs a request for the local service name and replies.
func (t *Transport) answer(ctx context.Context, name string, m *natsgo.Msg) {
	action := m.Subject[len(t.spec.Prefix)+len(name)+2 : len(m.Subject)-len(".request")]
	reply := func(out map[string]any, err error) {
		data, eerr := bus.EncodeReply(out, err)
		if eerr != nil {
			data, _ = bus.EncodeReply(nil, eerr)
		}
		if rerr := m.Respond(data); rerr != nil {
			t.log.Warn("nats transport: reply", "service", name, "action", action, "error", rerr)
		}
	}
	c, err := fc.FromJSON(m.Data)
	if err != nil {
		reply(nil, fmt.Errorf("nats transport: request to %q: bad body: %w", name, err))
		return
	}
	if ms, err := strconv.ParseInt(m.Header.Get(HeaderBusTimeout), 10, 64); err == nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	t.mu.Lock()
	r := t.r
	t.mu.Unlock()
	if r == nil {
		reply(nil, fmt.Errorf("nats transport: %w", bus.ErrBusStopped))
		return
	}
	out, err := r.Receive(ctx, &bus.Message{ID: m.Header.Get(natsgo.MsgIdHdr), From: m.Header.Get(HeaderBusFrom),
		Destination: name, Action: action, Body: c.Map()}, true)
	reply(out, err)
}

// consume hands the messages of the service name's consumer to the bus.
func (t *Transport) consume(ctx context.Context, name string, it jetstream.MessagesContext) {
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return
			}
			t.log.Warn("nats transport: next message", "service", name, "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		t.deliver(ctx, name, msg)
	}
}

// deliver hands one message to the local service name.
func (t *Transport) deliver(ctx context.Context, name string, msg jetstream.Msg) {
	subj := msg.Subject()
	rest := strings.TrimPrefix(subj, t.spec.Prefix+".")
	dest, action, ok := strings.Cut(rest, ".")
	if !ok {
		t.log.Error("nats transport: a message on an unexpected subject: terminated", "subject", subj)
		_ = msg.Term()
		return
	}
	hdr := msg.Headers()
	if dest == broadcastToken {
		for l := range strings.SplitSeq(hdr.Get(HeaderBusLocal), ",") {
			if l == name { // the sender's own service had it there
				_ = msg.Ack()
				return
			}
		}
	}
	c, err := fc.FromJSON(msg.Data())
	if err != nil {
		t.log.Error("nats transport: a message whose body is not a JSON object: terminated", "service", name, "subject", subj, "error", err)
		_ = msg.Term()
		return
	}
	id := hdr.Get(natsgo.MsgIdHdr)
	if id == "" {
		if meta, err := msg.Metadata(); err == nil {
			id = meta.Stream + "-" + strconv.FormatUint(meta.Sequence.Stream, 10)
		}
	}
	t.mu.Lock()
	r := t.r
	t.mu.Unlock()
	if r == nil {
		_ = msg.Nak()
		return
	}
	t.flight.Lock()
	t.inflight[msg] = struct{}{}
	t.flight.Unlock()
	settled := func() {
		t.flight.Lock()
		delete(t.inflight, msg)
		t.drained.Broadcast()
		t.flight.Unlock()
	}
	m := &bus.Message{ID: id, From: hdr.Get(HeaderBusFrom), Destination: name, Action: action, Body: c.Map(),
		Done: func(error) {
			if err := msg.Ack(); err != nil {
				t.log.Warn("nats transport: ack", "service", name, "id", id, "error", err)
			}
			settled()
		}}
	_, err = r.Receive(ctx, m, false)
	if err == nil {
		return
	}
	settled()
	switch {
	case errors.Is(err, store.ErrExists):
		// recorded already (a redelivery): the durable mailbox has it
		_ = msg.Ack()
	case errors.Is(err, bus.ErrUnknownAction) && dest == broadcastToken,
		(errors.Is(err, bus.ErrStopped) || errors.Is(err, bus.ErrDisabled)) && dest == broadcastToken:
		_ = msg.Ack() // a broadcast reaches the running services that have the action
	case errors.Is(err, bus.ErrUnknownAction), errors.Is(err, bus.ErrStopped), errors.Is(err, bus.ErrDisabled):
		t.log.Error("nats transport: message refused: it does not run", "service", name, "action", action, "id", id, "error", err)
		_ = msg.Ack()
	case ctx.Err() != nil:
		_ = msg.Nak() // stopping: for another process, or the next start
	default:
		t.log.Warn("nats transport: message not queued: delivered again", "service", name, "action", action, "id", id, "error", err)
		_ = msg.NakWithDelay(time.Second)
	}
}

// heartbeats reports the messages handed to the bus and not yet run in
// progress, so that a long mailbox wait is not taken for a crash.
func (t *Transport) heartbeats(ctx context.Context) {
	tick := time.NewTicker(t.spec.AckWait / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.flight.Lock()
			msgs := make([]jetstream.Msg, 0, len(t.inflight))
			for m := range t.inflight {
				msgs = append(msgs, m)
			}
			t.flight.Unlock()
			for _, m := range msgs {
				_ = m.InProgress()
			}
		}
	}
}

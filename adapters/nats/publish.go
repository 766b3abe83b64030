package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/telemetry"
	fc "github.com/svcflow/svcflow/context"
	ferrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// PublishSpec is the YAML form of a publish step: it publishes to a
// JetStream subject with a message id, so the stream drops a message
// published again with the same id (a run repeated after a crash), and
// waits for the stream's acknowledgement.
//
//   - publish: {subject: orders.priced, body: order}
//   - publish: {subject: "ledger.{{.region}}", body_template: '{"id": {{.meta.id}}, "total": {{.total}}}', into: published}
type PublishSpec struct {
	URL    []string `yaml:"url" spec:"oneormany" doc:"server URLs (nats://host:4222); none: the process's embedded server (the one a nats source of the same flowrun serve started; else one under ./data/nats)"`
	Listen string   `yaml:"listen" default:"127.0.0.1:4222" doc:"the embedded server's client address when this step starts it; unused with url"`

	Subject      component.Template                  `yaml:"subject" spec:"required,scalar" doc:"the subject, a template over the context; a stream must take it"`
	Body         component.Key                       `yaml:"body" doc:"a key whose value is sent as JSON (default: the whole context but meta)"`
	BodyTemplate component.Template                  `yaml:"body_template" doc:"the body as a template (instead of body); with a JSON content_type each {{...}} is inserted JSON-encoded"`
	ContentType  string                              `yaml:"content_type" default:"application/json" doc:"the Content-Type header of the message"`
	ID           component.Template                  `yaml:"id" doc:"the message id the stream deduplicates by (default: meta.id, then a dot and the step's name)"`
	Headers      component.Pairs[component.Template] `yaml:"headers" doc:"message headers: name: template"`
	Timeout      time.Duration                       `yaml:"timeout" default:"5s" doc:"bound on each attempt, the stream's ack included"`
	Retry        *ferrors.Policy                     `yaml:"retry" doc:"the retry policy (the keys of a flow's retry:); a failed publish is a Retry error"`
	Into         component.Key                       `yaml:"into" doc:"a key for the ack: {stream, sequence, duplicate}"`
}

// StepName is "publish(SUBJECT)".
func (s PublishSpec) StepName() string { return "publish(" + s.Subject.Source() + ")" }

// Publish is the publish step component.
var Publish = component.Step("publish", "publish to a JetStream subject with a message id (the stream drops duplicates) and wait for the stream's ack; a failure is retried", newPublish)

func newPublish(env component.Env, s PublishSpec) (flow.Service, error) {
	var errs []error
	w := where{URL: s.URL, Listen: s.Listen}
	if err := w.check(); err != nil {
		errs = append(errs, err)
	}
	if s.Subject.IsZero() {
		errs = append(errs, component.FieldErrorf("subject", "expected a subject"))
	} else if s.Subject.Constant() && !validSubject(s.Subject.Source(), false) {
		errs = append(errs, component.FieldErrorf("subject", "%q is not a subject without wildcards", s.Subject.Source()))
	}
	if s.Body != "" && !s.BodyTemplate.IsZero() {
		errs = append(errs, component.FieldErrorf("body_template", "set body (a key sent as JSON) or body_template, not both"))
	}
	p := &publisher{name: env.Name, subject: s.Subject, id: s.ID, body: string(s.Body), contentType: s.ContentType,
		into: string(s.Into), timeout: s.Timeout}
	if p.contentType == "" {
		p.contentType = message.ContentTypeJSON
	}
	if !s.BodyTemplate.IsZero() {
		bt := s.BodyTemplate
		if message.IsJSON(p.contentType) {
			t, err := bt.JSON()
			if err != nil {
				errs = append(errs, component.FieldErrorf("body_template", "%v", err))
			}
			bt = t
		}
		p.bodyTmpl = &bt
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p.ep = &endpoint{name: "publish " + env.Name, where: w, dataDir: env.DataDir, log: env.Log()}
	reads := append(s.Subject.Keys(), s.ID.Keys()...)
	for _, h := range s.Headers {
		p.headers = append(p.headers, pair{h.Key, h.Value})
		reads = append(reads, h.Value.Keys()...)
	}
	if s.Body != "" {
		reads = append(reads, string(s.Body))
	}
	reads = append(reads, s.BodyTemplate.Keys()...)
	seen := map[string]bool{}
	for _, k := range reads {
		if !seen[k] {
			seen[k] = true
			p.contract.Needs = append(p.contract.Needs, fc.Any(k))
		}
	}
	if p.into != "" {
		p.contract.Provides = []fc.KeyInfo{fc.Any(p.into)}
	}
	return p, nil
}

type pair struct {
	name string
	t    component.Template
}

// publisher is the publish step's service.
type publisher struct {
	name        string
	ep          *endpoint
	subject     component.Template
	id          component.Template
	body        string
	bodyTmpl    *component.Template
	contentType string
	headers     []pair
	into        string
	timeout     time.Duration
	contract    flow.Contract

	mu   sync.Mutex
	held bool
	js   jetstream.JetStream
}

func (p *publisher) Name() string            { return p.name }
func (p *publisher) Contract() flow.Contract { return p.contract }

// Init connects (or starts the embedded server).
func (p *publisher) Init(ctx context.Context) error {
	_, err := p.conn(ctx)
	return err
}

// Close disconnects.
func (p *publisher) Close(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held {
		p.held, p.js = false, nil
		p.ep.release()
	}
	return nil
}

func (p *publisher) conn(ctx context.Context) (jetstream.JetStream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.held {
		return p.js, nil
	}
	js, err := p.ep.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	p.held, p.js = true, js
	return js, nil
}

func (p *publisher) Call(ctx context.Context, c *fc.Context) error {
	js, err := p.conn(ctx)
	if err != nil {
		return ferrors.Retry(err)
	}
	m := c.View()
	subject, err := p.subject.Execute(m)
	if err != nil {
		return fmt.Errorf("publish subject: %w", err)
	}
	if !validSubject(subject, false) {
		return ferrors.Stopf("publish: %q is not a subject", subject)
	}
	var data []byte
	switch {
	case p.body != "":
		data, err = json.Marshal(m[p.body])
	case p.bodyTmpl != nil:
		var s string
		s, err = p.bodyTmpl.Execute(m)
		data = []byte(s)
	default:
		body := maps.Clone(m)
		delete(body, "meta")
		data, err = json.Marshal(body)
	}
	if err != nil {
		return fmt.Errorf("publish body: %w", err)
	}
	id, err := p.msgID(m)
	if err != nil {
		return err
	}
	msg := natsgo.NewMsg(subject)
	msg.Data = data
	msg.Header.Set("Content-Type", p.contentType)
	telemetry.Inject(ctx, msg.Header.Set) // a traced run's traceparent; headers: may set their own
	for _, h := range p.headers {
		v, err := h.t.Execute(m)
		if err != nil {
			return fmt.Errorf("publish header %s: %w", h.name, err)
		}
		msg.Header.Set(h.name, v)
	}
	if _, ok := ctx.Deadline(); !ok && p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	ack, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(id))
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("publish %s: %w", subject, err)
		}
		return ferrors.Retry(fmt.Errorf("publish %s: %w", subject, err))
	}
	if p.into != "" {
		c.Set(p.into, map[string]any{"stream": ack.Stream, "sequence": ack.Sequence, "duplicate": ack.Duplicate})
	}
	return nil
}

// msgID is the id template's value, or meta.id and the step's name, or a
// new UUID for a run without an id.
func (p *publisher) msgID(m map[string]any) (string, error) {
	if !p.id.IsZero() {
		id, err := p.id.Execute(m)
		if err != nil {
			return "", fmt.Errorf("publish id: %w", err)
		}
		if strings.TrimSpace(id) == "" {
			return "", ferrors.Stopf("publish: the id is empty")
		}
		return id, nil
	}
	if meta, ok := m["meta"].(map[string]any); ok {
		if id, ok := meta["id"].(string); ok && id != "" {
			return id + "." + p.name, nil
		}
	}
	return uuid.NewString(), nil
}

// SinkSpec is the YAML form of a nats sink: the output of each run that
// succeeds is published to a subject with the message's id as the
// message id, and the stream's ack is awaited before the channel acks the
// message.
//
//	channels:
//	  orders:
//	    from: {http: {listen: "127.0.0.1:8080", path: /orders}}
//	    flow: orders
//	    to:
//	      nats: {subject: orders.priced}                                  # the output but meta, as JSON
//	      # nats: {subject: orders.priced, body: order}                   # one key's value
//	      # nats: {subject: orders.priced, body_template: '{"id": {{.meta.id}}, "total": {{.total}}}'}
type SinkSpec struct {
	URL          []string           `yaml:"url" spec:"oneormany" doc:"server URLs (nats://host:4222); none: the process's embedded server"`
	Listen       string             `yaml:"listen" default:"127.0.0.1:4222" doc:"the embedded server's client address when this sink starts it; unused with url"`
	Subject      string             `yaml:"subject" spec:"required,scalar" doc:"the subject; a stream must take it"`
	Body         component.Key      `yaml:"body" doc:"a key of the output whose value is sent as JSON (default: the whole output context but meta)"`
	BodyTemplate component.Template `yaml:"body_template" doc:"the body as a template over the output context, meta included (instead of body); with a JSON content_type each {{...}} is inserted JSON-encoded"`
	ContentType  string             `yaml:"content_type" default:"application/json" doc:"the Content-Type header of the message"`
	ID           component.Template `yaml:"id" doc:"the message id the stream deduplicates by, a template over the output context (default: the message's id; two sinks of a channel into one stream need ids of their own)"`
	Timeout      time.Duration      `yaml:"timeout" default:"5s" doc:"bound on one send, the stream's ack included"`
}

// Sink publishes messages to a subject: a body made of the message's
// context (a run's output) when it has one (by default that context but
// meta, as JSON), else its payload, with the message id as the JetStream
// message id. Send returns once the stream acknowledged it (a duplicate id
// is acknowledged without being stored again). Close releases its
// connection.
type Sink struct {
	subject     string
	timeout     time.Duration
	body        string
	bodyTmpl    *component.Template
	contentType string
	id          component.Template
	ep          *endpoint

	mu   sync.Mutex
	held bool
	js   jetstream.JetStream
}

// NewSink returns a sink for spec (defaults applied), built for the
// channel named name; without a URL its embedded server stores under
// dataDir/nats. It connects at its first Send.
func NewSink(name string, spec SinkSpec, dataDir string, env component.Env) (*Sink, error) {
	w := where{URL: spec.URL, Listen: spec.Listen}
	if w.Listen == "" {
		w.Listen = "127.0.0.1:4222"
	}
	var errs []error
	if err := w.check(); err != nil {
		errs = append(errs, err)
	}
	if !validSubject(spec.Subject, false) {
		errs = append(errs, component.FieldErrorf("subject", "%q is not a subject without wildcards", spec.Subject))
	}
	if spec.Body != "" && !spec.BodyTemplate.IsZero() {
		errs = append(errs, component.FieldErrorf("body_template", "set body (a key sent as JSON) or body_template, not both"))
	}
	s := &Sink{subject: spec.Subject, timeout: spec.Timeout, body: string(spec.Body), contentType: spec.ContentType, id: spec.ID}
	if s.contentType == "" {
		s.contentType = message.ContentTypeJSON
	}
	if !spec.BodyTemplate.IsZero() {
		bt := spec.BodyTemplate
		if message.IsJSON(s.contentType) {
			t, err := bt.JSON()
			if err != nil {
				errs = append(errs, component.FieldErrorf("body_template", "%v", err))
			}
			bt = t
		}
		s.bodyTmpl = &bt
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.ep = &endpoint{name: "sink " + name, where: w, dataDir: dataDir, log: env.Log()}
	return s, nil
}

// data is the body of m and its content type.
func (s *Sink) data(m *message.Message) ([]byte, string, error) {
	if m.Context == nil {
		return m.Payload, m.ContentType, nil
	}
	switch {
	case s.body != "":
		b, err := json.Marshal(m.Context[s.body])
		return b, s.contentType, err
	case s.bodyTmpl != nil:
		text, err := s.bodyTmpl.Execute(m.Context)
		return []byte(text), s.contentType, err
	}
	body := m.Context
	if _, ok := body["meta"]; ok {
		body = maps.Clone(body)
		delete(body, "meta")
	}
	b, err := json.Marshal(body)
	return b, s.contentType, err
}

// SinkComponent is the nats sink component.
var SinkComponent = component.Sink("nats", "publish the output of each run that succeeds to a JetStream subject with the message's id (the stream drops duplicates), waiting for the ack before the message is acked",
	func(env component.Env, s SinkSpec) (channel.Sink, error) {
		return NewSink(env.Name, s, env.DataDir, env)
	})

// Name implements channel.Sink.
func (s *Sink) Name() string { return "nats " + s.subject }

// Send implements channel.Sink.
func (s *Sink) Send(ctx context.Context, m *message.Message) error {
	s.mu.Lock()
	if !s.held {
		js, err := s.ep.acquire(ctx)
		if err != nil {
			s.mu.Unlock()
			return ferrors.Retry(fmt.Errorf("nats sink %s: %w", s.subject, err))
		}
		s.held, s.js = true, js
	}
	js := s.js
	s.mu.Unlock()
	data, ct, err := s.data(m)
	if err != nil {
		return fmt.Errorf("nats sink %s: body: %w", s.subject, err)
	}
	id := m.ID
	if !s.id.IsZero() && m.Context != nil {
		if id, err = s.id.Execute(m.Context); err != nil {
			return fmt.Errorf("nats sink %s: id: %w", s.subject, err)
		}
	}
	msg := natsgo.NewMsg(s.subject)
	msg.Data = data
	if ct != "" {
		msg.Header.Set("Content-Type", ct)
	}
	telemetry.Inject(ctx, msg.Header.Set)
	if s.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.timeout)
		defer cancel()
	}
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(id)); err != nil {
		return ferrors.Retry(fmt.Errorf("nats sink %s: %w", s.subject, err))
	}
	return nil
}

// Close releases the sink's connection.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held {
		s.held, s.js = false, nil
		s.ep.release()
	}
	return nil
}

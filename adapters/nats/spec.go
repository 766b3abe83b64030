package nats

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/svcflow/svcflow/adapters/component"
)

// where says where a component's NATS server is: the servers at URL, or,
// with no URL, a nats-server embedded in this process with JetStream
// stored under the data folder (`flowrun serve --data`), shared by every
// component of the process that names none.
type where struct {
	URL    []string
	Listen string
}

// urls returns the URLs, split at commas and checked.
func (s where) urls() ([]string, error) {
	var out []string
	for _, u := range s.URL {
		for part := range strings.SplitSeq(u, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			pu, err := url.Parse(part)
			if err != nil || pu.Host == "" || !slices.Contains([]string{"nats", "tls", "ws", "wss"}, pu.Scheme) {
				return nil, component.FieldErrorf("url", "%q is not a NATS URL: expected nats://host:port", part)
			}
			out = append(out, part)
		}
	}
	return out, nil
}

func (s where) check() error {
	if _, err := s.urls(); err != nil {
		return err
	}
	if len(s.URL) == 0 {
		if _, _, err := splitListen(s.Listen); err != nil {
			return component.FieldErrorf("listen", "%v", err)
		}
	}
	return nil
}

// Spec is the YAML form of a nats source: a durable pull consumer of a
// JetStream stream, shared by every worker that names it.
//
//	from:
//	  nats:
//	    url: nats://127.0.0.1:4222    # or a list; none: an embedded server
//	    stream: ORDERS
//	    subjects: [orders.>]
//	    consumer: workers               # default: the channel's name
//	    max_deliver: 5
//	    ack_wait: 30s
//	    dead_letter: orders.dead
//
// The stream and the consumer are created when missing, with these
// settings, and checked when they exist: a setting that differs is an
// error naming it, never a silent reconfiguration.
type Spec struct {
	URL    []string `yaml:"url" spec:"oneormany" doc:"server URLs (nats://host:4222), one or several (a cluster; comma-separated also works); none: run an embedded server in this process"`
	Listen string   `yaml:"listen" default:"127.0.0.1:4222" doc:"the embedded server's client address (port 0: any free port); unused with url"`

	Stream     string        `yaml:"stream" spec:"required" doc:"the JetStream stream"`
	Subjects   []string      `yaml:"subjects" spec:"required,oneormany" doc:"the stream's subjects (wildcards * and > allowed)"`
	Retention  string        `yaml:"retention" default:"workqueue" enum:"workqueue,limits,interest" doc:"the stream's retention: workqueue (a message is removed once acked), limits or interest"`
	Storage    string        `yaml:"storage" default:"file" enum:"file,memory" doc:"where the stream keeps messages"`
	Replicas   int           `yaml:"replicas" default:"1" doc:"the stream's replicas in a cluster (1 for one server)"`
	Duplicates time.Duration `yaml:"duplicate_window" default:"2m" doc:"the stream's window in which a message id seen before is a duplicate (publish dedupe)"`

	Consumer      string        `yaml:"consumer" doc:"the durable consumer's name, shared by the workers (default: the channel's name)"`
	FilterSubject string        `yaml:"filter_subject" doc:"take only messages of this subject (default: all of the stream's)"`
	MaxDeliver    int           `yaml:"max_deliver" default:"5" min:"-1" doc:"deliveries of a message at most; a message that fails the last is terminated and dead-lettered; -1: no bound"`
	AckWait       time.Duration `yaml:"ack_wait" default:"30s" doc:"how long a delivery may go without an ack or heartbeat before it is redelivered"`
	MaxAckPending int           `yaml:"max_ack_pending" default:"1000" doc:"deliveries unacknowledged at once, all workers together"`

	DeadLetter  string        `yaml:"dead_letter" doc:"subject a message is published to, with its error, when it is terminated (a stream <STREAM>_DEAD is made for it when no stream takes it); none: terminated messages are dropped"`
	Concurrency int           `yaml:"concurrency" default:"64" doc:"messages this worker runs at once"`
	Heartbeat   time.Duration `yaml:"heartbeat" doc:"how often a message still running is reported in progress to the server, so it is not redelivered (default: ack_wait / 3)"`
	MaxNakDelay time.Duration `yaml:"max_nak_delay" default:"5m" doc:"the longest redelivery delay: a message whose retries ran out is redelivered after the channel's retry_after (or the error's hint) doubled per earlier delivery, at most this"`
}

// retention maps the YAML word to JetStream's policy.
func retention(s string) jetstream.RetentionPolicy {
	switch s {
	case "limits":
		return jetstream.LimitsPolicy
	case "interest":
		return jetstream.InterestPolicy
	}
	return jetstream.WorkQueuePolicy
}

func storage(s string) jetstream.StorageType {
	if s == "memory" {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// check checks a source spec; consumer is the default consumer name.
func (s *Spec) check(consumer string) error {
	var errs []error
	if err := s.where().check(); err != nil {
		errs = append(errs, err)
	}
	if !validName(s.Stream) {
		errs = append(errs, component.FieldErrorf("stream", "%q: a stream name is a word without spaces, dots, * or >", s.Stream))
	}
	for i, subj := range s.Subjects {
		if !validSubject(subj, true) {
			errs = append(errs, component.FieldErrorf(fmt.Sprintf("subjects.%d", i), "%q is not a subject (tokens separated by dots; * and > as wildcards)", subj))
		}
	}
	if s.Consumer == "" {
		s.Consumer = consumer
	}
	if !validName(s.Consumer) {
		errs = append(errs, component.FieldErrorf("consumer", "%q: a consumer name is a word without spaces, dots, * or >", s.Consumer))
	}
	if s.FilterSubject != "" && !validSubject(s.FilterSubject, true) {
		errs = append(errs, component.FieldErrorf("filter_subject", "%q is not a subject", s.FilterSubject))
	}
	if s.DeadLetter != "" {
		if !validSubject(s.DeadLetter, false) {
			errs = append(errs, component.FieldErrorf("dead_letter", "%q is not a subject without wildcards", s.DeadLetter))
		}
		for _, subj := range s.Subjects {
			if subjectMatches(subj, s.DeadLetter) {
				errs = append(errs, component.FieldErrorf("dead_letter", "%q is one of the stream's subjects (%s): dead letters would be delivered again", s.DeadLetter, subj))
			}
		}
	}
	if s.MaxDeliver == 0 {
		s.MaxDeliver = -1
	}
	if s.AckWait < time.Second {
		errs = append(errs, component.FieldErrorf("ack_wait", "must be 1s or more, got %v", s.AckWait))
	}
	if s.MaxAckPending < 1 {
		errs = append(errs, component.FieldErrorf("max_ack_pending", "must be positive, got %d", s.MaxAckPending))
	}
	if s.Concurrency < 1 {
		errs = append(errs, component.FieldErrorf("concurrency", "must be positive, got %d", s.Concurrency))
	}
	if s.Replicas < 1 || s.Replicas > 5 {
		errs = append(errs, component.FieldErrorf("replicas", "must be from 1 to 5, got %d", s.Replicas))
	}
	if s.Heartbeat <= 0 {
		s.Heartbeat = s.AckWait / 3
	}
	if s.Heartbeat >= s.AckWait {
		errs = append(errs, component.FieldErrorf("heartbeat", "must be shorter than ack_wait (%v), got %v", s.AckWait, s.Heartbeat))
	}
	if s.MaxNakDelay <= 0 {
		s.MaxNakDelay = 5 * time.Minute
	}
	return errors.Join(errs...)
}

func (s *Spec) where() where { return where{URL: s.URL, Listen: s.Listen} }

// streamConfig is the stream the spec declares.
func (s *Spec) streamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: s.Stream, Subjects: s.Subjects, Retention: retention(s.Retention),
		Storage: storage(s.Storage), Replicas: s.Replicas, Duplicates: s.Duplicates}
}

// consumerConfig is the consumer the spec declares.
func (s *Spec) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{Durable: s.Consumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: s.AckWait,
		MaxDeliver: s.MaxDeliver, FilterSubject: s.FilterSubject, MaxAckPending: s.MaxAckPending}
}

// validName reports whether s can name a stream or consumer.
func validName(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n.*>/\\")
}

// validSubject reports whether s is a subject; wild allows * and >.
func validSubject(s string, wild bool) bool {
	if s == "" || strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	toks := strings.Split(s, ".")
	for i, t := range toks {
		switch {
		case t == "":
			return false
		case t == "*" || t == ">":
			if !wild || t == ">" && i != len(toks)-1 {
				return false
			}
		case strings.ContainsAny(t, "*>"):
			return false
		}
	}
	return true
}

// subjectMatches reports whether the literal subject subj matches pattern.
func subjectMatches(pattern, subj string) bool {
	p, s := strings.Split(pattern, "."), strings.Split(subj, ".")
	for i, t := range p {
		if t == ">" {
			return len(s) > i
		}
		if i >= len(s) || t != "*" && t != s[i] {
			return false
		}
	}
	return len(p) == len(s)
}

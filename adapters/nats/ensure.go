package nats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrMismatch is wrapped by the error of a stream or consumer that exists
// on the server with a setting other than the configuration declares.
var ErrMismatch = errors.New("differs from its declaration")

// MismatchError names the stream or consumer, the setting and both values.
type MismatchError struct {
	What     string // "stream" or "consumer"
	Name     string // the stream's, or STREAM/CONSUMER
	Setting  string // the YAML key: subjects, retention, ack_wait, ...
	Declared string // the configuration's value
	Server   string // the server's value
}

// Error implements error: `stream "ORDERS": subjects: the server has
// [orders.*], the configuration declares [orders.>]: ...`.
func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s %q: %s: the server has %s, the configuration declares %s: %v (svcflow never reconfigures an existing %s: change the configuration, or edit or delete the %s on the server)",
		e.What, e.Name, e.Setting, e.Server, e.Declared, ErrMismatch, e.What, e.What)
}

// Unwrap returns [ErrMismatch].
func (e *MismatchError) Unwrap() error { return ErrMismatch }

// ensureStream makes the stream when missing, else checks that it has the
// declared settings.
func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	for attempt := 0; ; attempt++ {
		st, err := js.Stream(ctx, want.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			if _, err = js.CreateStream(ctx, want); err == nil {
				return nil
			}
			if attempt == 0 {
				continue // made meanwhile by another worker: check it
			}
		}
		if err != nil {
			return fmt.Errorf("stream %q: %w", want.Name, err)
		}
		return compareStream(want, st.CachedInfo().Config)
	}
}

func compareStream(want, have jetstream.StreamConfig) error {
	mm := func(setting string, declared, server any) error {
		return &MismatchError{What: "stream", Name: want.Name, Setting: setting, Declared: fmt.Sprint(declared), Server: fmt.Sprint(server)}
	}
	ws, hs := slices.Sorted(slices.Values(want.Subjects)), slices.Sorted(slices.Values(have.Subjects))
	switch {
	case !slices.Equal(ws, hs):
		return mm("subjects", ws, hs)
	case want.Retention != have.Retention:
		return mm("retention", retentionName(want.Retention), retentionName(have.Retention))
	case want.Storage != have.Storage:
		return mm("storage", storageName(want.Storage), storageName(have.Storage))
	case max(want.Replicas, 1) != max(have.Replicas, 1):
		return mm("replicas", want.Replicas, have.Replicas)
	case want.Duplicates != 0 && want.Duplicates != have.Duplicates:
		return mm("duplicate_window", want.Duplicates, have.Duplicates)
	}
	return nil
}

// ensureConsumer makes the durable consumer when missing, else checks
// that it has the declared settings.
func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, want jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	for attempt := 0; ; attempt++ {
		c, err := js.Consumer(ctx, stream, want.Durable)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			if c, err = js.CreateConsumer(ctx, stream, want); err == nil {
				return c, nil
			}
			if attempt == 0 {
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("consumer %q of stream %q: %w", want.Durable, stream, err)
		}
		return c, compareConsumer(stream, want, c.CachedInfo().Config)
	}
}

func compareConsumer(stream string, want, have jetstream.ConsumerConfig) error {
	mm := func(setting string, declared, server any) error {
		return &MismatchError{What: "consumer", Name: stream + "/" + want.Durable, Setting: setting, Declared: fmt.Sprint(declared), Server: fmt.Sprint(server)}
	}
	deliver := func(n int) string {
		if n <= 0 {
			return "-1 (no bound)"
		}
		return fmt.Sprint(n)
	}
	switch {
	case have.AckPolicy != jetstream.AckExplicitPolicy:
		return mm("ack policy", "explicit", have.AckPolicy.String())
	case want.AckWait != have.AckWait:
		return mm("ack_wait", want.AckWait, have.AckWait)
	case deliver(want.MaxDeliver) != deliver(have.MaxDeliver):
		return mm("max_deliver", deliver(want.MaxDeliver), deliver(have.MaxDeliver))
	case want.FilterSubject != have.FilterSubject:
		return mm("filter_subject", quoted(want.FilterSubject), quoted(have.FilterSubject))
	case want.MaxAckPending != have.MaxAckPending:
		return mm("max_ack_pending", want.MaxAckPending, have.MaxAckPending)
	case have.DeliverSubject != "":
		return mm("kind", "pull", "push (deliver subject "+have.DeliverSubject+")")
	}
	return nil
}

// ensureDeadLetter makes a stream <stream>_DEAD for the dead-letter
// subject when no stream takes it, so dead letters are kept.
func ensureDeadLetter(ctx context.Context, js jetstream.JetStream, stream, subject string, storageType jetstream.StorageType, replicas int) error {
	if _, err := js.StreamNameBySubject(ctx, subject); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("dead letter subject %q: %w", subject, err)
	}
	name := stream + "_DEAD"
	cfg := jetstream.StreamConfig{Name: name, Subjects: []string{subject}, Retention: jetstream.LimitsPolicy,
		Storage: storageType, Replicas: replicas, Duplicates: 2 * time.Minute}
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		if st, gerr := js.Stream(ctx, name); gerr == nil && slices.Contains(st.CachedInfo().Config.Subjects, subject) {
			return nil // made meanwhile by another worker
		}
		return fmt.Errorf("dead letter stream %q for %q: %w", name, subject, err)
	}
	return nil
}

func quoted(s string) string { return fmt.Sprintf("%q", s) }

func retentionName(r jetstream.RetentionPolicy) string {
	switch r {
	case jetstream.LimitsPolicy:
		return "limits"
	case jetstream.InterestPolicy:
		return "interest"
	case jetstream.WorkQueuePolicy:
		return "workqueue"
	}
	return r.String()
}

func storageName(s jetstream.StorageType) string {
	if s == jetstream.MemoryStorage {
		return "memory"
	}
	return "file"
}

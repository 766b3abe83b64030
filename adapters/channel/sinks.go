package channel

import (
	"context"
	"fmt"
	"io"

	"github.com/svcflow/svcflow/adapters/message"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
)

// sendSinks sends the output of a run that succeeded to the channel's
// sinks (Config.Sinks), in order, before the message's outcome is
// recorded and its source told. A sink's failure is a Retry error of the
// message (a Fatal or canceled one keeps its kind): it is recorded as an
// error and its source delivers it again, to every sink, so sinks dedupe
// by the message id (the nats sink does, within the stream's duplicate
// window).
func (c *Channel) sendSinks(ctx context.Context, m *message.Message, out *fc.Context) error {
	sm := &message.Message{ID: m.ID, Time: m.Time, ContentType: m.ContentType, Payload: m.Payload, Meta: m.Meta, Context: out.View()}
	for _, s := range c.cfg.Sinks {
		err := s.Send(ctx, sm)
		if err == nil {
			continue
		}
		err = fmt.Errorf("sink %s: %w", s.Name(), err)
		switch errors.KindOf(err) {
		case errors.KindRetry, errors.KindRetryExhausted, errors.KindFatal, errors.KindCanceled:
			return err
		}
		return errors.Retry(err)
	}
	return nil
}

// closeSinks closes the sinks that have a Close method (io.Closer): the
// channel owns the sinks it was given.
func (c *Channel) closeSinks() error {
	var errs []error
	for _, s := range c.cfg.Sinks {
		if cl, ok := s.(io.Closer); ok {
			if err := cl.Close(); err != nil {
				errs = append(errs, fmt.Errorf("sink %s: %w", s.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

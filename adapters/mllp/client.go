package mllp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrRejected is matched (errors.Is) by an [*AckError] whose code is AR
// or CR: the receiver refused the message; sending it again gets the
// same answer.
var ErrRejected = errors.New("hl7: message rejected")

// ErrApplication is matched (errors.Is) by an [*AckError] whose code is
// AE or CE: the receiver failed to process the message; it may be sent
// again.
var ErrApplication = errors.New("hl7: application error")

// AckError is the error of a negative acknowledgement.
type AckError struct {
	Ack *AckInfo
}

// Error returns "hl7: CODE for control id ID: TEXT".
func (e *AckError) Error() string {
	msg := fmt.Sprintf("hl7: %s for control id %q", e.Ack.Code, e.Ack.ControlID)
	if e.Ack.Text != "" {
		msg += ": " + e.Ack.Text
	}
	return msg
}

// Is matches ErrRejected (AR, CR) and ErrApplication (AE, CE).
func (e *AckError) Is(target error) bool {
	switch e.Ack.Code {
	case AR, "CR":
		return target == ErrRejected
	case AE, "CE":
		return target == ErrApplication
	}
	return false
}

// Client is an MLLP connection to an HL7 receiver: Send writes one framed
// message and reads its ACK. A Client is safe for concurrent use; sends
// take turns, as MLLP requires.
type Client struct {
	mu   sync.Mutex
	conn net.Conn
	fr   *FrameReader
}

// DefaultMaxAckSize bounds the ACKs a Client reads.
const DefaultMaxAckSize = 1 << 20

// Dial connects to the MLLP receiver at addr (host:port).
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mllp: dial %s: %w", addr, err)
	}
	return &Client{conn: conn, fr: NewFrameReader(conn, DefaultMaxAckSize)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Send writes msg, an HL7 v2 message, framed, and returns its ACK, read
// until ctx's deadline (none: no bound). A negative ACK (AE, AR, CE, CR)
// is returned with an [*AckError]; an ACK whose MSA-2 is not the
// message's control ID (MSH-10) is an error. After an I/O error or a
// canceled ctx the connection is unusable: close it.
func (c *Client) Send(ctx context.Context, msg []byte) (*AckInfo, error) {
	h, err := ParseHeader(msg)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	deadline, _ := ctx.Deadline()
	_ = c.conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.conn.Write(Frame(msg)); err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("mllp: send to %s: %w", c.conn.RemoteAddr(), err))
	}
	raw, err := c.fr.Next()
	if err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("mllp: reading the ACK from %s: %w", c.conn.RemoteAddr(), err))
	}
	ack, err := ParseAck(raw)
	if err != nil {
		return nil, fmt.Errorf("mllp: the answer of %s: %w", c.conn.RemoteAddr(), err)
	}
	if ack.ControlID != h.ControlID {
		return ack, fmt.Errorf("mllp: %s acknowledged control id %q, sent %q", c.conn.RemoteAddr(), ack.ControlID, h.ControlID)
	}
	if ack.Code != AA && ack.Code != "CA" {
		return ack, &AckError{Ack: ack}
	}
	return ack, nil
}

// ctxErr adds ctx's error to err when ctx ended.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return err
}

// Send connects to addr, sends msg and returns its ACK (see
// [Client.Send]), then closes the connection.
func Send(ctx context.Context, addr string, msg []byte) (*AckInfo, error) {
	c, err := Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Send(ctx, msg)
}

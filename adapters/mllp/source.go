package mllp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/message"
	flowerrors "github.com/svcflow/svcflow/errors"
)

// ContentType is the content type of HL7 v2 messages (ER7, the pipe
// encoding).
const ContentType = "x-application/hl7-v2+er7"

// Meta keys of a message received by the source.
const (
	MetaType              = "hl7.type"               // MSH-9 code and event: ADT^A01
	MetaMessageCode       = "hl7.message_code"       // ADT
	MetaTriggerEvent      = "hl7.trigger_event"      // A01
	MetaControlID         = "hl7.control_id"         // MSH-10
	MetaSendingApp        = "hl7.sending_app"        // MSH-3
	MetaSendingFacility   = "hl7.sending_facility"   // MSH-4
	MetaReceivingApp      = "hl7.receiving_app"      // MSH-5
	MetaReceivingFacility = "hl7.receiving_facility" // MSH-6
	MetaVersion           = "hl7.version"            // MSH-12
	MetaProcessingID      = "hl7.processing_id"      // MSH-11
	MetaFieldSeparator    = "hl7.field_separator"    // MSH-1
	MetaEncoding          = "hl7.encoding"           // MSH-2
	MetaRemote            = "mllp.remote"            // the client's address
)

// IDs from the control ID (Spec.IDs).
const (
	IDsControlID = "control_id"
	IDsRandom    = "random"
)

// ErrInvalid is returned (wrapped) by NewSource for a bad spec.
var ErrInvalid = errors.New("invalid mllp source")

// Spec configures an MLLP listener. The zero value of a field means its
// default (the default tag), in Go as in YAML.
type Spec struct {
	Address        string        `yaml:"address" spec:"required,scalar" doc:"host:port to listen on (port 0: a free one)"`
	MaxSize        int           `yaml:"max_size" default:"1048576" doc:"the largest message accepted, in bytes: a larger one is answered AR and the connection closed"`
	ReadTimeout    time.Duration `yaml:"read_timeout" default:"5m" doc:"how long a connection may stay idle between messages before it is closed"`
	MessageTimeout time.Duration `yaml:"message_timeout" default:"30s" doc:"how long a client may take to send one message once it began it (slow clients are disconnected)"`
	WriteTimeout   time.Duration `yaml:"write_timeout" default:"10s" doc:"bound on writing an ACK"`
	MaxConnections int           `yaml:"max_connections" default:"256" doc:"connections served at once; more are closed at once"`
	IDs            string        `yaml:"ids" default:"control_id" enum:"control_id,random" doc:"message IDs: control_id (from MSH-3, MSH-4 and MSH-10: a message sent again is answered from the store) or random"`
}

// SourceOption configures a Source beyond its Spec.
type SourceOption func(*Source)

// WithName names the source (default "mllp ADDRESS").
func WithName(name string) SourceOption { return func(s *Source) { s.name = name } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) SourceOption { return func(s *Source) { s.log = l } }

// Source is an MLLP listener: a [channel.Source] whose messages are HL7 v2
// messages, each answered with an ACK. Listen, Addr and Close are safe
// for concurrent use; Run runs once at a time.
type Source struct {
	spec Spec
	name string
	log  *slog.Logger

	mu sync.Mutex
	ln net.Listener
}

var _ channel.Source = (*Source)(nil)

// NewSource checks s and returns a source that listens on nothing until
// Listen or Run.
func NewSource(s Spec, opts ...SourceOption) (*Source, error) {
	if s.Address == "" {
		return nil, fieldErr("address", "expected host:port")
	}
	if _, _, err := net.SplitHostPort(s.Address); err != nil {
		return nil, fieldErr("address", "%q: %v", s.Address, err)
	}
	defaults := []struct {
		field string
		v     *time.Duration
		def   time.Duration
	}{{"read_timeout", &s.ReadTimeout, 5 * time.Minute}, {"message_timeout", &s.MessageTimeout, 30 * time.Second}, {"write_timeout", &s.WriteTimeout, 10 * time.Second}}
	for _, d := range defaults {
		if *d.v < 0 {
			return nil, fieldErr(d.field, "must be positive, got %s", *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if s.MaxSize < 0 {
		return nil, fieldErr("max_size", "must be positive, got %d", s.MaxSize)
	}
	if s.MaxSize == 0 {
		s.MaxSize = 1 << 20
	}
	if s.MaxConnections < 0 {
		return nil, fieldErr("max_connections", "must be positive, got %d", s.MaxConnections)
	}
	if s.MaxConnections == 0 {
		s.MaxConnections = 256
	}
	switch s.IDs {
	case "":
		s.IDs = IDsControlID
	case IDsControlID, IDsRandom:
	default:
		return nil, fieldErr("ids", "expected control_id or random, got %q", s.IDs)
	}
	src := &Source{spec: s}
	for _, o := range opts {
		o(src)
	}
	if src.name == "" {
		src.name = "mllp " + s.Address
	}
	if src.log == nil {
		src.log = slog.Default()
	}
	return src, nil
}

// Name implements channel.Source.
func (s *Source) Name() string { return s.name }

// Spec returns the spec with its defaults filled in.
func (s *Source) Spec() Spec { return s.spec }

// Listen binds the address, so Addr is known before Run (port 0 picks a
// free one). Run calls it when it was not called.
func (s *Source) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.spec.Address)
	if err != nil {
		return fmt.Errorf("mllp: listen %s: %w", s.spec.Address, err)
	}
	s.ln = ln
	return nil
}

// Addr returns the bound address, or "" when not listening.
func (s *Source) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops listening (Run does when it returns).
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	err := s.ln.Close()
	s.ln = nil
	return err
}

// Run implements channel.Source: it listens (see Listen) and serves each
// connection on a goroutine of its own, one message at a time in the
// order received, each answered with its ACK before the next is read.
// When ctx is canceled it stops listening and reading; the messages being
// handled finish and are answered; then the connections are closed and
// Run returns nil.
func (s *Source) Run(ctx context.Context, h channel.Handler) error {
	if h == nil {
		return fmt.Errorf("mllp: %s: nil handler", s.name)
	}
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if ln == nil {
		return fmt.Errorf("mllp: %s: closed", s.name)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	quit, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-quit:
		}
		_ = s.Close()
		mu.Lock()
		for c := range conns {
			_ = c.SetReadDeadline(time.Now()) // wake the readers; ACKs still go out
		}
		mu.Unlock()
	}()
	slots := make(chan struct{}, s.spec.MaxConnections)
	var err error
	for {
		conn, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() == nil && !errors.Is(aerr, net.ErrClosed) {
				err = fmt.Errorf("mllp: %s: accept: %w", s.name, aerr)
			}
			break
		}
		select {
		case slots <- struct{}{}:
		default:
			s.log.Warn("mllp: too many connections; closed", "source", s.name, "remote", conn.RemoteAddr().String(), "max_connections", s.spec.MaxConnections)
			_ = conn.Close()
			continue
		}
		mu.Lock()
		conns[conn] = true
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, conn)
				mu.Unlock()
				_ = conn.Close()
				<-slots
			}()
			s.serve(ctx, conn, h)
		})
	}
	close(quit)
	<-stopped
	wg.Wait()
	return err
}

// serve reads a connection's messages until it ends, fails or ctx ends.
func (s *Source) serve(ctx context.Context, conn net.Conn, h channel.Handler) {
	remote := conn.RemoteAddr().String()
	log := s.log.With("source", s.name, "remote", remote)
	hctx := context.WithoutCancel(ctx)
	fr := NewFrameReader(conn, s.spec.MaxSize)
	fr.Started = func() { _ = conn.SetReadDeadline(time.Now().Add(s.spec.MessageTimeout)) }
	for {
		_ = conn.SetReadDeadline(time.Now().Add(s.spec.ReadTimeout))
		if ctx.Err() != nil {
			return
		}
		content, err := fr.Next()
		if err != nil {
			switch {
			case errors.Is(err, ErrTooLarge) && content == nil:
				log.Warn("mllp: more than max_size bytes outside a frame; disconnected", "max_size", s.spec.MaxSize)
			case errors.Is(err, ErrTooLarge):
				log.Warn("mllp: message larger than max_size; answered AR and disconnected", "max_size", s.spec.MaxSize)
				hdr, _ := ParseHeader(content) // the MSH is at the start
				s.reply(conn, log, hdr, AR, fmt.Sprintf("message larger than %d bytes", s.spec.MaxSize))
			case ctx.Err() != nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			case errors.Is(err, os.ErrDeadlineExceeded):
				log.Info("mllp: connection timed out; closed", "err", err)
			default:
				log.Warn("mllp: connection failed", "err", err)
			}
			return
		}
		if ctx.Err() != nil {
			return // stopping: not handled, not answered; the sender sends it again
		}
		hdr, err := ParseHeader(content)
		if err != nil {
			log.Warn("mllp: not an HL7 message; answered AR", "err", err)
			s.reply(conn, log, Header{}, AR, err.Error())
			continue
		}
		res := h.Handle(hctx, s.message(hdr, content, remote))
		code, text := AckCode(res)
		if !s.reply(conn, log, hdr, code, text) {
			return
		}
	}
}

// reply writes an ACK; it reports whether it was written.
func (s *Source) reply(conn net.Conn, log *slog.Logger, hdr Header, code, text string) bool {
	_ = conn.SetWriteDeadline(time.Now().Add(s.spec.WriteTimeout))
	if _, err := conn.Write(Frame(Ack(hdr, code, text))); err != nil {
		log.Warn("mllp: writing the ACK failed", "control_id", hdr.ControlID, "code", code, "err", err)
		return false
	}
	return true
}

// AckCode is the ACK code and text answering a channel's result: AA for
// a message done (or parked waiting, durable channels), AR with the
// reason for a rejection (a Stop), AE for any other outcome (a failure,
// retries that ran out, a message left for later): the sender may send
// it again. The text of an AE names the error id, never the error.
func AckCode(res channel.Result) (code, text string) {
	switch {
	case res.Settle == channel.Ack && res.Outcome == flowerrors.KindStop:
		var stop *flowerrors.StopError
		if errors.As(res.Err, &stop) {
			return AR, stop.Reason
		}
		return AR, "rejected"
	case res.Settle == channel.Ack:
		return AA, ""
	case res.Settle == channel.Nack:
		return AE, "temporarily unavailable; send it again later"
	case res.Settle == channel.Leave:
		return AE, "not processed; send it again"
	}
	if res.ErrorID != "" {
		return AE, "processing failed (error id " + res.ErrorID + ")"
	}
	return AE, "processing failed"
}

var idSpace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/svcflow/svcflow/adapters/mllp"))

// MessageID is the message ID the source gives a message with header h
// under ids control_id: a UUID (version 5) of its sending application,
// sending facility and control ID, "" when the control ID is empty.
func MessageID(h Header) string {
	if h.ControlID == "" {
		return ""
	}
	return uuid.NewSHA1(idSpace, []byte(h.SendingApp+"\n"+h.SendingFacility+"\n"+h.ControlID)).String()
}

// message builds the channel message of an HL7 message.
func (s *Source) message(h Header, content []byte, remote string) *message.Message {
	meta := map[string]string{
		MetaType:              h.MessageType(),
		MetaMessageCode:       h.MessageCode(),
		MetaTriggerEvent:      h.TriggerEvent(),
		MetaControlID:         h.ControlID,
		MetaSendingApp:        h.SendingApp,
		MetaSendingFacility:   h.SendingFacility,
		MetaReceivingApp:      h.ReceivingApp,
		MetaReceivingFacility: h.ReceivingFacility,
		MetaVersion:           h.Version,
		MetaProcessingID:      h.ProcessingID,
		MetaFieldSeparator:    string(h.FieldSep),
		MetaEncoding:          h.Encoding,
		MetaRemote:            remote,
	}
	m := message.New(ContentType, content, meta)
	if id := MessageID(h); id != "" && s.spec.IDs == IDsControlID {
		m.ID = id
		sum := sha256.Sum256(content)
		m.Meta[message.MetaRequestHash] = hex.EncodeToString(sum[:])
	}
	return m
}

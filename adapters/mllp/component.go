package mllp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	fc "github.com/svcflow/svcflow/context"
	ferrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// SourceComponent is the mllp source component: an MLLP listener whose
// HL7 v2 messages are answered with ACKs (see [Spec]).
//
//	from: {mllp: {address: "0.0.0.0:2575", max_size: 1048576, read_timeout: 5m}}
//	from: {mllp: "127.0.0.1:2575"}
var SourceComponent = component.Source("mllp", "an MLLP listener: each HL7 v2 message is a message, answered with an ACK (AA done, AR rejected, AE failed)",
	func(env component.Env, s Spec) (channel.Source, error) {
		opts := []SourceOption{WithLogger(env.Log())}
		if env.Name != "" {
			opts = append(opts, WithName("mllp "+env.Name))
		}
		src, err := NewSource(s, opts...)
		if err != nil {
			return nil, err
		}
		// serve binds the listeners before the channels start: an address
		// in use stops it at once.
		srv, err := env.Server("mllp "+s.Address, func() (component.Server, error) { return &server{src: src}, nil })
		if err != nil {
			return nil, err
		}
		if sv, ok := srv.(*server); !ok || sv.src != src {
			return nil, component.FieldErrorf("address", "%s is already the address of another source", s.Address)
		}
		return src, nil
	})

// server is a source as a component.Server: Listen binds its address.
type server struct{ src *Source }

func (s *server) Listen() error                       { return s.src.Listen() }
func (s *server) Addr() string                        { return s.src.Addr() }
func (s *server) Serve(ctx context.Context) error     { <-ctx.Done(); return nil }
func (s *server) Ready() bool                         { return true }
func (s *server) WaitReady(ctx context.Context) error { return nil }

// StepSpec is the YAML form of an mllp step: it sends an HL7 v2 message
// of the context to an MLLP receiver and waits for its ACK.
//
//   - mllp: {address: "lab.example.com:2575", into: ack}
//   - mllp: {address: "10.0.0.7:2575", message: hl7_out, timeout: 5s}
type StepSpec struct {
	Address string          `yaml:"address" spec:"required,scalar" doc:"the receiver, host:port"`
	Message component.Key   `yaml:"message" default:"body" doc:"the key holding the HL7 text to send (an mllp source gives it as body)"`
	Into    component.Key   `yaml:"into" doc:"a key for the ACK: {code, control_id, text, raw}"`
	Timeout time.Duration   `yaml:"timeout" default:"30s" doc:"bound on each attempt: connect, send, read the ACK"`
	Retry   *ferrors.Policy `yaml:"retry" doc:"the retry policy (the keys of a flow's retry:); a connection failure or an AE is a Retry error"`
}

// StepName is "mllp(ADDRESS)".
func (s StepSpec) StepName() string { return "mllp(" + s.Address + ")" }

// Step is the mllp step component: an MLLP endpoint. A connection failure
// and an AE answer are Retry errors (sent again under the step's retry
// policy); an AR answer ends the run with a Stop whose reason names the
// receiver and holds the ACK's text; an ACK for another control ID is a
// failure.
var Step = component.Step("mllp", "send the context's HL7 v2 message to an MLLP receiver and wait for its ACK; AE retried, AR a Stop",
	func(env component.Env, s StepSpec) (flow.Service, error) {
		if s.Address == "" {
			return nil, component.FieldErrorf("address", "expected host:port")
		}
		st := &sender{name: env.Name, addr: s.Address, key: string(s.Message), into: string(s.Into)}
		if st.key == "" {
			st.key = "body"
		}
		st.contract.Needs = []fc.KeyInfo{fc.Any(st.key)}
		if st.into != "" {
			st.contract.Provides = []fc.KeyInfo{fc.Any(st.into)}
		}
		return st, nil
	})

func init() { component.Register(SourceComponent, Step) }

// sender is the mllp step's service.
type sender struct {
	name, addr, key, into string
	contract              flow.Contract
}

func (s *sender) Name() string            { return s.name }
func (s *sender) Contract() flow.Contract { return s.contract }

// Call sends the message on a connection of its own and reads the ACK.
func (s *sender) Call(ctx context.Context, c *fc.Context) error {
	v, _ := c.Get(s.key)
	text, ok := v.(string)
	if !ok {
		return ferrors.Stopf("mllp %s: key %q: expected HL7 text (a string), got %T", s.addr, s.key, v)
	}
	if _, err := ParseHeader([]byte(text)); err != nil {
		return ferrors.Stopf("mllp %s: key %q: %v", s.addr, s.key, err)
	}
	ack, err := Send(ctx, s.addr, []byte(text))
	if ack != nil && s.into != "" {
		c.Set(s.into, map[string]any{"code": ack.Code, "control_id": ack.ControlID, "text": ack.Text, "raw": string(ack.Raw)})
	}
	var ae *AckError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae) && errors.Is(err, ErrRejected):
		return &ferrors.StopError{Reason: fmt.Sprintf("mllp %s: %s", s.addr, ae.Error()), Cause: err}
	case errors.As(err, &ae):
		return ferrors.Retry(err)
	case ack != nil:
		return err // an ACK for another message
	}
	return ferrors.Retry(err)
}

package bus

import (
	"cmp"
	"context"
	"fmt"
	"maps"

	"github.com/svcflow/svcflow/adapters/component"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// SubmitSpec is the spec of the submit step of YAML flows run by a bus
// service: Self.Submit of microservicebus's SubmitAction.
//
//   - submit: com                                   # the whole context but meta, to com's Process
//   - submit: {to: emailhandler, action: SendEmail, body: email}
//   - submit: {to: "*", action: Ping}               # broadcast
type SubmitSpec struct {
	To     string        `yaml:"to" spec:"required,scalar" doc:"the destination service, or * for every running service that has the action"`
	Action string        `yaml:"action" default:"Process" doc:"the action to run"`
	Body   component.Key `yaml:"body" doc:"a key holding the message (an object); default: the whole context but meta"`
}

// StepName is "submit(TO.ACTION)".
func (s SubmitSpec) StepName() string {
	return "submit(" + s.To + "." + cmp.Or(s.Action, Process) + ")"
}

// RequestSpec is the spec of the request step: Self.Request, the reply
// (the output context of the action, without meta) under into.
//
//   - request: {to: calc, action: Double, body: numbers, into: result}
type RequestSpec struct {
	To     string        `yaml:"to" spec:"required" doc:"the destination service"`
	Action string        `yaml:"action" default:"Process" doc:"the action to run"`
	Body   component.Key `yaml:"body" doc:"a key holding the message (an object); default: the whole context but meta"`
	Into   component.Key `yaml:"into" default:"reply" doc:"the key the reply goes into"`
}

// StepName is "request(TO.ACTION)".
func (s RequestSpec) StepName() string {
	return "request(" + s.To + "." + cmp.Or(s.Action, Process) + ")"
}

func init() {
	component.Register(
		component.Step("submit", "submit a message to a bus service's action (fire and forget); runs in bus services",
			func(env component.Env, s SubmitSpec) (flow.Service, error) {
				return newSendStep(env.Name, s.To, s.Action, string(s.Body), "")
			}),
		component.Step("request", "send a request to a bus service's action and put its reply under into; runs in bus services",
			func(env component.Env, s RequestSpec) (flow.Service, error) {
				if s.To == Broadcast {
					return nil, component.FieldErrorf("to", "a request has one destination; submit to %q", Broadcast)
				}
				return newSendStep(env.Name, s.To, s.Action, string(s.Body), cmp.Or(string(s.Into), "reply"))
			}),
	)
}

// ErrNotInBus is wrapped by the error of a submit or request step run
// outside a bus service (flowrun run, a channel).
var ErrNotInBus = errors.New("not running in a bus service")

func newSendStep(name, to, action, body, into string) (flow.Service, error) {
	if to == "" {
		return nil, component.FieldErrorf("to", "expected a service name")
	}
	s := &sendStep{name: name, to: to, action: cmp.Or(action, Process), body: body, into: into}
	if body != "" {
		s.contract.Needs = []fc.KeyInfo{fc.Any(body)}
	}
	if into != "" {
		s.contract.Provides = []fc.KeyInfo{fc.Key[map[string]any](into).Info()}
	}
	return s, nil
}

// sendStep is the service of the submit and request steps.
type sendStep struct {
	name, to, action, body, into string
	contract                     flow.Contract
}

func (s *sendStep) Name() string { return s.name }

func (s *sendStep) Contract() flow.Contract { return s.contract }

func (s *sendStep) Call(ctx context.Context, c *fc.Context) error {
	self := From(ctx)
	if self == nil {
		return fmt.Errorf("%s: %w", s.name, ErrNotInBus)
	}
	var msg map[string]any
	if s.body != "" {
		v, _ := c.Get(s.body)
		m, ok := v.(map[string]any)
		if !ok {
			return errors.Stopf("%s: body %q: expected an object, got %T", s.name, s.body, v)
		}
		msg = maps.Clone(m)
	} else {
		msg = c.Map()
		delete(msg, "meta")
	}
	if s.into == "" {
		return self.Submit(ctx, s.to, s.action, msg)
	}
	out, err := self.Request(ctx, s.to, s.action, msg)
	if err != nil {
		return err
	}
	c.Set(s.into, out)
	return nil
}

// StateSpec is the spec of the state step: it sets the bus's desired
// state from the run's context, as microservicebus's com service does
// with the msb-state of its desired state. The change is made after the
// step returns (the service running it may be one the change stops or
// updates); see Bus.SetState.
//
//   - state: {}                                   # from the keys enabled and debug
//   - state: {enabled: desired.enabled, debug: desired.debug}
type StateSpec struct {
	Enabled component.Expr `yaml:"enabled" default:"enabled" doc:"an expression giving the desired enabled (a boolean)"`
	Debug   component.Expr `yaml:"debug" default:"debug" doc:"an expression giving the desired debug (a boolean); nil or absent: unchanged"`
}

func init() {
	component.Register(component.Step("state", "set the bus's desired state (enabled, debug) from the context: disabling stops the custom services, every service gets a StateUpdate; runs in bus services",
		func(env component.Env, s StateSpec) (flow.Service, error) {
			st := &stateStep{name: env.Name, enabled: s.Enabled, debug: s.Debug}
			for _, k := range s.Enabled.Keys() {
				st.contract.Needs = append(st.contract.Needs, fc.Any(k))
			}
			for _, k := range s.Debug.Keys() {
				st.contract.Needs = append(st.contract.Needs, fc.KeyInfo{Name: k, Optional: true})
			}
			return st, nil
		}))
}

// stateStep is the service of the state step.
type stateStep struct {
	name           string
	enabled, debug component.Expr
	contract       flow.Contract
}

func (s *stateStep) Name() string { return s.name }

func (s *stateStep) Contract() flow.Contract { return s.contract }

func (s *stateStep) Call(ctx context.Context, c *fc.Context) error {
	self := From(ctx)
	if self == nil {
		return fmt.Errorf("%s: %w", s.name, ErrNotInBus)
	}
	env := c.View()
	st := self.State()
	v, err := s.enabled.Parsed().Eval(env)
	if err != nil {
		return errors.Stopf("%s: enabled: %v", s.name, err)
	}
	enabled, ok := v.(bool)
	if !ok {
		return errors.Stopf("%s: enabled: expected a boolean, got %T", s.name, v)
	}
	st.Enabled = enabled
	if v, err := s.debug.Parsed().Eval(env); err == nil && v != nil {
		debug, ok := v.(bool)
		if !ok {
			return errors.Stopf("%s: debug: expected a boolean, got %T", s.name, v)
		}
		st.Debug = debug
	}
	self.s.b.setStateLater(st)
	return nil
}

package flow

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	fc "github.com/svcflow/svcflow/context"
)

// Service is the unit of work of a flow: a named function over the run's
// shared context. Implementations must be safe for concurrent use: one
// built flow runs many times at once, each run with its own context.
//
// A Service may also implement [Initializer], [Closer], [Compensator] and
// [Contractor].
type Service interface {
	// Name identifies the service in errors, traces and graphs. Names are
	// unique within a flow.
	Name() string
	// Call does the work, reading and writing c. It returns nil, a control
	// error from package errors (Stop, Retry, Fatal), or any other error.
	Call(ctx context.Context, c *fc.Context) error
}

// Initializer is implemented by services that acquire resources before the
// first call (a connection, a client). Whoever starts the flow calls Init:
// a channel, flowrun, or the user via [Flow.Init].
type Initializer interface {
	Init(ctx context.Context) error
}

// Closer is implemented by services that release resources; the owner of
// the flow calls Close on shutdown and before a restart after Fatal.
type Closer interface {
	Close(ctx context.Context) error
}

// Compensator is implemented by services that can undo their effect when a
// saga they belong to does not complete. cause is why the saga ended.
type Compensator interface {
	Compensate(ctx context.Context, c *fc.Context, cause error) error
}

// Contract lists the context keys a service reads and writes. [Flow]
// building uses it to prove, before any run, that every key a step needs is
// provided by the flow's input or by an earlier step on every path, with an
// agreeing Go type.
type Contract struct {
	Needs    []fc.KeyInfo // keys read; Optional ones may be absent
	Provides []fc.KeyInfo // keys written on success
	// Removes lists keys deleted on success: later steps cannot need
	// them (a step that both removes and provides a key provides it).
	Removes []string
}

// Contractor is implemented by services that declare a [Contract]. A
// service without one is opaque: it needs nothing and provides nothing as
// far as the build checks know.
type Contractor interface {
	Contract() Contract
}

// Preparer is implemented by services that finish their construction when
// the flow is built, knowing the keys available where they sit and the Go
// type of each (nil: any): a service that compiles expressions against
// those types, or whose outputs' types follow from its inputs'. Build calls
// Prepare once for each place the service appears and runs the service it
// returns there, checking that one's [Contract]. An error is a build error
// of the step. Prepare is not called for a combinator run outside a flow.
type Preparer interface {
	Prepare(known map[string]reflect.Type) (Service, error)
}

// Pure is implemented by a service whose only effect is on the run's
// context (set, stop, template, log): no call, write or charge outside
// it, so running it again after a crash does no harm. A durable channel
// that journals by effects (channel.Config.JournalEffects, `durable:
// effects`) writes such a step's unit with the next write instead of
// before the next step starts. A service that does not implement Pure,
// or returns false, has effects.
type Pure interface {
	Pure() bool
}

// NoEffects marks a [Step] or a [Func] as [Pure]: its only effect is on
// the run's context.
func NoEffects() StepOption { return func(s *step) { s.pure = true } }

// StepFunc is the function of a [Step]: it gets the whole context.
type StepFunc func(ctx context.Context, c *fc.Context) error

// StepOption configures a [Step].
type StepOption func(*step)

// Needs declares keys a [Step] reads (its contract's inputs).
func Needs(keys ...fc.Info) StepOption {
	return func(s *step) {
		for _, k := range keys {
			s.contract.Needs = append(s.contract.Needs, k.Info())
		}
	}
}

// Provides declares keys a [Step] writes on success (its contract's outputs).
func Provides(keys ...fc.Info) StepOption {
	return func(s *step) {
		for _, k := range keys {
			s.contract.Provides = append(s.contract.Provides, k.Info())
		}
	}
}

// Step returns a service that calls fn with the whole context. Declare what
// it reads and writes with [Needs] and [Provides] so build checks can see
// through it:
//
//	flow.Step("price", price, flow.Needs(Items), flow.Provides(Total))
//
// A nil fn or an empty name is reported when the flow is built.
func Step(name string, fn StepFunc, opts ...StepOption) Service {
	s := &step{name: name, fn: fn}
	for _, o := range opts {
		o(s)
	}
	return s
}

type step struct {
	name     string
	fn       StepFunc
	contract Contract
	pure     bool
}

func (s *step) Name() string { return s.name }

// Pure implements [Pure]: true with [NoEffects].
func (s *step) Pure() bool { return s.pure }

func (s *step) Call(ctx context.Context, c *fc.Context) error {
	if s.fn == nil {
		return fmt.Errorf("step %q has no function", s.name)
	}
	return s.fn(ctx, c)
}

func (s *step) Contract() Contract { return s.contract }

func (s *step) buildErr() error {
	if s.fn == nil {
		return errors.New("nil function")
	}
	return nil
}

// Named returns svc under another name, so one service can appear twice in a
// flow (names are unique within a flow). Optional interfaces of svc
// (contract, lifecycle, compensation, preparation) are kept.
func Named(name string, svc Service) Service {
	return &named{name: name, Service: svc}
}

type named struct {
	name string
	Service
}

func (n *named) Name() string { return n.name }

func (n *named) Contract() Contract { return contractOf(n.Service) }

func (n *named) Init(ctx context.Context) error {
	if i, ok := n.Service.(Initializer); ok {
		return i.Init(ctx)
	}
	return nil
}

func (n *named) Close(ctx context.Context) error {
	if i, ok := n.Service.(Closer); ok {
		return i.Close(ctx)
	}
	return nil
}

// buildErr forwards the renamed service's construction error, so it is
// reported when the flow is built.
func (n *named) buildErr() error {
	if be, ok := n.Service.(buildErrer); ok {
		return be.buildErr()
	}
	return nil
}

// Wait forwards to a renamed flow, so [Flow.Wait] waits for its taps.
func (n *named) Wait(ctx context.Context) error {
	if w, ok := n.Service.(interface{ Wait(context.Context) error }); ok {
		return w.Wait(ctx)
	}
	return nil
}

// contractOf returns svc's contract, or an empty one when it declares none.
func contractOf(svc Service) Contract {
	if c, ok := svc.(Contractor); ok {
		return c.Contract()
	}
	return Contract{}
}

// buildErrer is implemented by services whose construction found an error
// that is reported when the flow is built (constructors never panic).
type buildErrer interface{ buildErr() error }

package steps

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/svcflow/svcflow/adapters/component"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// ParkAfter is the threshold over which a sleep step of a durable channel
// (`durable: steps`) parks its message instead of sleeping: the message
// waits in state waiting, with no goroutine held, and a timer wakes it,
// also after restarts. Shorter sleeps, and every sleep of a channel that
// is not durable, sleep in the run.
const ParkAfter = time.Second

// parkingSleep is a sleep longer than ParkAfter: in a durable run it
// parks instead of sleeping. Shorter sleeps are no flow.Parker, so an
// Each, All or Until holding one stays a unit of its own.
type parkingSleep struct{ *sleepService }

// Park implements flow.Parker: the sleep parks a durable run for its
// duration.
func (s parkingSleep) Park(*fc.Context) (flow.Wait, bool) { return flow.Wait{For: s.d}, true }

// WaitSpec is the spec of a wait step: the run waits for a named signal,
// sent to the message by Channel.Signal, the admin API of flowrun serve
// or `flowrun messages ... signal ID NAME`.
//
//	wait: {signal: approved, timeout: 48h, into: approval, on_timeout: stop}
//	wait: approved                 # no timeout; the values become keys
//
// The step needs a durable channel (`durable: steps`): the message waits
// in state waiting, with no goroutine held, and a restart loses nothing.
// The signal's values are written under into (a map), or as keys of
// their own without it. When timeout passes first the run ends with a
// Stop (on_timeout: stop, the default: the message is rejected) or an
// error (on_timeout: error: the message fails, and may be replayed).
// Outside a durable channel (flowrun run, a test) the step fails.
type WaitSpec struct {
	Signal    string        `yaml:"signal" spec:"required,scalar" doc:"the name of the signal to wait for"`
	Timeout   time.Duration `yaml:"timeout" doc:"how long to wait at most (default: no limit)"`
	Into      string        `yaml:"into" doc:"the key that receives the signal's values (a map); without it each value is a key"`
	OnTimeout string        `yaml:"on_timeout" default:"stop" enum:"stop,error" doc:"what a timeout is: stop (a Stop: the message is rejected) or error (a failure: it may be replayed)"`
}

// StepName is "wait(SIGNAL)".
func (s WaitSpec) StepName() string { return "wait(" + s.Signal + ")" }

func newWait(env component.Env, s WaitSpec) (flow.Service, error) {
	if s.Signal == "" {
		return nil, component.FieldErrorf("signal", "expected a signal name")
	}
	if s.Timeout < 0 {
		return nil, component.FieldErrorf("timeout", "expected a positive duration, got %s", s.Timeout)
	}
	w := &waitService{name: env.Name, wait: flow.Wait{Signal: s.Signal, For: s.Timeout, Into: s.Into, Timeout: errors.KindStop}}
	switch s.OnTimeout {
	case "", "stop":
	case "error":
		w.wait.Timeout = errors.KindFailed
	default:
		return nil, component.FieldErrorf("on_timeout", "expected stop or error, got %q", s.OnTimeout)
	}
	if s.Timeout > 0 {
		w.wait.Reason = fmt.Sprintf("wait for signal %q: timed out after %s", s.Signal, s.Timeout)
	}
	if s.Into != "" {
		w.contract.Provides = []fc.KeyInfo{{Name: s.Into, Type: reflect.TypeFor[map[string]any]()}}
	}
	return w, nil
}

// waitService parks a durable run until its signal (see WaitSpec).
type waitService struct {
	name     string
	wait     flow.Wait
	contract flow.Contract
}

func (w *waitService) Name() string            { return w.name }
func (w *waitService) Contract() flow.Contract { return w.contract }

// Park implements flow.Parker.
func (w *waitService) Park(*fc.Context) (flow.Wait, bool) { return w.wait, true }

// Call runs when the run is not durable: there is nobody to wait for.
func (w *waitService) Call(context.Context, *fc.Context) error {
	return fmt.Errorf("wait for signal %q: %w", w.wait.Signal, ErrNotDurable)
}

// ErrNotDurable is wrapped by the error of a wait step run outside a
// durable channel (`durable: steps`).
var ErrNotDurable = errors.New("a wait step needs a channel with durable: steps")

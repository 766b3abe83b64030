package production

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/svcflow/svcflow/adapters/component"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// AsyncKey is the context key under which a send step with async records
// the calls of a run not yet collected (completion key -> target and
// request), so that a complete step resumed after a restart sends the
// calls whose results were lost again. The complete step deletes it.
const AsyncKey = "_async"

// SendSpec is the spec of the send step of YAML flows run by a
// production component: a sync send whose response goes under into, or,
// with async, an async send with that completion key, collected by a
// later complete step. Its target is checked when the component starts
// (the step's Init): a target the production does not have, or a
// business service, keeps the production from starting; send_multi's
// targets likewise.
//
//   - send: Python.MyBusinessOperation                  # the whole context, the response under reply
//   - send: {target: Operation, body: request, into: answer}  # a role of the component's targets
//   - send: {target: Python.MyBO, body: msg_one, async: "1"}
type SendSpec struct {
	Target string        `yaml:"target" spec:"required,scalar" doc:"the target: a component name, or a role of the sending component's targets"`
	Body   component.Key `yaml:"body" doc:"a key holding the request (an object); default: the whole context but meta, settings and _async"`
	Into   component.Key `yaml:"into" doc:"the key the response goes under (default reply); not with async"`
	Async  string        `yaml:"async" doc:"a completion key: send asynchronously; a complete step collects the result"`
}

// StepName is "send(TARGET)", or "send(TARGET, KEY)" for an async send.
func (s SendSpec) StepName() string {
	if s.Async != "" {
		return "send(" + s.Target + ", " + s.Async + ")"
	}
	return "send(" + s.Target + ")"
}

// SendMultiSpec is the spec of the send_multi step: the calls run
// concurrently (Self.SendMulti) and their results, in the order written,
// go under into as a list of result objects (target, component,
// status, response, error, reason). A failed call fails neither the others nor the step.
//
//   - send_multi: [{target: Python.MyMultiBO, body: msg_one}, {target: Python.MyMultiBO, body: msg_two}]
//   - send_multi: {calls: [Python.A, Python.B], into: answers}
type SendMultiSpec struct {
	Calls []MultiCallSpec `yaml:"calls" spec:"required,list" doc:"the calls: {target, body} or a target name"`
	Into  component.Key   `yaml:"into" default:"results" doc:"the key the list of results goes under"`
}

// MultiCallSpec is one call of a send_multi step.
type MultiCallSpec struct {
	Target string        `yaml:"target" spec:"required,scalar" doc:"the target: a component name or a role"`
	Body   component.Key `yaml:"body" doc:"a key holding the request (an object); default: the whole context but meta, settings and _async"`
}

// StepName is "send_multi(N calls)".
func (s SendMultiSpec) StepName() string { return fmt.Sprintf("send_multi(%d calls)", len(s.Calls)) }

// CompleteSpec is the spec of the complete step: it waits for every async
// call of the run and puts their results under into, a map from
// completion key to a result object (target, component, key, status,
// response, error, reason): IoP's on_response for each, then on_complete with the steps
// that follow. A failed call fails neither the others nor the step: test
// its status.
//
//   - complete: responses
//   - complete: {}                  # under responses
type CompleteSpec struct {
	Into component.Key `yaml:"into" default:"responses" spec:"scalar" doc:"the key the results go under, by completion key"`
}

// ErrNotInProduction is wrapped by the error of a send, send_multi or
// complete step run outside a production component (flowrun run, a
// channel).
var ErrNotInProduction = errors.New("not running in a production component")

func init() {
	component.Register(
		component.Step("send", "send a request to a production component by name (sync: the response under into; async: a completion key, collected by complete); runs in production components",
			func(env component.Env, s SendSpec) (flow.Service, error) {
				if s.Target == "" {
					return nil, component.FieldErrorf("target", "expected a component name or role")
				}
				if s.Async != "" && s.Into != "" {
					return nil, component.FieldErrorf("into", "an async send has no response here: collect it with a complete step")
				}
				st := &sendStep{name: env.Name, target: s.Target, body: string(s.Body), async: s.Async, into: string(s.Into)}
				if st.async == "" && st.into == "" {
					st.into = "reply"
				}
				if st.body != "" {
					st.contract.Needs = []fc.KeyInfo{fc.Any(st.body)}
				}
				if st.async != "" {
					st.contract.Needs = append(st.contract.Needs, fc.KeyInfo{Name: AsyncKey, Optional: true})
					st.contract.Provides = []fc.KeyInfo{fc.Key[map[string]any](AsyncKey).Info()}
				} else {
					st.contract.Provides = []fc.KeyInfo{fc.Key[map[string]any](st.into).Info()}
				}
				return st, nil
			}),
		component.Step("send_multi", "send requests to production components concurrently; the results, in order, under into (each with its status); runs in production components",
			func(env component.Env, s SendMultiSpec) (flow.Service, error) {
				if len(s.Calls) == 0 {
					return nil, component.FieldErrorf("calls", "expected at least one call")
				}
				st := &multiStep{name: env.Name, calls: s.Calls, into: string(s.Into)}
				if st.into == "" {
					st.into = "results"
				}
				for i, c := range s.Calls {
					if c.Target == "" {
						return nil, component.FieldErrorf(fmt.Sprintf("calls.%d.target", i), "expected a component name or role")
					}
					if c.Body != "" {
						st.contract.Needs = append(st.contract.Needs, fc.Any(string(c.Body)))
					}
				}
				st.contract.Provides = []fc.KeyInfo{fc.Key[[]any](st.into).Info()}
				return st, nil
			}),
		component.Step("complete", "wait for the async sends of the run and put their results under into, by completion key; runs in production components",
			func(env component.Env, s CompleteSpec) (flow.Service, error) {
				st := &completeStep{name: env.Name, into: string(s.Into)}
				if st.into == "" {
					st.into = "responses"
				}
				st.contract.Needs = []fc.KeyInfo{{Name: AsyncKey, Optional: true}}
				st.contract.Provides = []fc.KeyInfo{fc.Key[map[string]any](st.into).Info()}
				return st, nil
			}),
	)
}

// request returns the request of a send: the object under body, or the
// whole context but meta, settings and the async record.
func request(name string, c *fc.Context, body string) (map[string]any, error) {
	if body != "" {
		v, _ := c.Get(body)
		m, ok := v.(map[string]any)
		if !ok {
			return nil, errors.Stopf("%s: body %q: expected an object, got %T", name, body, v)
		}
		return maps.Clone(m), nil
	}
	m := c.Map()
	delete(m, "meta")
	delete(m, "settings")
	delete(m, AsyncKey)
	return m, nil
}

// resultMap is a Result as the context holds it.
func resultMap(r Result) map[string]any {
	m := map[string]any{"target": r.Target, "component": r.Component, "status": r.Status.String(), "response": r.Response}
	if r.Response == nil {
		m["response"] = map[string]any{}
	}
	if r.Key != "" {
		m["key"] = r.Key
	}
	if r.Err != nil {
		m["error"] = r.Err.Error()
		if se, ok := errors.AsType[*errors.StopError](r.Err); ok {
			m["reason"] = se.Reason
		}
	}
	return m
}

// sendStep is the service of the send step.
type sendStep struct {
	name, target, body, async, into string
	contract                        flow.Contract
}

func (s *sendStep) Name() string            { return s.name }
func (s *sendStep) Contract() flow.Contract { return s.contract }

// Init checks the target when the component starts: a production does
// not start with a send to a component it does not have.
func (s *sendStep) Init(ctx context.Context) error { return checkTarget(ctx, s.name, s.target) }

// checkTarget reports a target the starting component cannot reach;
// outside a production there is nothing to check.
func checkTarget(ctx context.Context, step, target string) error {
	self := From(ctx)
	if self == nil {
		return nil
	}
	p := self.x.p
	name := self.Target(target)
	x := p.lookup(name)
	switch {
	case x == nil:
		return fmt.Errorf("step %s: %q: %w%s", step, target, ErrUnknownTarget, p.known())
	case x.def.Kind == Service:
		return fmt.Errorf("step %s: %q: %w", step, target, ErrNotTarget)
	}
	return nil
}

func (s *sendStep) Call(ctx context.Context, c *fc.Context) error {
	self := From(ctx)
	if self == nil {
		return fmt.Errorf("%s: %w", s.name, ErrNotInProduction)
	}
	req, err := request(s.name, c, s.body)
	if err != nil {
		return err
	}
	if s.async == "" {
		out, err := self.SendSync(ctx, s.target, req)
		if err != nil {
			return err
		}
		c.Set(s.into, out)
		return nil
	}
	rec := map[string]any{}
	if v, ok := c.Get(AsyncKey); ok {
		if m, ok := v.(map[string]any); ok {
			rec = maps.Clone(m)
		}
	}
	if _, dup := rec[s.async]; dup {
		return errors.Stopf("%s: completion key %q is already pending in this run", s.name, s.async)
	}
	if err := self.SendAsync(ctx, s.target, req, s.async); err != nil {
		return err
	}
	rec[s.async] = map[string]any{"target": s.target, "request": req}
	c.Set(AsyncKey, rec)
	return nil
}

// multiStep is the service of the send_multi step.
type multiStep struct {
	name     string
	calls    []MultiCallSpec
	into     string
	contract flow.Contract
}

func (s *multiStep) Name() string            { return s.name }
func (s *multiStep) Contract() flow.Contract { return s.contract }

// Init checks the targets when the component starts. A call to a target
// the production does not have would only fail its own result: a
// send_multi is refused at start all the same, as a typo.
func (s *multiStep) Init(ctx context.Context) error {
	var errs []error
	for _, c := range s.calls {
		errs = append(errs, checkTarget(ctx, s.name, c.Target))
	}
	return errors.Join(errs...)
}

func (s *multiStep) Call(ctx context.Context, c *fc.Context) error {
	self := From(ctx)
	if self == nil {
		return fmt.Errorf("%s: %w", s.name, ErrNotInProduction)
	}
	calls := make([]Call, len(s.calls))
	for i, cs := range s.calls {
		req, err := request(s.name, c, string(cs.Body))
		if err != nil {
			return err
		}
		calls[i] = Call{Target: cs.Target, Request: req}
	}
	res := self.SendMulti(ctx, calls...)
	out := make([]any, len(res))
	for i, r := range res {
		out[i] = resultMap(r)
	}
	c.Set(s.into, out)
	return nil
}

// completeStep is the service of the complete step.
type completeStep struct {
	name, into string
	contract   flow.Contract
}

func (s *completeStep) Name() string            { return s.name }
func (s *completeStep) Contract() flow.Contract { return s.contract }

func (s *completeStep) Call(ctx context.Context, c *fc.Context) error {
	self := From(ctx)
	if self == nil {
		return fmt.Errorf("%s: %w", s.name, ErrNotInProduction)
	}
	got := map[string]any{}
	collect := func() error {
		for {
			r, ok := self.Next(ctx)
			if !ok {
				return nil
			}
			if r.Key == "" && r.Target == "" && r.Err != nil {
				return r.Err // ctx ended
			}
			got[r.Key] = resultMap(r)
		}
	}
	if err := collect(); err != nil {
		return err
	}
	// Calls recorded by the run whose results this process never saw: a
	// restart came between the send and here. Send them again.
	var rec map[string]any
	if v, ok := c.Get(AsyncKey); ok {
		rec, _ = v.(map[string]any)
	}
	resent := 0
	for _, key := range slices.Sorted(maps.Keys(rec)) {
		if _, ok := got[key]; ok {
			continue
		}
		call, _ := rec[key].(map[string]any)
		target, _ := call["target"].(string)
		req, _ := call["request"].(map[string]any)
		if err := self.SendAsync(ctx, target, req, key); err != nil {
			return err
		}
		resent++
	}
	if resent > 0 {
		self.Logger().Info("async calls sent again after a restart", "step", s.name, "calls", resent)
		if err := collect(); err != nil {
			return err
		}
	}
	c.Delete(AsyncKey)
	c.Set(s.into, got)
	return nil
}

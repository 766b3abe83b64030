// Package production runs business services, business processes and
// business operations wired by name: the production of the
// interoperability (IoP / IRIS) model.
//
// A [Production] holds [Component]s. Each has a name, a [Kind] (Service,
// Process or Operation), an implementation (any flow.Service: a
// *flow.Flow, a flow.Func, a [ProcessOf] with typed state), settings and
// targets (roles mapped to component names):
//
//	p := production.New("Demo.Production", production.Options{})
//	p.Add(production.Component{Name: "Python.MyBusinessOperation", Kind: production.Operation, Service: op})
//	p.Add(production.Component{Name: "Python.MyBusinessProcess", Kind: production.Process, Service: bp,
//		Targets: map[string]string{"Operation": "Python.MyBusinessOperation"}})
//	p.Add(production.Component{Name: "Python.MyBusinessService", Kind: production.Service, Service: bs,
//		Sources: []channel.Source{route}})
//	p.Start(ctx)
//	defer p.Stop(ctx)
//
// # One instance per component
//
// A component is one instance, whatever number of flows send to it: its
// implementation's Init (flow.Initializer, IoP's on_init) runs once when
// the production starts it and its Close (on_tear_down) once when it
// stops. Start starts the operations, then the processes, then the
// business services, each kind in declaration order; Stop stops them in
// the reverse order, each after the requests it runs ended.
//
// # Calls
//
// Targets are addressed by name, or by a role of the sender's Targets.
// A request is a map (the target's input context); the response is the
// target's output context. From a component's run, [From] returns its
// [Self]:
//
//   - Self.SendSync (and Production.SendSync from outside) waits for the
//     response; the target's error comes back wrapped (a Stop keeps its
//     reason: errors.As finds the *errors.StopError).
//   - Self.SendAsync sends with a completion key and returns at once; the
//     call's [Result] goes to the run that sent it: [ProcessOf] calls
//     OnResponse with each as it ends, then OnComplete; a YAML flow
//     collects them with the complete step. A run's async calls never
//     outlive it.
//   - Self.SendMulti (and Production.SendMulti) runs calls concurrently and
//     returns one [Result] per call, in input order, each with its status
//     (errors.Kind) and error; a failed call cancels none of the others.
//
// [Production.Observe] sees every send (from, target, mode, completion
// key, request, response, status); package productiontest captures them
// for tests and substitutes components.
//
// # Business services and the Director
//
// A business service runs as a channel of its own (package channel): its
// sources (any source component: an HTTP route, a cron schedule, a poll;
// or [Poll], whose OnPoll is called on an interval through package poll)
// feed its implementation, its messages are recorded in its store, and
// with Durable its runs are durable (channel durable runs). The
// [Director] reaches a business service by name from other code and runs
// a message through it (BusinessService.ProcessInput), as IoP's Director
// does for a Flask handler.
//
// # Logs and settings
//
// Each component logs through its own logger (Self.Logger): records carry
// production=NAME, component=NAME and kind=KIND. A component run's
// context carries component and kind for logging.Handler, so records
// logged with it (YAML log steps under flowrun) are tagged too. Settings are any Go
// value, read with [SettingsOf]; a flow component's runs find them under
// the "settings" key.
//
// # YAML
//
// [FromConfig] builds a production from the production: section of
// flowrun files ([Spec]); `flowrun serve` runs it before the channels and
// stops it after them. YAML flows send with the send, send_multi and
// complete steps this package registers ([SendSpec], [SendMultiSpec],
// [CompleteSpec]).
//
// # What survives a restart
//
// Sends are in memory: a request running in a process or an operation
// when the process (the OS process) ends is lost with it, and so is a
// [ProcessOf] instance's state. What is durable is the business service's
// message: it is recorded in the service's store before it runs, and
// runs again after a restart. With Durable (durable: steps) the
// service's flow resumes after its last completed step: a send step that
// completed (its reply journaled) is not sent again. An async call is
// recorded in the run's context by its send step (under "_async"); a
// complete step that resumes after a restart sends again, once, each
// recorded call whose result the crash lost, then collects them all: so
// completions arrive after a restart, and a call interrupted by the crash
// runs at least once more.
package production

// Package bus runs services addressed by destination and action, the model
// of microservicebus-py: a [Bus] holds named services, each with its own
// ordered, bounded mailbox and one goroutine that runs its messages one at
// a time.
//
// A [Service] has actions: "Process" by convention, and any named ones
// ("SendEmail", "StateUpdate"). An action is a flow.Service, so a whole
// *flow.Flow is one: everything a flow does (Fork, Retry, Saga, traces)
// works inside a bus service. A message is a map (the run's context); the
// run also finds under "meta" the message's id, its destination, its
// action and the service it came from ("from", empty from outside).
//
//	b := bus.New(bus.Options{})
//	b.Add(bus.Service{Name: "com", Internal: true, Actions: bus.Actions{"Process": toHub}})
//	b.Add(bus.Service{Name: "emailhandler", Actions: bus.Actions{"SendEmail": send}})
//	b.Start(ctx)
//	defer b.Stop(ctx)
//	b.Submit(ctx, "emailhandler", "SendEmail", map[string]any{"to": "foo@bar.com"})  // fire and forget
//	out, err := b.Request(ctx, "emailhandler", "SendEmail", msg)                    // wait for the reply
//
// Addressing: [Bus.Submit] queues a message and returns; [Bus.Request]
// queues one and waits for the action's output context (or its error,
// which errors.As and errors.KindOf classify: a Stop carries its reason)
// until ctx ends (Options.RequestTimeout when ctx has no deadline). The
// destination [Broadcast] ("*") submits to every running service that has
// the action, exactly once each. An unknown destination or action is an
// error ([ErrUnknownDestination], [ErrUnknownAction]); a message to a
// stopped service, or to a custom service the bus state disabled, is
// refused ([ErrStopped], [ErrDisabled]) and never runs. Inside an action,
// [From] returns the running service's [Self], to submit from it
// (Self.SubmitMessage sends to the outside-world service, "com" by
// default, action Process, as microservicebus's SubmitMessage does).
//
// Mailboxes are bounded (Service.Mailbox, default [DefaultMailbox]). A
// submit to a full mailbox waits for room ([Block], the default) or fails
// at once with [ErrMailboxFull] ([Fail]); nothing is dropped. A submit
// from a run of a service to its own full mailbox fails at once: the
// service would wait for itself. Messages run in the order they entered
// the mailbox.
//
// Lifecycle: [Bus.Start] starts the internal services, then the custom
// ones (when the state is enabled); each service's start initialises its
// actions (flow.Initializer), calls its OnStart and starts its sources
// (a cron or poll source feeding its SourceAction). [Bus.StopService]
// stops a custom service gracefully: intake stops, the messages in its
// mailbox run, OnStop is called, its actions are closed. Internal
// services never stop while the bus runs: StopService refuses them with
// [ErrInternal]. [Bus.Stop] stops everything, custom services first.
//
// State: [Bus.SetState] sets the desired state ([State]: enabled, debug,
// and values of your own). Enabling starts the custom services the state
// had disabled; then every running service that has a StateUpdate action
// gets the state as a message; then disabling stops the custom services
// (each runs its mailbox first). Internal services keep running. Debug
// lowers the level of the services' own loggers ([Self.Logger]) to debug.
//
// Supervision: an action that panics or returns a Fatal error restarts
// its service: OnStop, actions closed, a backoff wait (Options.Restart:
// 100ms doubling to 30s by default, growing while crashes follow each
// other), actions initialised, OnStart. The mailbox is kept: messages
// queued meanwhile wait for the restarted service. The message of a
// panic fails (its requester gets the *errors.PanicError); the message
// of a Fatal error runs again after the restart, up to
// Options.Restart.MaxAttempts restarts (default 10). Restarts, panics
// and failures are counted in [Bus.Status], logged, and written by
// [Bus.WritePrometheus].
//
// Durable mailboxes: with a store (Options.Store, or Service.Store) every
// message is recorded (pending) before it enters the mailbox, moved to
// processing when it runs and to done, rejected or error with its outcome,
// output context and (for an action that is a *flow.Flow) trace after, as
// a channel records its messages. The
// messages a crash left pending or processing are recovered when their
// service first starts in a new process, before new ones; a message whose
// runs crashed the process 3 times in a row is set aside (state error,
// outcome fatal). The store's records carry the bus's addressing in meta:
// [MetaDestination], [MetaAction], [MetaFrom].
//
// Configuration: [FromConfig] builds a bus from the services: section of
// flowrun files ([Spec]); `flowrun serve` runs it beside the channels.
// YAML flows address services with the submit, request and state steps
// this package registers as step components ([SubmitSpec], [RequestSpec],
// [StateSpec]).
//
// Across processes: a [Transport] carries messages to destinations that
// are not local, and the messages of other processes to this bus's
// services ([Bus.Receive]). Package adapters/nats ships one (YAML
// `bus: {transport: {nats: {...}}}`, read by [FromConfig]): durable
// submits on a JetStream stream, request/reply, broadcasts to every
// service of every process. [Bus.TransportReady] reports it started.
package bus

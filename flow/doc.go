// Package flow composes small services into flows that are checked when
// they are built and run many times, concurrently.
//
// A [Service] is a named function over one run's shared context (package
// context, imported as fc). [Step] wraps a function that takes the whole
// context; [Func] binds a typed function whose input struct is read from
// context keys and whose output struct is written back:
//
//	var Price = flow.Func("price", func(ctx context.Context, in struct{ Items []Item }) (struct{ Total float64 }, error) {
//		...
//	})
//
// Combinators arrange services: [Then] (sequence), [Fork] (one case by the
// value of a key or expression), [Select] (one case by a Go function of
// the request), [When], [Unless] and [WhenFunc], [First] (the first guard
// that holds), [All] (concurrently, on snapshots, merged in declaration
// order), [Tap] (fire and forget), [Each] (per element of a slice),
// [Until] (loop), [Saga] with [Compensate] (undo on failure, wherever the
// step sits under the saga), [Retry] and [Timeout]. A built [*Flow] is
// itself a Service, so flows nest.
//
// The node options of pypeman: [Passthrough] runs a step and discards its
// writes, [StoreInputAs] and [StoreOutputAs] keep a step's input (the
// context before it) or output (the keys it wrote) under a key, and
// [Divert] runs steps when a condition holds and then ends the flow
// instead of going on. [Flow.Lookup] finds a step of a built flow by
// name. [Around] runs a [Hook] around a step or block, seen through by
// build checks and the lifecycle (channel.Record uses it to keep each run
// entering a block in a store). Package flow/fn holds ready-made services
// for data shaping (pick, omit, filter, group by, ...).
//
// # Provided values
//
// [Builder.Provide] gives a flow a container of package provide: a
// [Func] input field tagged `provide:""` receives the value of its type
// (a cache, a client, a configuration), checked when the flow is built
// and injected on each call; a singleton costs about as much as a closure
// capturing it.
//
// # Checked when built
//
// [Builder.Build] proves, before any run, that every key a step needs is in
// the flow's declared input or provided by an earlier step on every path,
// that producer and consumer agree on its Go type, that every expression
// compiles and reads only known keys, and that step names are unique. It
// reports every problem at once, each naming the flow, step and key.
//
// # Errors
//
// A run ends at the first error, returned as a [*StepError] naming the step.
// Control errors from package errors steer it: Stop ends the run on purpose
// (never retried), Retry runs the failing step again under its policy
// (exponential backoff; [Builder.Retry] sets the flow's default), Fatal ends
// it for the owner to restart the processor. A panic in a service becomes
// an error carrying the stack.
//
// Outcomes are errors.Kind values: errors.KindOf of a run's error is its
// outcome (ok, stop, retry-exhausted when the retries ran out, fatal,
// failed, panic, canceled). Every attempt of a step has one too: an
// attempt that is retried is will-retry, so a step that succeeds on its
// third attempt has attempts will-retry, will-retry, ok.
//
// # Middleware, traces, graphs
//
// [Builder.Use] wraps every step in middleware (func(next Handler)
// Handler); each attempt of a step passes through it, with its fate
// already decided (see [Middleware]). [Builder.UseSelected] chooses a
// stack of middleware per run. [Logger], [Recover] and [Measure]
// are built in; Logger and Measure label each attempt with its outcome.
// [WithTrace] records a run step by step, with each step's outcome (or
// skipped) and attempts. [Flow.Graph] returns the structure, which renders
// as DOT or Mermaid, or gives its nodes and edges as data ([Node.Diagram]).
// Package flowtest runs table-driven tests of services
// and flows.
//
// # Durable runs
//
// [WithJournal] makes a run durable: before each unit (a step; an element
// of an Each, a branch of an All, a whole Until loop) the run asks its
// [Journal] whether an earlier run completed it, and if so applies the
// unit's recorded writes instead of running it (traced errors.KindResumed,
// with its original times); after each unit it records the unit's writes,
// path and attempts. A step that implements [Parker] parks a durable run
// (a [*ParkError], errors.KindWaiting) instead of waiting in a goroutine,
// also from inside an element, a branch or a loop (whose steps are then
// units too, so the run resumes into it at that step). A [Saga] journals
// its compensation, so a run after a crash mid-compensation finishes it,
// each undo once, without running the saga forward.
// [Flow.Changed] tells whether the units an earlier run journaled still
// match the flow (a structural fingerprint per unit). Taps are not
// journaled. Channels with `durable: steps` keep the journal in their
// store (package adapters/channel).
//
// # Zero values
//
// A [Flow] comes only from [Builder.Build], and a [Group], [Iter], [Loop]
// or [SagaGroup] only from [All], [Each], [Until] or [Saga]: the zero
// values run nothing and return errors wrapping [ErrNotBuilt].
//
// # Costs
//
// A run without options allocates only what its services do; a step adds
// a few nanoseconds over calling the function by hand, and a middleware
// that does nothing about one more. See the README's performance table.
package flow

// Package branch implements branch keys and boolean conditions for flows.
//
// Keys and conditions are written in the expr language
// (github.com/expr-lang/expr) and evaluated against a run's context, a plain
// map[string]any. For example a branch key "customer.tier" selects the branch
// named after the customer's tier, and a condition
// "total > 100 && len(items) > 0" decides whether a step runs.
//
// # Lifecycle
//
// A flow is built once and run many times, concurrently, so the work is split
// over three phases:
//
//  1. Parse, when the flow definition is constructed: syntax check only.
//     Errors carry the line and column (*Error). Idents lists the context
//     keys the expression reads, so a builder can check them against what
//     earlier steps produce; IsIdent/Ident spot plain keys like "tier" that a
//     caller may read from the map directly.
//  2. Compile, when the flow is built, with the set of keys the flow knows at
//     that point (and their Go types when known, nil for any). Unknown keys
//     and type errors are reported here, not at run time. Conditions pass
//     AsBool so that a non-boolean condition is rejected at build time.
//  3. Eval / EvalBool, per run, against the run's context map. Evaluation
//     only executes the precompiled program.
//
// # Pitfalls
//
//   - Never compile per run. Compiling costs on the order of ten
//     microseconds and dozens of allocations, while evaluating a compiled
//     key or condition costs tens of nanoseconds without allocating (see the
//     benchmarks).
//   - Plain keys and member chains ("tier", "customer.tier") are read
//     straight from nested map[string]any values without the VM, with the
//     same result; any other value falls back to the compiled program.
//   - An expr vm.VM is not safe for concurrent use, while a vm.Program is.
//     Each Expr keeps a sync.Pool of VMs, so concurrent Evals of one Expr are
//     safe and reuse VMs without allocating.
//   - The environment passed to Eval must be a plain map[string]any. The
//     compiled program reads keys with a type assertion to exactly that
//     type, so a named map type would fail at run time; the Eval signature
//     enforces it.
//   - Keys missing from the context at run time evaluate to nil, as expr
//     does for map environments. Operations on nil (len(nil), nil.field,
//     nil + 1) are runtime errors returned as *Error, never panics.
//   - Numbers that decoding keeps as text because a float64 would lose
//     digits (a json.Number, such as 12345678901234567891) are read as
//     they are, so `set: {id2: "id"}` keeps every digit, and computed and
//     compared with as float64, as before they were kept: see Expr.Eval.
//     Expressions that neither fail nor compare read values for equality
//     pay nothing for it.
//   - $env is the whole context. An expression that uses it as a value
//     (`$env`, `{audit: $env}`, `keys($env)`) sees a shallow copy taken when
//     it runs, so a step that stores the result (`set: {audit: "$env"}`)
//     stores a copy of the context as it was, never the context inside
//     itself: no value an expression yields can make the context contain
//     itself. $env.key and $env["key"] read a key as usual, without a copy;
//     only expressions that use $env as a value pay for the copy. (Refusing
//     $env would also refuse reads such as `'k' in $env`; a copy keeps them
//     and costs nothing elsewhere.)
//   - Compile rejects keys outside the known set, but only Go types given in
//     the known map are checked statically; a key of unknown (nil) type is
//     checked when the expression runs.
package branch

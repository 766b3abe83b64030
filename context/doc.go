// Package context holds the shared data of one flow run: a map from key to
// value that every service of the run reads and writes, with typed keys,
// JSON in and out, and copy-on-write snapshots for branches that run
// concurrently.
//
// The package name shadows the standard library's context; import it under
// an alias:
//
//	import fc "github.com/svcflow/svcflow/context"
//
//	var Total = fc.Key[float64]("total")
//
//	c := fc.FromMap(map[string]any{"total": 42.0})
//	total, err := Total.Get(c) // 42, nil
//
// A typed read of a value of the wrong type is a [*KeyError] that names the
// key and both types, never a panic. Reads convert what JSON decoding
// produces (float64 and json.Number numbers, []any, map[string]any) to the
// key's type when that loses nothing: see [Convert].
//
// # Numbers
//
// JSON numbers decode as float64, except those a float64 would not write
// back unchanged: an integer beyond 2^53 such as 12345678901234567891
// (which a float64 writes as 12345678901234567000), a decimal with more
// digits than a float64 keeps. Those are kept as a json.Number, their
// text, and encoded as they were read, so they leave a run (output, store,
// HTTP response) with every digit. Key[uint64] or Key[int64] reads them
// exactly when they fit, Key[float64] rounds them as decoding to float64
// would, and expressions compute on them as float64 (see package branch).
//
// # Cycles
//
// Encoding never recurses without bound: a map or slice that contains
// itself, or nesting deeper than 10000 levels, is an encoding error that
// names the path to it. Expressions cannot make one: `$env` yields a copy
// of the context (see package branch).
//
// # Concurrency
//
// A [*Context] is not locked, and nothing shares one across goroutines. A
// branch that runs concurrently works on a [Context.Snapshot] (copy on
// write); when the branches are done the engine merges them back with
// [Context.Merge] in declaration order, so the result of a run never depends
// on scheduling.
package context

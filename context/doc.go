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
// produces (float64 numbers, []any, map[string]any) to the key's type when
// that loses nothing: see [Convert].
//
// # Concurrency
//
// A [*Context] is not locked, and nothing shares one across goroutines. A
// branch that runs concurrently works on a [Context.Snapshot] (copy on
// write); when the branches are done the engine merges them back with
// [Context.Merge] in declaration order, so the result of a run never depends
// on scheduling.
package context

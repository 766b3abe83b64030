// Package fn is the function toolkit: ready-made services for the data
// shaping every flow does, each a flow.Service with a contract, so that
// the flow's build checks see what it reads and writes.
//
// Over maps (the run's context itself, or a map[string]any at a key):
// [Pick], [Omit], [Rename], [Defaults] and [Merge], each a [*MapStep]
// whose [MapStep.From] and [MapStep.Into] choose the source and the
// destination:
//
//	fn.Pick("reply", "order_id", "total")                // the context keeps these keys
//	fn.Omit("scrub", "password").From("user")            // user without its password
//	fn.Merge("profile", "account", "prefs").Into("profile")
//
// Over a slice at a typed key ([fc.Key] of []T), writing a typed key:
// [Map], [Filter], [Reject], [GroupBy], [KeyBy], [Chunk], [UniqBy],
// [Flatten], [SortBy] / [SortByDesc] and [SumBy]. Element functions are
// plain Go functions; the element type comes from the key:
//
//	var Items = fc.Key[[]Item]("items")
//	var BySKU = fc.Key[map[string][]Item]("by_sku")
//
//	fn.Filter("in_stock", Items, Items, func(it Item) bool { return it.Qty > 0 })
//	fn.GroupBy("group", Items, BySKU, func(it Item) string { return it.SKU })
//
// A slice step needs its from key typed []T and provides its into key
// typed with the result, so a missing key, or a producer of another
// type, is a build error naming the step and the key. A value of another
// type at run time (JSON's []any for a []Item) is converted as
// fc.Convert does, through its JSON form; one that cannot be is a Stop.
// The source slice or map is never changed: results are new values.
// Construction mistakes (a nil function, a chunk size of 0, no keys) are
// build errors of the step. The YAML forms of these services are step
// components of package adapters/steps (pick:, filter:, group_by:, ...),
// whose element functions are expr-lang expressions over `#`.
//
// # samber/lo or the standard library
//
// The slice services call github.com/samber/lo (Map, Filter, Reject,
// GroupBy, KeyBy, Chunk, UniqBy, Flatten, SumBy): the standard library
// has none of them, and lo's loops are the hand-written ones (benchmark
// B15 measures Map, Filter and GroupBy over 1,000 elements against
// hand-written loops in the same run; see the README's performance
// table). Pick and Omit of a map use lo.PickByKeys and lo.OmitByKeys.
// The standard library is used where it does as well or better:
// sorting is slices.SortStableFunc (lo has no stable sort by key),
// copying and merging maps is maps.Clone and maps.Copy (about twice as
// fast as lo.Assign). lo never appears in this package's signatures.
package fn

// Package steps holds the built-in service steps of YAML flows, each a
// step component (see package component): set, stop, drop, log, template,
// http, sleep, wait and shell, and the function toolkit of package flow/fn:
// pick, omit, rename, defaults, merge, map, filter, reject, group_by,
// key_by, chunk, uniq_by, flatten, sort_by and sum_by. Importing the package registers them in
// component.Default(), as adapters/component/all does for flowrun:
//
//	import _ "github.com/svcflow/svcflow/adapters/steps"
//
// Each step kind is a spec struct (SetSpec, StopSpec, ...) that the
// configuration reader decodes from the kind's YAML value, with positions
// for every problem, and a constructor from spec to service. Expressions
// (component.Expr, component.Cond) and templates (component.Template) are
// parsed when the file is read; set, stop and drop compile their expressions
// again against the Go types of the keys known where they sit, when the
// flow is built, so a type mistake is a build error. An expression that
// fails at run time fails on its data (a string where a number is needed):
// set and stop return a Stop (branch.Expr.DataError) naming the key, the
// expression and the types of the keys it read, so a channel rejects the
// message (HTTP 422) rather than failing it.
//
//	set: {key: expr, ...}              # expr-lang expressions, evaluated in order
//	stop: {if: cond, reason: text}     # a Stop error when cond holds (stop: "reason" always stops)
//	drop: {if: cond, reason: text}     # a Drop when cond holds: the message is consumed silently (stored done, outcome dropped)
//	log: message | {message: text, level: info, keys: [a, b]}
//	template: {key: "text/template over the context", ...}
//	http: {method, url, headers, body: key | body_template: text, content_type,
//	       timeout: 10s, retry: {...}, into: response, status_into: key, allow_status: [404],
//	       allow_hosts: [api.example.com, "10.0.0.5:8080", "*.svc.example"]}   # other hosts: a Stop naming the host (SSRF)
//	                                   # body_template with a JSON content_type: each {{...}} inserted JSON-encoded
//	sleep: 100ms                       # on a durable channel, over ParkAfter (1s): parks the message
//	wait: {signal: approved, timeout: 48h, into: approval, on_timeout: stop}   # needs durable: steps
//	shell: {command: [argv...] | "sh -c text", stdin: key, into: stdout, json: false}   # restricted
//
// The toolkit's steps shape the context, a map at a key (from:), or a
// list at a key (from:), writing the result over the context or the map,
// or at into:. Their element expressions are expr-lang expressions over
// the element `#` (or the name given by as:), its index `#index`, and any
// context key (which the step then needs); they are evaluated as expr's
// own map(list, expression), in one run over the list:
//
//	pick: [a, b] | {keys: [a, b], from: map_key, into: key}     # keep only these keys
//	omit: [a, b] | {keys: [a, b], from: map_key, into: key}     # delete these keys
//	rename: {keys: {old: new}, from: map_key, into: key}
//	defaults: {values: {key: value}, from: map_key, into: key}  # set when absent or null
//	merge: [m1, m2] | {from: [m1, m2], into: key}                # maps merged, a later one wins
//	map: {from: items, to: "#.price * #.qty", as: item, into: amounts}
//	filter: {from: items, where: "#.qty > 0", into: items}       # reject: the opposite
//	group_by: {from: items, by: "#.sku", into: by_sku}           # {sku: [elements]}
//	key_by: {from: items, by: "#.id", into: by_id}               # {id: last element}
//	uniq_by: {from: items, by: "#.sku"}                          # the first of each
//	sort_by: {from: items, by: "#.price", desc: false}           # stable; numbers or strings
//	sum_by: {from: items, by: "#.price * #.qty", into: total}    # an int when all are integers
//	chunk: {from: items, size: 100, into: batches}
//	flatten: {from: batches, into: items}                        # lists spread one level
//
// into defaults to from, but for group_by, key_by and sum_by, which
// require it. Keys of group_by and key_by are text: strings as they are,
// numbers in their shortest form (2, 2.5), true, false, null, anything
// else as its JSON. A list step reads a list of any Go type, and writes
// lists as []any and maps as map[string]any. Data that does not fit (a
// key that is not a list or a map, a where that is not a boolean, a
// sum_by value that is not a number, sort_by keys of mixed kinds) is a
// Stop naming the step's operation and key.
//
// Shell is restricted (component.Component.Restrict): a configuration that
// uses it loads only when the shell kind is enabled (config.AllowShell,
// flowrun --allow-shell). The services are the step's own: each instance
// of a flow gets a service of its own from the constructor, and a service
// holds nothing that changes between runs.
package steps

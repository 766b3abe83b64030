// Package steps holds the built-in service steps of YAML flows, each a
// step component (see package component): set, stop, drop, log, template,
// http, sleep, wait and shell. Importing the package registers them in
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
// Shell is restricted (component.Component.Restrict): a configuration that
// uses it loads only when the shell kind is enabled (config.AllowShell,
// flowrun --allow-shell). The services are the step's own: each instance
// of a flow gets a service of its own from the constructor, and a service
// holds nothing that changes between runs.
package steps

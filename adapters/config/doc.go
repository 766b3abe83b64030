// Package config loads flows declared in YAML into built, checked
// [flow.Flow] values, with a registry of services they can use.
//
//	reg := config.NewRegistry()
//	reg.MustRegister(Geocode, "address -> lat, lon") // a flow.Func: its contract is checked
//	cfg, err := config.Load([]string{"orders.yaml"}, config.WithRegistry(reg))
//	if err != nil {
//		fmt.Println(err) // every problem, one per line: orders.yaml:12:9: ...
//	}
//	f, _ := cfg.Flow("orders")
//	out, err := f.Run(ctx, input)
//
// Loading never stops at the first problem: the error is [Errors], each
// an [*Error] at file:line:col saying what is wrong and what was expected.
// Syntax errors, unknown keys (with a "did you mean"), wrong types, bad
// durations, expressions that do not parse, templates, unknown flows and
// services, and the flow package's build checks (a key a step needs that
// is not provided on every path before it, a type disagreement with a Go
// service's contract) are all reported at the position of the step or
// expression concerned. A problem in a value reached through a YAML alias
// is reported where the alias is used, once for each use, with the anchor
// and the position in its value: "at 24:12 ... (in anchor &greet, at 9:45)".
//
// The YAML is read with go.yaml.in/yaml/v4 into nodes that carry their
// line and column, and walked by this package, which is how every problem
// gets a position.
//
// # Format
//
//	version: 1                         # optional; 1 is the only version
//	vars:                              # constants templates read: {{var "api"}}
//	  api: http://localhost:8080
//	providers:                         # values Go Func steps receive (Config.Providers)
//	  cache: {cache: {backend: sqlite, path: cache.db, ttl: 10m}}
//	flows:
//	  orders:
//	    description: price and charge an order
//	    input:                         # the keys a run's input provides (checked)
//	      - items                      # any type
//	      - {name: qty, type: int}     # string, int, float, bool, list, map, any, or a RegisterType name
//	      - {name: note, type: string, optional: true}
//	      - {name: coupon, type: string, default: ""}   # a default makes it optional
//	    retry: {max_attempts: 5, initial: 100ms, max: 2s}   # the flow's default policy
//	    sample: {items: [...], qty: 2} # the input of `flowrun run` without --input
//	    steps:
//	      - stop: {if: "len(items) == 0", reason: "no items"}
//	      - set: {subtotal: "sum(map(items, #.price * #.qty))"}
//	      - fork:
//	          on: customer.tier          # a key or an expression
//	          cases:
//	            gold: [{set: {discount: 0.1}}]
//	          default: [{set: {discount: 0}}]
//	      - use: notify                  # a registered Go service (or just "- notify")
//	channels: {...}                      # kept unread for the channel adapters (Config.Channels)
//	services: {...}                      # kept unread for the bus, package adapters/bus (Config.Services)
//	production: {...}                    # kept unread for the production, package adapters/production (Config.Production)
//	tests: [...]                         # cases for `flowrun test` (see below)
//
// Each entry of providers: is a provider component ({kind: spec}) whose
// value is provided under the entry's name and, when no other entry has
// its type, as the unnamed value of that type: a registered flow.Func
// whose input has a field of that type tagged `provide:""` (or
// `provide:"name"`) receives it; a field with no provider is an error at
// the step. Loading constructs nothing: a value is made on first use, and
// whoever runs the flows closes them with Config.Providers().Close.
// Relative paths of provider files are in [WithDataDir].
//
// A step is a mapping with one kind key and optional modifiers:
//
//	name: price                        # service steps only; else generated: set(total), stop, http(customer), ...
//	retry: {max_attempts: 3, ...}      # policy for this step (flow.Retry)
//	timeout: 2s                        # per attempt (flow.Timeout): a timed-out attempt is retried
//	compensate: <step or [steps]>      # under a saga, at any depth: the undo (flow.Compensate)
//	with: {...}                        # use steps of a factory service: its arguments
//	passthrough: true                  # run the step, discard its writes (flow.Passthrough)
//	store_input_as: key                # key: a copy of the context before the step (flow.StoreInputAs)
//	store_output_as: key               # key: the keys the step wrote, as a map (flow.StoreOutputAs)
//	record: sqlite:data/gold.db        # every run reaching the step, recorded in that store with its outcome (channel.RecordOpen)
//
// Service kinds (see [Registry.Services] for the keys of each spec):
//
//	set: {key: expr, ...}              # expr-lang expressions, compiled once at load, evaluated in order
//	stop: {if: cond, reason: text}     # a Stop error when cond holds (stop: "reason" always stops)
//	log: message | {message: text, level: info, keys: [a, b]}
//	template: {key: "text/template over the context", ...}
//	http: {method, url, headers, body: key | body_template: text, content_type,
//	       timeout: 10s, retry: {...}, into: response, status_into: key, allow_status: [404],
//	       allow_hosts: [api.example.com, "10.0.0.5:8080", "*.svc.example"]}   # other hosts: a Stop naming the host (SSRF)
//	                                   # body_template with a JSON content_type: each {{...}} inserted JSON-encoded
//	sleep: 100ms
//	pick, omit, rename, defaults, merge, map, filter, reject, group_by, key_by,
//	chunk, uniq_by, flatten, sort_by, sum_by   # the function toolkit (see adapters/steps)
//	call: other_flow                   # run another flow of the configuration on this context
//	shell: {command: [argv...] | "sh -c text", stdin: key, into: stdout, json: false}   # AllowShell only
//	use: service_name
//
// call and use are the loader's own; every other service kind is a step
// component (package component) of the configuration's component
// registry ([WithComponents], default component.Default()): the kinds
// above are those of adapters/steps, which adapters/component/all links,
// and a program adds its own with component.Register. The loader decodes a
// kind's value into the component's spec struct (positions, unknown keys
// with a "did you mean", defaults, required keys, shorthands; expressions
// and templates parsed at their position), names the step from the spec
// when it has no name, builds it with the constructor (a FieldError at
// its field's position), and checks the keys it needs where the spec reads
// them. A spec's timeout and retry fields (http's) are the step's own
// timeout and retry, which a step's timeout: and retry: keys may not
// repeat. A restricted kind (shell) loads only when enabled ([Allow]).
//
// Combinators, one for each of package flow:
//
//	then: [steps]                                  # a sequence as one step
//	fork: {on: expr, cases: {value: [steps]}, default: [steps]}
//	when: {if: cond, steps: [steps]}   unless: {if: cond, steps: [steps]}
//	when: {if: cond, divert: true, steps: [steps]} # flow.Divert: the steps, then the flow ends
//	all: [steps] | {steps: [steps], limit: 2}     # concurrent, merged in order
//	tap: step | [steps]                            # fire and forget
//	each: {over: key, as: item, index: index, concurrency: 4, collect: {from: k, into: ks}, steps: [steps]}
//	until: {if: cond, max_loops: 10, steps: [steps]}
//	first: [{if: cond, steps: [steps]}, ...]
//	saga: [steps with compensate] | {steps: [...], compensation_timeout: 30s}
//
// Templates (text/template, over the context map) also have the functions
// var, json, upper, lower, trim and pathescape. Expressions and templates
// declare what they read: the keys they name are the step's needs, checked
// by the flow's build like a Go step's contract.
//
// # Environment variables, files and paths
//
// Scalar values (never keys) may hold references, replaced when the file
// is read, before anything else ([WithLookupEnv] replaces the
// environment):
//
//	url: ${API_URL}/v1            # the environment variable; unset is an error at its file:line:col
//	region: ${REGION:eu-west}     # a default, used when REGION is unset or empty
//	token: ${file:secrets/token}  # a file's content (relative to this file's folder), one trailing newline dropped
//	note: "$${HOME}"              # the escape: the text ${HOME}, unreplaced (a shell step's own variables)
//
// A reference replaces text inside one scalar and never adds YAML
// structure. A plain (unquoted) scalar then has the type of its new text
// (port: ${PORT} is a number), a quoted one stays a string unless it has
// a tag: in a flow mapping, where YAML wants the reference quoted, write
// {max_attempts: !!int "${N}"}.
//
// A spec field marked path (the folder of a files source, the file of an
// sqlite store) is a path: a relative one is resolved against the folder
// of the file that declares it, not the working directory; a value given
// with [WithSet] stays relative to the working directory. A problem in a
// [WithSet] value is reported at the flag ("--set flows.f.retry.max_attempts=x:
// ..."), not in the file. A value that is one word ending in a colon
// (store: memory:) is read as that text, as if quoted.
//
// # Tests
//
//	tests:
//	  - flow: orders
//	    stubs: {charge: {output: {charge_id: ch_1}}}       # for every case
//	    cases:
//	      - name: gold customer
//	        input: {items: [...], customer: {tier: gold}}
//	        want: {total: 90}                               # a subset of the output
//	      - name: payment down
//	        stubs: {charge: {error: retry, message: down}}  # stop, dropped, retry, fatal, failed; or any step form
//	        # stubs: {charge: {input: {total: 0}}}          # the real step runs, these keys written over its context
//	        error: retry                                    # an errors.Kind: stop, dropped, retry, retry-exhausted, fatal, failed, panic, canceled; or any
//	        error_contains: down
//	        through: charge                                 # optional: flow.Through (or from: flow.From)
//
// A suite may declare the HTTP service its flow calls (http_service:
// {var: NAME, routes: {"GET /path": {status, headers, json | body} or a
// list of them, one per request, the last repeated}, default: {...}}):
// [Case.Run] starts it on a free loopback port for the case and the var
// NAME (declared in vars) reads its URL meanwhile.
//
// error: names the outcome the run must end with; retry also matches a run
// whose retries ran out (retry-exhausted), and failure is still accepted
// for failed. Values in want: compare as in package flowtest: by their
// JSON form, numbers that are not integers within a relative 1e-9, nested
// maps as subsets, lists element by element. [Case.Run] runs a case and
// reports each difference at its position.
//
// # Who owns what
//
// Loading parses each flow once into a definition, and builds instances
// of it: one when the file is loaded, which [Config.Flow] returns, and a
// new one at each call of [Config.Builder] (a channel of `flowrun serve`
// builds its flow there) or [Config.Build]. An instance's services are its
// own: its built-in steps are made for it, each of its `call:` steps runs
// an instance of the called flow of its own, and each of its `use:` steps
// of a factory ([Registry.RegisterFactory]) has the service the factory
// made for that instance. The instance owns them: whoever calls the built
// flow's Init calls its Close, and closing one instance, or restarting its
// services after a Fatal error, never closes what another instance uses.
//
// A service registered ready ([Registry.Register]) is one value, used by
// every instance that names it. If it has a lifecycle, each `use:` step of
// it in each instance holds a reference counted on the service: the
// service's Init runs on the first Init of a reference (none other being
// initialised), and its Close on the Close of the last initialised one.
// Restarting an instance re-initialises such a service only when no other
// instance holds it. The registry never initialises or closes anything on
// its own.
package config

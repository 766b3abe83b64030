package serve

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v4"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/errors"
)

// Spec is one channel as declared under `channels:` in a configuration.
//
//	channels:
//	  intake:
//	    from:                          # one source, or a list of them
//	      http: {listen: "127.0.0.1:8080", path: /orders, method: POST, max_body: 1048576}
//	      # cron: "@every 1m"          (or {spec: "*/5 * * * * *", seconds: true})
//	      # files: {dir: inbox, glob: "*.json", done: inbox/done, failed: inbox/failed, settle: 1s, rescan: 5s}
//	    flow: orders
//	    store: sqlite:data/intake.db   # memory:, file:DIR, sqlite:PATH; default sqlite:<data dir>/<name>.db
//	    order_by: customer.id          # expression over the payload: same value, one at a time, in order
//	    retry_after: 5s                # redelivery delay when retries ran out
//	    restart: {initial: 100ms, max: 30s, max_attempts: 10}   # after Fatal errors
//	    trace: false                   # do not store each run's trace (default true)
//	    max_deliveries: 5              # dead-letter after 5 failed deliveries (file -> failed/)
type Spec struct {
	Name       string
	Flow       string
	Sources    []SourceSpec
	Store      string // store URL (see OpenStore)
	OrderBy    string // expression; "" for none
	RetryAfter time.Duration
	Restart    *errors.Policy
	NoTrace    bool // trace: false
	// MaxDeliveries dead-letters a message after this many failed
	// deliveries (max_deliveries; 0: redeliver for ever).
	MaxDeliveries int

	file string
	node *yaml.Node
}

// SourceSpec is one source of a channel: exactly one of HTTP, Cron, Files.
type SourceSpec struct {
	HTTP  *HTTPSpec
	Cron  *CronSpec
	Files *FilesSpec
	file  string
	node  *yaml.Node
}

// HTTPSpec is an HTTP route.
type HTTPSpec struct {
	Listen  string // default 127.0.0.1:8080
	Path    string
	Method  string // default POST
	MaxBody int64  // bytes; 0: the server's default (1 MiB)
}

// CronSpec is a schedule.
type CronSpec struct {
	Spec    string
	Seconds bool
}

// FilesSpec is a watched folder.
type FilesSpec struct {
	Dir, Glob, Done, Failed string
	Settle, Rescan          time.Duration
}

// Specs reads the channels of cfg. dataDir is where default SQLite stores
// go. Every problem is reported, as config.Errors at file:line:col.
func Specs(cfg *config.Config, dataDir string) ([]Spec, error) {
	var errs config.Errors
	var specs []Spec
	seen := map[string]bool{}
	for _, sec := range cfg.Channels() {
		r := reader{file: sec.File, errs: &errs}
		if seen[sec.Name] {
			r.errorf(sec.Key, "channel %q declared twice", sec.Name)
			continue
		}
		seen[sec.Name] = true
		sp := Spec{Name: sec.Name, file: sec.File, node: sec.Node, Store: "sqlite:" + filepath.Join(dataDir, sec.Name+".db")}
		r.mapping(sec.Node, "channel "+strconv.Quote(sec.Name), map[string]func(*yaml.Node){
			"from": func(n *yaml.Node) {
				items := []*yaml.Node{n}
				if n.Kind == yaml.SequenceNode {
					items = n.Content
				}
				for _, it := range items {
					if src, ok := r.source(it); ok {
						sp.Sources = append(sp.Sources, src)
					}
				}
			},
			"flow": func(n *yaml.Node) {
				sp.Flow = r.str(n, "flow")
				if sp.Flow != "" {
					if _, ok := cfg.Flow(sp.Flow); !ok {
						r.errorf(n, "unknown flow %q: expected one of %s", sp.Flow, strings.Join(cfg.Flows(), ", "))
					}
				}
			},
			"store":       func(n *yaml.Node) { sp.Store = r.store(n) },
			"order_by":    func(n *yaml.Node) { sp.OrderBy = r.str(n, "order_by") },
			"retry_after": func(n *yaml.Node) { sp.RetryAfter = r.duration(n, "retry_after") },
			"restart":     func(n *yaml.Node) { sp.Restart = r.policy(n) },
			"trace":       func(n *yaml.Node) { sp.NoTrace = !r.boolean(n, "trace") },
			"max_deliveries": func(n *yaml.Node) {
				sp.MaxDeliveries = int(r.integer(n, "max_deliveries"))
			},
		}, "from", "flow")
		specs = append(specs, sp)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return specs, nil
}

// reader reads YAML nodes, recording problems with their positions.
type reader struct {
	file string
	errs *config.Errors
}

func (r reader) errorf(n *yaml.Node, format string, args ...any) {
	*r.errs = append(*r.errs, config.NodeError(r.file, n, format, args...))
}

// mapping calls the handler of each key of n; unknown keys and missing
// required ones are errors.
func (r reader) mapping(n *yaml.Node, what string, keys map[string]func(*yaml.Node), required ...string) bool {
	if n.Kind != yaml.MappingNode {
		r.errorf(n, "%s: expected a mapping", what)
		return false
	}
	have := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		h, ok := keys[k.Value]
		if !ok {
			r.errorf(k, "unknown key %q in %s: expected one of %s", k.Value, what, strings.Join(slices.Sorted(mapKeys(keys)), ", "))
			continue
		}
		have[k.Value] = true
		h(v)
	}
	for _, req := range required {
		if !have[req] {
			r.errorf(n, "%s: missing %s", what, req)
		}
	}
	return true
}

func mapKeys(m map[string]func(*yaml.Node)) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (r reader) str(n *yaml.Node, what string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		r.errorf(n, "%s: expected a string", what)
		return ""
	}
	return n.Value
}

func (r reader) boolean(n *yaml.Node, what string) bool {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		r.errorf(n, "%s: expected true or false", what)
	}
	return b
}

func (r reader) integer(n *yaml.Node, what string) int64 {
	var i int64
	if n.Kind != yaml.ScalarNode || n.Decode(&i) != nil || i < 0 {
		r.errorf(n, "%s: expected a non-negative integer", what)
	}
	return i
}

func (r reader) duration(n *yaml.Node, what string) time.Duration {
	s := r.str(n, what)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		r.errorf(n, "%s: expected a duration like 500ms or 2s, got %q", what, s)
		return 0
	}
	return d
}

func (r reader) store(n *yaml.Node) string {
	s := r.str(n, "store")
	scheme, _, _ := strings.Cut(s, ":")
	switch {
	case s == "":
	case strings.HasSuffix(s, ".db"), scheme == "sqlite", scheme == "file", scheme == "memory", scheme == "mem":
	default:
		r.errorf(n, "store: expected memory:, file:DIR or sqlite:PATH, got %q", s)
	}
	return s
}

func (r reader) policy(n *yaml.Node) *errors.Policy {
	p := &errors.Policy{}
	r.mapping(n, "restart", map[string]func(*yaml.Node){
		"initial":      func(v *yaml.Node) { p.Initial = r.duration(v, "initial") },
		"max":          func(v *yaml.Node) { p.MaxInterval = r.duration(v, "max") },
		"max_attempts": func(v *yaml.Node) { p.MaxAttempts = int(r.integer(v, "max_attempts")) },
		"multiplier": func(v *yaml.Node) {
			if err := v.Decode(&p.Multiplier); err != nil {
				r.errorf(v, "multiplier: expected a number")
			}
		},
	})
	if err := p.Validate(); err != nil {
		r.errorf(n, "restart: %v", err)
	}
	return p
}

// source reads one entry of from:.
func (r reader) source(n *yaml.Node) (SourceSpec, bool) {
	src := SourceSpec{file: r.file, node: n}
	if n.Kind != yaml.MappingNode || len(n.Content) != 2 {
		r.errorf(n, "from: expected one source: {http: {...}}, {cron: spec} or {files: {...}}")
		return src, false
	}
	kind, v := n.Content[0], n.Content[1]
	switch kind.Value {
	case "http":
		h := &HTTPSpec{Listen: "127.0.0.1:8080", Method: "POST"}
		r.mapping(v, "http", map[string]func(*yaml.Node){
			"listen": func(v *yaml.Node) { h.Listen = r.str(v, "listen") },
			"path": func(v *yaml.Node) {
				h.Path = r.str(v, "path")
				if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
					r.errorf(v, "http: path must start with /, got %q", h.Path)
				}
			},
			"method":   func(v *yaml.Node) { h.Method = strings.ToUpper(r.str(v, "method")) },
			"max_body": func(v *yaml.Node) { h.MaxBody = r.integer(v, "max_body") },
		}, "path")
		src.HTTP = h
	case "cron":
		c := &CronSpec{}
		if v.Kind == yaml.ScalarNode {
			c.Spec = v.Value
		} else {
			r.mapping(v, "cron", map[string]func(*yaml.Node){
				"spec":    func(v *yaml.Node) { c.Spec = r.str(v, "spec") },
				"seconds": func(v *yaml.Node) { c.Seconds = r.boolean(v, "seconds") },
			}, "spec")
		}
		src.Cron = c
	case "files":
		f := &FilesSpec{}
		r.mapping(v, "files", map[string]func(*yaml.Node){
			"dir":    func(v *yaml.Node) { f.Dir = r.str(v, "dir") },
			"glob":   func(v *yaml.Node) { f.Glob = r.str(v, "glob") },
			"done":   func(v *yaml.Node) { f.Done = r.str(v, "done") },
			"failed": func(v *yaml.Node) { f.Failed = r.str(v, "failed") },
			"settle": func(v *yaml.Node) { f.Settle = r.duration(v, "settle") },
			"rescan": func(v *yaml.Node) { f.Rescan = r.duration(v, "rescan") },
		}, "dir")
		src.Files = f
	default:
		r.errorf(kind, "unknown source %q: expected http, cron or files", kind.Value)
		return src, false
	}
	return src, true
}

// position returns "file:line:col" of a spec's node, for errors found
// when a source is built.
func position(file string, n *yaml.Node) string {
	if n == nil {
		return file
	}
	return fmt.Sprintf("%s:%d:%d", file, n.Line, n.Column)
}

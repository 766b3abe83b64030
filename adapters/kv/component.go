package kv

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"sync"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/branch"
	fc "github.com/svcflow/svcflow/context"
	ferrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/provide"
)

// Spec is the configuration of a kv provider:
//
//	providers:
//	  state: {kv: {backend: sqlite, path: state.db}}
//	  scratch: {kv: {}}                     # in memory
//	  shared: {kv: {backend: nats, url: nats://127.0.0.1:4222, bucket: orders_state}}
//
// Backend nats is a JetStream key-value bucket (package
// adapters/kv/natskv, which registers it; adapters/component/all
// imports it).
type Spec struct {
	Backend  string   `yaml:"backend" default:"memory" enum:"memory,sqlite,nats" doc:"where values live: memory (lost on exit), sqlite (a file that outlives restarts) or nats (a JetStream key-value bucket, shared by every process that names it)"`
	Path     string   `yaml:"path" doc:"the SQLite file of backend sqlite; a relative path is in the data folder of the configuration (flowrun serve: its --data folder; the working directory unless set); default <name>.kv.db"`
	URL      []string `yaml:"url" spec:"oneormany" doc:"backend nats: server URLs (nats://host:4222), one or several; none: the nats-server embedded in this process, stored under the data folder (shared with the nats sources)"`
	Listen   string   `yaml:"listen" doc:"backend nats without url: the embedded server's client address (default 127.0.0.1:4222; port 0: any free port)"`
	Bucket   string   `yaml:"bucket" doc:"backend nats: the key-value bucket, made when missing (default svcflow_kv)"`
	Replicas int      `yaml:"replicas" doc:"backend nats: the bucket's replicas when it is made, in a cluster (default 1); an existing bucket with other replicas is an error"`
}

// BackendOpener makes the opener of a backend from a kv provider's spec
// (checking the spec at once; an error from component.FieldErrorf names
// the field). The opener runs on the provider's first use.
type BackendOpener func(env component.Env, s Spec) (open func(context.Context) (Backend, error), err error)

var backends = struct {
	sync.Mutex
	m map[string]BackendOpener
}{m: map[string]BackendOpener{}}

// RegisterBackend makes backend name available to the kv provider
// (YAML `backend: name`); package adapters/kv/natskv registers "nats"
// from its init. Registering a name twice panics; memory and sqlite are
// built in.
func RegisterBackend(name string, open BackendOpener) {
	backends.Lock()
	defer backends.Unlock()
	if _, dup := backends.m[name]; dup || name == "memory" || name == "sqlite" || name == "" {
		panic(fmt.Sprintf("kv: backend %q registered twice", name))
	}
	backends.m[name] = open
}

// Component is the kv provider component: it provides a *[Store] (a
// singleton, closed with its container), opened on first use.
var Component = component.Provider("kv", "node persistence: values saved and restored per channel and node (save/restore steps, *kv.Store in Func inputs), in memory, in an SQLite file or in a NATS key-value bucket",
	func(env component.Env, s Spec) (any, error) {
		var open func(context.Context) (*Store, error)
		if s.Backend != "nats" {
			switch {
			case len(s.URL) > 0:
				return nil, component.FieldErrorf("url", "only backend nats has a url")
			case s.Listen != "":
				return nil, component.FieldErrorf("listen", "only backend nats has a listen address")
			case s.Bucket != "":
				return nil, component.FieldErrorf("bucket", "only backend nats has a bucket")
			case s.Replicas != 0:
				return nil, component.FieldErrorf("replicas", "only backend nats has replicas")
			}
		}
		switch s.Backend {
		case "", "memory":
			if s.Path != "" {
				return nil, component.FieldErrorf("path", "only backend sqlite has a path")
			}
			open = func(context.Context) (*Store, error) { return NewMemory(), nil }
		case "sqlite":
			path := s.Path
			if path == "" {
				path = env.Name + ".kv.db"
			}
			if path != ":memory:" && !filepath.IsAbs(path) && env.DataDir != "" {
				path = filepath.Join(env.DataDir, path)
			}
			open = func(context.Context) (*Store, error) {
				if path != ":memory:" {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						return nil, err
					}
				}
				return OpenSQLite(path)
			}
		default:
			backends.Lock()
			mk := backends.m[s.Backend]
			backends.Unlock()
			if mk == nil {
				if s.Backend == "nats" {
					return nil, component.FieldErrorf("backend", "backend nats is not linked into this program: import github.com/svcflow/svcflow/adapters/kv/natskv")
				}
				return nil, component.FieldErrorf("backend", "unknown backend %q: expected memory, sqlite or nats", s.Backend)
			}
			if s.Path != "" {
				return nil, component.FieldErrorf("path", "only backend sqlite has a path")
			}
			ob, err := mk(env, s)
			if err != nil {
				return nil, err
			}
			open = func(ctx context.Context) (*Store, error) {
				b, err := ob(ctx)
				if err != nil {
					return nil, err
				}
				return New(b), nil
			}
		}
		return provide.Define[*Store](open)
	})

// SaveSpec is the spec of a save step: it saves the value of an
// expression under a key of its node.
//
//	save: {key: last_id, value: "max(map(rows, #.id))", node: poller}
//	save: {key: "seen-{{.customer}}", value: "now()"}
type SaveSpec struct {
	Key   component.Template `yaml:"key" spec:"required" doc:"the key, a template over the context"`
	Value component.Expr     `yaml:"value" spec:"required" doc:"an expression whose value is saved (as JSON)"`
	Node  string             `yaml:"node" doc:"the node whose keys these are (default: none, the channel's shared keys)"`
	Store string             `yaml:"store" doc:"the name of the kv provider (default: the only one)"`
}

// StepName is "save(KEY)".
func (s SaveSpec) StepName() string { return "save(" + s.Key.Source() + ")" }

// RestoreSpec is the spec of a restore step: it puts the value saved
// under a key of its node into a context key.
//
//	restore: {key: last_id, into: since, default: 0, node: poller}
//	restore: {key: token, into: token, required: true}   # none saved: an error
type RestoreSpec struct {
	Key      component.Template `yaml:"key" spec:"required" doc:"the key, a template over the context"`
	Into     component.Key      `yaml:"into" spec:"required" doc:"the context key that gets the value"`
	Default  any                `yaml:"default" doc:"the value into gets when none was saved (default null)"`
	Required bool               `yaml:"required" doc:"none saved is an error instead (pypeman's restore_data without a default)"`
	Node     string             `yaml:"node" doc:"the node whose keys these are (default: none, the channel's shared keys)"`
	Store    string             `yaml:"store" doc:"the name of the kv provider (default: the only one)"`
}

// StepName is "restore(INTO)".
func (s RestoreSpec) StepName() string { return "restore(" + string(s.Into) + ")" }

// Save is the save step component.
var Save = component.Step("save", "save the value of an expression under a key of the channel's node (node persistence, pypeman save_data); needs a kv provider",
	func(env component.Env, s SaveSpec) (flow.Service, error) {
		if s.Key.IsZero() {
			return nil, component.FieldErrorf("key", "expected a key")
		}
		if s.Value.IsZero() {
			return nil, component.FieldErrorf("value", "expected an expression")
		}
		st := &saver{step: step{name: env.Name, key: s.Key, node: s.Node, store: s.Store}, src: s.Value, expr: s.Value.Parsed()}
		st.konst, st.isConst = s.Value.Constant()
		st.contract.Needs = needs(s.Key.Keys(), s.Value.Keys())
		return st, nil
	})

// Restore is the restore step component.
var Restore = component.Step("restore", "put the value saved under a key of the channel's node into a context key (node persistence, pypeman restore_data); needs a kv provider",
	func(env component.Env, s RestoreSpec) (flow.Service, error) {
		if s.Key.IsZero() {
			return nil, component.FieldErrorf("key", "expected a key")
		}
		if s.Into == "" {
			return nil, component.FieldErrorf("into", "expected a context key")
		}
		r := &restorer{step: step{name: env.Name, key: s.Key, node: s.Node, store: s.Store}, into: string(s.Into), def: s.Default, required: s.Required}
		if s.Required && s.Default != nil {
			return nil, component.FieldErrorf("required", "a step with a default never misses a value: set default or required, not both")
		}
		r.contract.Needs = needs(s.Key.Keys())
		r.contract.Provides = []fc.KeyInfo{fc.Any(r.into)}
		return r, nil
	})

func init() { component.Register(Component, Save, Restore) }

func needs(lists ...[]string) []fc.KeyInfo {
	var out []fc.KeyInfo
	seen := map[string]bool{}
	for _, l := range lists {
		for _, k := range l {
			if !seen[k] {
				seen[k] = true
				out = append(out, fc.Any(k))
			}
		}
	}
	return out
}

// step is what save and restore share: the key, the node, the store.
type step struct {
	name     string
	key      component.Template
	node     string
	store    string
	bound    *provide.Binding
	contract flow.Contract
}

func (s *step) Name() string            { return s.name }
func (s *step) Contract() flow.Contract { return s.contract }

// bind finds the kv provider in the flow's container.
func (s *step) bind(c *provide.Container) (*provide.Binding, error) {
	what := "the kv provider"
	if s.store != "" {
		what = fmt.Sprintf("the kv provider %q", s.store)
	}
	if c == nil {
		return nil, fmt.Errorf("needs %s: declare one under providers: (state: {kv: {backend: sqlite}})", what)
	}
	b, err := c.Bind(reflect.TypeFor[*Store](), s.store)
	if err != nil {
		return nil, fmt.Errorf("needs %s: %w", what, err)
	}
	return b, nil
}

// node returns the run's node and key.
func (s *step) target(ctx context.Context, c *fc.Context) (*Node, string, error) {
	if s.bound == nil {
		return nil, "", fmt.Errorf("%s: no kv provider (the flow was not built with providers)", s.name)
	}
	v, err := s.bound.Get(ctx)
	if err != nil {
		return nil, "", err
	}
	key, err := s.key.Execute(c.View())
	if err != nil {
		return nil, "", ferrors.Stopf("%s: key: %v", s.name, err)
	}
	return v.(*Store).Node(ctx, s.node), key, nil
}

// saver is the save step's service.
type saver struct {
	step
	src     component.Expr
	expr    *branch.Expr
	konst   any
	isConst bool
}

// Inject binds the kv provider.
func (s *saver) Inject(c *provide.Container) (flow.Service, error) {
	b, err := s.bind(c)
	if err != nil {
		return nil, err
	}
	out := *s
	out.bound = b
	return &out, nil
}

// Prepare compiles the value's expression against the keys known where
// the step sits.
func (s *saver) Prepare(known map[string]reflect.Type) (flow.Service, error) {
	if s.isConst {
		return s, nil
	}
	e, err := s.src.Compile(maps.Clone(known))
	if err != nil {
		return nil, fmt.Errorf("save %q: %w", s.key.Source(), err)
	}
	out := *s
	out.expr = e
	return &out, nil
}

func (s *saver) Call(ctx context.Context, c *fc.Context) error {
	n, key, err := s.target(ctx, c)
	if err != nil {
		return err
	}
	v := s.konst
	if !s.isConst {
		env := c.View()
		if v, err = s.expr.Eval(env); err != nil {
			return s.expr.DataError(fmt.Sprintf("save %q", key), env, err)
		}
	}
	return n.Save(ctx, key, v)
}

// restorer is the restore step's service.
type restorer struct {
	step
	into     string
	def      any
	required bool
}

// Inject binds the kv provider.
func (r *restorer) Inject(c *provide.Container) (flow.Service, error) {
	b, err := r.bind(c)
	if err != nil {
		return nil, err
	}
	out := *r
	out.bound = b
	return &out, nil
}

func (r *restorer) Call(ctx context.Context, c *fc.Context) error {
	n, key, err := r.target(ctx, c)
	if err != nil {
		return err
	}
	v, found, err := n.Restore(ctx, key)
	switch {
	case err != nil:
		return err
	case found:
		c.Set(r.into, v)
	case r.required:
		return fmt.Errorf("kv %s: restore %q: %w", n.Scope(), key, ErrNotFound)
	default:
		c.Set(r.into, r.def)
	}
	return nil
}

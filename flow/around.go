package flow

import (
	"context"
	"errors"
	"reflect"
	"slices"

	fc "github.com/svcflow/svcflow/context"
)

// ---- Around ----

// Hook is what [Around] runs around a step: once for every run that
// reaches the step. Implementations must be safe for concurrent use.
//
// A Hook may also implement [Initializer] and [Closer]: a flow that holds
// the step calls its Init before the Init of the step's own services and
// its Close after theirs ([Flow.Init], [Flow.Close]), once per hook value
// however many steps it wraps (hooks of a comparable type, such as
// pointers, are compared with ==).
type Hook interface {
	// Around is called with the step's path in the flow (the Path of its
	// [Node], e.g. "orders/when(total > 100)"), the run's context as it
	// enters the step, and next, which runs the step on the context it is
	// given. What Around returns is the step's result: it normally calls
	// next once and returns its error.
	Around(ctx context.Context, path string, c *fc.Context, next func(ctx context.Context, c *fc.Context) error) error
}

// Around runs step inside h (see [Hook]): an adapter's way to observe a
// whole block (a record of every run entering it, with its outcome)
// without hiding it from the engine. Build checks, graphs, traces,
// [Flow.Lookup] and the Init and Close of the services inside step see
// through the wrapper as if step stood alone; the wrapper keeps step's
// name.
//
// Around of a [Tap] runs h around the tapped step, beside the flow: h
// sees the tapped run's outcome, not the immediate return of the tap.
// When a [Divert] inside step ends the run, next returns nil (the run
// succeeded) and the run still ends after h returns.
func Around(step Service, h Hook) Service {
	a := &around{step: step, hook: h}
	a.self = a
	return a
}

type around struct {
	combinator
	step Service
	hook Hook
}

// Name is the wrapped step's name.
func (a *around) Name() string {
	if isNil(a.step) {
		return "around"
	}
	return a.step.Name()
}

func (a *around) build(b *builder, path string, in keys) (runner, keys, *Node) {
	if isNil(a.step) || a.hook == nil {
		b.errorf("", "", nil, "around: nil step or hook (at %s)", path)
		return seqRunner(nil), in, &Node{Kind: KindThen, Path: path}
	}
	if t, ok := a.step.(*tap); ok && !isNil(t.step) {
		// Around the tapped step, in the tap's goroutine.
		inner := &tap{step: Around(t.step, a.hook)}
		inner.self = inner
		return inner.build(b, path, in)
	}
	_, in1 := a.hook.(Initializer)
	_, cl := a.hook.(Closer)
	comparable := reflect.TypeOf(a.hook).Comparable()
	if (in1 || cl) && !slices.ContainsFunc(b.leaves, func(l Service) bool {
		hl, ok := l.(*hookLeaf)
		return ok && comparable && hl.hook == a.hook
	}) {
		b.leaves = append(b.leaves, &hookLeaf{name: a.step.Name(), hook: a.hook}) // one Init and Close per hook value
	}
	body, out, n := b.compile(a.step, path, in)
	return &aroundRunner{body: body, hook: a.hook, path: n.Path}, out, n
}

type aroundRunner struct {
	body runner
	hook Hook
	path string
}

func (a *aroundRunner) run(ctx context.Context, r *runState, c *fc.Context) error {
	through := false
	err := a.hook.Around(ctx, a.path, c, func(ctx context.Context, c *fc.Context) error {
		err := a.body.run(ctx, r, c)
		if err == errThrough {
			through = true
			return nil
		}
		return err
	})
	if err == nil && through {
		return errThrough
	}
	return err
}

// hookLeaf carries a Hook's Init and Close among a flow's leaves.
type hookLeaf struct {
	name string
	hook Hook
}

func (h *hookLeaf) Name() string { return h.name }

func (h *hookLeaf) Call(context.Context, *fc.Context) error {
	return errors.New("flow: a hook is not a step")
}

func (h *hookLeaf) Init(ctx context.Context) error {
	if i, ok := h.hook.(Initializer); ok {
		return i.Init(ctx)
	}
	return nil
}

func (h *hookLeaf) Close(ctx context.Context) error {
	if c, ok := h.hook.(Closer); ok {
		return c.Close(ctx)
	}
	return nil
}

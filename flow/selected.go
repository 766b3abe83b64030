package flow

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/provide"
)

// UseSelected adds middleware chosen per run, as the fulfillment
// framework's middlewares(request): pick looks at the run's context (its
// input, once checked) and names one of stacks, whose middleware then
// wraps every step of that run, first given outermost. Every stack is
// applied to every step when the flow is built, so a run only chooses;
// the stack sits where UseSelected was called among [Builder.Use] calls.
// A name that is not a stack, or an error from pick, ends the run before
// any step with an error of the step "middlewares". A traced run records
// the choice as a span named middlewares whose Selected is the stack's
// name. A flow has at most one UseSelected.
//
//	flow.New("purchase", steps...).UseSelected(byTier, map[string][]flow.Middleware{
//		"audited": {audit},
//		"plain":   nil,
//	})
func (b *Builder) UseSelected(pick func(ctx context.Context, c *fc.Context) (string, error), stacks map[string][]Middleware) *Builder {
	if b.sel != nil {
		b.sel.twice = true
		return b
	}
	b.sel = &mwSelect{pick: pick, names: slices.Sorted(maps.Keys(stacks)), stacks: maps.Clone(stacks), at: len(b.mw)}
	return b
}

// mwSelect is the middleware chosen per run of a flow.
type mwSelect struct {
	pick   func(ctx context.Context, c *fc.Context) (string, error)
	names  []string // sorted; a run's choice is an index
	stacks map[string][]Middleware
	at     int // position among the flow's middleware
	twice  bool
	flow   string
}

// middleware applies every stack to a step and returns the handler that
// runs the one the run chose.
func (s *mwSelect) middleware(next Handler) Handler {
	hs := make([]Handler, len(s.names))
	for i, n := range s.names {
		h := next
		mw := s.stacks[n]
		for j := len(mw) - 1; j >= 0; j-- {
			h = mw[j](h)
		}
		hs[i] = h
	}
	return func(ctx context.Context, st *StepInfo, c *fc.Context) error {
		i, ok := ctx.Value(s).(int)
		if !ok || i < 0 || i >= len(hs) {
			return fmt.Errorf("flow %q: no middleware stack chosen for this run", s.flow)
		}
		return hs[i](ctx, st, c)
	}
}

// choose runs pick and returns ctx carrying the choice.
func (s *mwSelect) choose(ctx context.Context, r *runState, c *fc.Context) (context.Context, error) {
	start := time.Now()
	var name string
	err := guard(func() (err error) { name, err = s.pick(ctx, c); return err })
	i := -1
	if err == nil {
		if i = slices.Index(s.names, name); i < 0 {
			err = fmt.Errorf("no middleware stack %q (have %v)", name, s.names)
		}
	}
	if r.trace != nil {
		sp := Span{Name: "middlewares", Path: s.flow + "/middlewares", Start: start, Duration: time.Since(start),
			Attempts: 1, Outcome: errors.KindOf(err), Selected: name}
		if err != nil {
			sp.Err = err.Error()
		}
		r.trace.add(sp)
	}
	if err != nil {
		return ctx, &StepError{Flow: s.flow, Step: "middlewares", Path: s.flow + "/middlewares", Err: err}
	}
	return context.WithValue(ctx, s, i), nil
}

// runExtras is what some flows do when a run starts: choose its
// middleware, open its scope of per-run provided values.
type runExtras struct {
	sel    *mwSelect
	scoped bool
}

// extras checks the per-run settings of b and returns what its runs do
// first (nil: nothing); it puts the chosen middleware among bl's.
func (b *Builder) extras(bl *builder) *runExtras {
	x := &runExtras{}
	if s := b.sel; s != nil {
		errs := len(bl.errs)
		switch {
		case s.twice:
			bl.errorf("middlewares", "", nil, "UseSelected called more than once")
		case s.pick == nil:
			bl.errorf("middlewares", "", nil, "UseSelected: nil function")
		case len(s.names) == 0:
			bl.errorf("middlewares", "", nil, "UseSelected: no stacks")
		}
		for _, n := range s.names {
			if slices.ContainsFunc(s.stacks[n], func(m Middleware) bool { return m == nil }) {
				bl.errorf("middlewares", "", nil, "UseSelected: stack %q has a nil middleware", n)
			}
		}
		if len(bl.errs) > errs {
			return nil
		}
		s.flow = b.name
		x.sel = s
		bl.mw = slices.Insert(slices.Clone(bl.mw), min(s.at, len(bl.mw)), s.middleware)
	}
	x.scoped = b.providers != nil && b.providers.HasPerRun()
	if x.sel == nil && !x.scoped {
		return nil
	}
	return x
}

// begin prepares a run: it opens the run's scope of provided values (the
// returned end closes it) and chooses its middleware.
func (x *runExtras) begin(ctx context.Context, r *runState, c *fc.Context) (context.Context, func(context.Context), error) {
	var end func(context.Context)
	if x.scoped && provide.ScopeOf(ctx) == nil {
		s := provide.NewScope()
		ctx = provide.WithScope(ctx, s)
		end = func(ctx context.Context) {
			if err := s.Close(context.WithoutCancel(ctx)); err != nil {
				slog.Default().ErrorContext(ctx, "closing per-run provided values", "error", err)
			}
		}
	}
	if x.sel != nil {
		var err error
		if ctx, err = x.sel.choose(ctx, r, c); err != nil {
			return ctx, end, err
		}
	}
	return ctx, end, nil
}

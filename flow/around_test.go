package flow_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

type seenHook struct {
	mu     sync.Mutex
	events []string
}

func (h *seenHook) add(e string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e)
}

func (h *seenHook) Around(ctx context.Context, path string, c *fc.Context, next func(context.Context, *fc.Context) error) error {
	h.add("enter " + path)
	err := next(ctx, c)
	h.add("leave " + errors.KindOf(err).String())
	return err
}

func (h *seenHook) Init(context.Context) error  { h.add("init hook"); return nil }
func (h *seenHook) Close(context.Context) error { h.add("close hook"); return nil }

type lifeStep struct {
	h *seenHook
}

func (s lifeStep) Name() string                            { return "life" }
func (s lifeStep) Call(context.Context, *fc.Context) error { return nil }
func (s lifeStep) Init(context.Context) error              { s.h.add("init step"); return nil }
func (s lifeStep) Close(context.Context) error             { s.h.add("close step"); return nil }

func TestAroundSeesOutcomesAndLifecycle(t *testing.T) {
	h := &seenHook{}
	f, err := flow.New("orders",
		flow.Around(flow.When("total > 0", lifeStep{h}, flow.Step("check", func(ctx context.Context, c *fc.Context) error {
			if c.Has("bad") {
				return errors.Stop("bad")
			}
			return nil
		})), h),
		flow.Around(flow.Divert("total > 100", flow.Step("big", func(context.Context, *fc.Context) error { return nil })), h),
		flow.Step("after", func(ctx context.Context, c *fc.Context) error { c.Set("after", true); return nil }),
	).Input(fc.Key[float64]("total")).Build()
	require.NoError(t, err)
	require.NoError(t, f.Init(t.Context()))
	assert.Equal(t, []string{"init hook", "init step"}, h.events, "the hook's Init comes first")
	h.events = nil

	_, err = f.Run(t.Context(), map[string]any{"total": 5.0, "bad": true})
	assert.True(t, errors.IsStop(err))
	out, err := f.Run(t.Context(), map[string]any{"total": 500.0})
	require.NoError(t, err)
	assert.False(t, out.Has("after"), "a divert inside Around still ends the run")
	assert.Equal(t, []string{
		"enter orders/when(total > 0)", "leave stop",
		"enter orders/when(total > 0)", "leave ok", "enter orders/divert(total > 100)", "leave ok",
	}, h.events)
	h.events = nil
	require.NoError(t, f.Close(t.Context()))
	assert.Equal(t, []string{"close step", "close hook"}, h.events, "once per hook value, after the steps inside")
}

func TestAroundBuildChecksSeeThrough(t *testing.T) {
	needs := flow.Func("use", func(ctx context.Context, in struct{ Missing string }) (struct{}, error) { return struct{}{}, nil })
	_, err := flow.New("bad", flow.Around(needs, &seenHook{})).Build()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "missing")
	_, err = flow.New("nil", flow.Around(needs, nil)).Build()
	require.Error(t, err)
}

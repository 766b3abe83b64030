package flow_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// byProduct picks the transactions of a request by its product.
func byProduct(ctx context.Context, c *fc.Context) (string, error) {
	p, _ := c.Get("product")
	s, _ := p.(string)
	if s == "broken" {
		return "", errors.New("no catalog entry")
	}
	return s, nil
}

// TestSelectPerRequest: two requests run different transaction lists of
// one saga, and the trace says which ran.
func TestSelectPerRequest(t *testing.T) {
	l := &undoLog{}
	f := flow.New("purchase", flow.Saga(flow.Select("transactions", byProduct,
		flow.On("subscription", l.cu("create_account"), l.cu("activate")),
		flow.On("hardware", l.cu("reserve"), l.cu("ship")),
	))).Input(fc.Key[string]("product")).MustBuild()

	spans := func(tr flow.Trace) (out []string) {
		for _, s := range tr.Steps {
			out = append(out, s.Name+"/"+s.Selected)
		}
		return out
	}
	var tr flow.Trace
	_, err := f.Run(t.Context(), map[string]any{"product": "subscription"}, flow.WithTrace(&tr))
	require.NoError(t, err)
	assert.Equal(t, []string{"select(transactions)/subscription", "create_account/", "activate/"}, spans(tr))
	_, err = f.Run(t.Context(), map[string]any{"product": "hardware"}, flow.WithTrace(&tr))
	require.NoError(t, err)
	assert.Equal(t, []string{"select(transactions)/hardware", "reserve/", "ship/"}, spans(tr))
	assert.Equal(t, []string{"create_account", "activate", "reserve", "ship"}, l.get())
	data, err := json.Marshal(&tr)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"name":"select(transactions)","path":"purchase/saga/select(transactions)"`)
	assert.Contains(t, string(data), `"selected":"hardware"`)

	_, err = f.Run(t.Context(), map[string]any{"product": "gift"})
	assert.True(t, errors.IsStop(err), "%v", err)
	assert.ErrorContains(t, err, `select "transactions": no case "gift" and no default`)
	_, err = f.Run(t.Context(), map[string]any{"product": "broken"}, flow.WithTrace(&tr))
	var se *flow.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "select(transactions)", se.Step)
	assert.Equal(t, errors.KindFailed, tr.Steps[0].Outcome)
}

// TestSelectCasesAreCheckedWhenBuilt: every candidate list is built and
// checked in advance.
func TestSelectCasesAreCheckedWhenBuilt(t *testing.T) {
	needsTotal := flow.Func("bill", func(ctx context.Context, in struct{ Total float64 }) (struct{}, error) { return struct{}{}, nil })
	_, err := flow.New("purchase", flow.Select("tx", byProduct,
		flow.On("a", setStep("x", "x", 1)),
		flow.On("b", needsTotal),
	)).Build()
	assert.ErrorContains(t, err, `step "bill": key "total": needed but not provided`)
	_, err = flow.New("purchase", flow.Select("", nil, flow.On("a", setStep("x", "x", 1)))).Build()
	assert.ErrorContains(t, err, "Select: no name")
	assert.ErrorContains(t, err, "Select: nil function")
}

// counting is middleware that counts the steps it wraps per run.
func counting(n *atomic.Int64) flow.Middleware {
	return func(next flow.Handler) flow.Handler {
		return func(ctx context.Context, s *flow.StepInfo, c *fc.Context) error {
			n.Add(1)
			return next(ctx, s, c)
		}
	}
}

// TestUseSelected: middleware chosen per request, recorded in the trace.
func TestUseSelected(t *testing.T) {
	var audited, outer atomic.Int64
	f := flow.New("purchase", setStep("a", "a", 1), setStep("b", "b", 2)).
		Input(fc.Key[string]("product")).
		Use(counting(&outer)).
		UseSelected(func(ctx context.Context, c *fc.Context) (string, error) {
			if p, _ := c.Get("product"); p == "hardware" {
				return "audited", nil
			}
			return "plain", nil
		}, map[string][]flow.Middleware{"audited": {counting(&audited)}, "plain": nil}).
		MustBuild()
	var tr flow.Trace
	_, err := f.Run(t.Context(), map[string]any{"product": "hardware"}, flow.WithTrace(&tr))
	require.NoError(t, err)
	assert.Equal(t, int64(2), audited.Load())
	assert.Equal(t, "middlewares", tr.Steps[0].Name)
	assert.Equal(t, "audited", tr.Steps[0].Selected)
	_, err = f.Run(t.Context(), map[string]any{"product": "subscription"}, flow.WithTrace(&tr))
	require.NoError(t, err)
	assert.Equal(t, int64(2), audited.Load(), "the plain stack does not audit")
	assert.Equal(t, "plain", tr.Steps[0].Selected)
	assert.Equal(t, int64(4), outer.Load(), "Use applies to every run")

	bad := flow.New("p", setStep("a", "a", 1)).UseSelected(func(context.Context, *fc.Context) (string, error) { return "nope", nil },
		map[string][]flow.Middleware{"plain": nil}).MustBuild()
	_, err = bad.Run(t.Context(), nil)
	assert.ErrorContains(t, err, `flow "p": step "middlewares": no middleware stack "nope" (have [plain])`)

	_, err = flow.New("p", setStep("a", "a", 1)).UseSelected(nil, nil).UseSelected(nil, nil).Build()
	assert.ErrorContains(t, err, "UseSelected called more than once")
	_, err = flow.New("p", setStep("a", "a", 1)).UseSelected(byProduct, map[string][]flow.Middleware{"x": {nil}}).Build()
	assert.ErrorContains(t, err, `UseSelected: stack "x" has a nil middleware`)
}

// counted counts Init and Close.
type counted struct {
	inits, closes atomic.Int64
}

func (l *counted) Name() string                                  { return "notify" }
func (l *counted) Call(ctx context.Context, c *fc.Context) error { c.Set("notified", true); return nil }
func (l *counted) Init(ctx context.Context) error                { l.inits.Add(1); return nil }
func (l *counted) Close(ctx context.Context) error               { l.closes.Add(1); return nil }

// TestSameServiceInExclusiveCases: one service value may appear in cases
// of which only one runs, without Named; names stay unique per path.
func TestSameServiceInExclusiveCases(t *testing.T) {
	svc := &counted{}
	f, err := flow.New("ship", flow.Fork("method",
		flow.On("express", setStep("fast", "cost", 12), svc),
		flow.Default(svc),
	)).
		Input(fc.Key[string]("method")).Build()
	require.NoError(t, err)
	require.NoError(t, f.Init(t.Context()))
	assert.Equal(t, int64(1), svc.inits.Load(), "one Init per service value")
	var tr flow.Trace
	_, err = f.Run(t.Context(), map[string]any{"method": "express"}, flow.WithTrace(&tr))
	require.NoError(t, err)
	assert.Equal(t, "ship/fork(method)/express/notify", tr.Steps[1].Path)
	_, err = f.Run(t.Context(), map[string]any{"method": "standard"}, flow.WithTrace(&tr))
	require.NoError(t, err)
	assert.Equal(t, "ship/fork(method)/default/notify", tr.Steps[0].Path)
	require.NoError(t, f.Close(t.Context()))
	assert.Equal(t, int64(1), svc.closes.Load())

	// Candidates of a first are exclusive too.
	_, err = flow.New("ship", flow.First(flow.Guard("method == 'x'", svc), flow.Guard("true", setStep("o", "o", 1), svc))).
		Input(fc.Key[string]("method")).Build()
	require.NoError(t, err)

	// Not exclusive: a case and the steps after the fork both run.
	_, err = flow.New("ship", flow.Fork("method", flow.On("express", svc), flow.Default(setStep("s", "s", 1))), svc).
		Input(fc.Key[string]("method")).Build()
	assert.ErrorContains(t, err, `step "notify": duplicate step name (also at ship/fork(method)/express/notify)`)
	// Nor are two forks on the same key.
	_, err = flow.New("ship", flow.Fork("method", flow.On("a", svc), flow.Default(setStep("s", "s", 1))),
		flow.Fork("method", flow.On("b", svc), flow.Default(setStep("t", "t", 1)))).
		Input(fc.Key[string]("method")).Build()
	assert.ErrorContains(t, err, `duplicate step name`)
}

// TestFuncMapOutputDeclaresKeys: a map output's declared keys are known
// to the build checks and required at run time.
func TestFuncMapOutputDeclaresKeys(t *testing.T) {
	Total := fc.Key[float64]("total")
	var out map[string]any
	price := flow.Func("price", func(ctx context.Context, in struct{}) (map[string]any, error) { return out, nil },
		flow.Provides(Total, fc.Any("label")))
	use := flow.Func("use", func(ctx context.Context, in struct {
		Total float64
		Label string
	}) (struct{}, error) {
		return struct{}{}, nil
	})
	f, err := flow.New("p", price, use).Build()
	require.NoError(t, err)
	out = map[string]any{"total": 3.0, "label": "x", "extra": 1}
	c, err := f.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, 1, c.View()["extra"])
	out = map[string]any{"total": 3.0}
	_, err = f.Run(t.Context(), nil)
	assert.ErrorContains(t, err, `step "price": output key "label": declared with Provides but missing from the returned map`)
	out = map[string]any{"total": "3", "label": "x"}
	_, err = f.Run(t.Context(), nil)
	assert.ErrorContains(t, err, `output key "total": declared as float64, got string`)

	_, err = flow.New("p", flow.Func("s", func(ctx context.Context, in struct{}) (struct{ X int }, error) { return struct{ X int }{}, nil },
		flow.Provides(Total))).Build()
	assert.ErrorContains(t, err, "Provides declares the keys of a map[string]any output")
}

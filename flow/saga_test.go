package flow_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// undoLog records what steps did and which undos ran.
type undoLog struct{ sagaLog }

// cu is a step named name with an undo; the undo records the step's name
// and, under Each, the element it ran for.
func (l *undoLog) cu(name string) flow.Service {
	return flow.Compensate(l.do(name), l.undo(name))
}

func (l *undoLog) do(name string) flow.Service {
	return flow.Step(name, func(ctx context.Context, c *fc.Context) error { l.add(name); return nil })
}

func (l *undoLog) undo(name string) flow.CompensateFunc {
	return func(ctx context.Context, c *fc.Context, cause error) error {
		if item, ok := c.Get("item"); ok {
			l.add(fmt.Sprintf("undo %s:%v", name, item))
			return nil
		}
		l.add("undo " + name)
		return nil
	}
}

func (l *undoLog) undos() []string {
	return slices.DeleteFunc(l.get(), func(s string) bool { return len(s) < 5 || s[:5] != "undo " })
}

var boom = flow.Step("boom", func(ctx context.Context, c *fc.Context) error { return errors.New("boom") })

// compensator is a service that undoes itself (flow.Compensator).
type compensator struct {
	name string
	l    *undoLog
}

func (s compensator) Name() string { return s.name }
func (s compensator) Call(ctx context.Context, c *fc.Context) error {
	s.l.add(s.name)
	return nil
}
func (s compensator) Compensate(ctx context.Context, c *fc.Context, cause error) error {
	s.l.add("undo " + s.name)
	return nil
}

// TestSagaCompensatesAtAnyDepth: an undo anywhere under a saga runs once,
// in reverse completion order, when the saga fails.
func TestSagaCompensatesAtAnyDepth(t *testing.T) {
	pick := func(v string) func(context.Context, *fc.Context) (string, error) {
		return func(context.Context, *fc.Context) (string, error) { return v, nil }
	}
	retryOnce := func(l *undoLog, name string) flow.Service {
		n := 0
		return flow.Step(name, func(ctx context.Context, c *fc.Context) error {
			if n++; n == 1 {
				return errors.Retry(errors.New("flaky"))
			}
			l.add(name)
			return nil
		})
	}
	tests := []struct {
		name  string
		mid   func(l *undoLog) flow.Service
		input map[string]any
		want  []string
	}{
		{"when", func(l *undoLog) flow.Service { return flow.When("true", l.cu("b")) }, nil, []string{"undo b", "undo a"}},
		{"unless", func(l *undoLog) flow.Service { return flow.Unless("false", l.cu("b")) }, nil, []string{"undo b", "undo a"}},
		{"when func", func(l *undoLog) flow.Service {
			return flow.WhenFunc("always", func(context.Context, *fc.Context) bool { return true }, l.cu("b"))
		}, nil, []string{"undo b", "undo a"}},
		{"then", func(l *undoLog) flow.Service { return flow.Then(l.cu("b"), l.cu("c")) }, nil, []string{"undo c", "undo b", "undo a"}},
		{"fork", func(l *undoLog) flow.Service {
			return flow.Fork("k", flow.On("x", l.cu("b")), flow.Default(l.cu("other")))
		}, map[string]any{"k": "x"}, []string{"undo b", "undo a"}},
		{"select", func(l *undoLog) flow.Service {
			return flow.Select("tx", pick("y"), flow.On("x", l.cu("other")), flow.On("y", l.cu("b")))
		}, nil, []string{"undo b", "undo a"}},
		{"first", func(l *undoLog) flow.Service {
			return flow.First(flow.Guard("false", l.cu("other")), flow.Guard("true", l.cu("b")))
		}, nil, []string{"undo b", "undo a"}},
		{"each", func(l *undoLog) flow.Service { return flow.Each("items", l.cu("b")) },
			map[string]any{"items": []any{1, 2, 3}}, []string{"undo b:3", "undo b:2", "undo b:1", "undo a"}},
		{"all, one at a time", func(l *undoLog) flow.Service { return flow.All(l.cu("b"), l.cu("c")).Limit(1) }, nil,
			[]string{"undo c", "undo b", "undo a"}},
		{"nested flow with a saga", func(l *undoLog) flow.Service {
			return flow.New("sub", flow.Saga(l.cu("b"), l.cu("c"))).MustBuild()
		}, nil, []string{"undo c", "undo b", "undo a"}},
		{"nested flow with a compensator", func(l *undoLog) flow.Service {
			return flow.New("sub", compensator{"b", l}).MustBuild()
		}, nil, []string{"undo b", "undo a"}},
		{"nested saga", func(l *undoLog) flow.Service { return flow.Saga(l.cu("b"), flow.When("true", l.cu("c"))) }, nil,
			[]string{"undo c", "undo b", "undo a"}},
		{"named", func(l *undoLog) flow.Service {
			return flow.Then(flow.Named("b2", l.cu("b")), flow.Compensate(flow.Named("c", l.do("x")), l.undo("c")))
		}, nil, []string{"undo c", "undo b", "undo a"}},
		{"retry", func(l *undoLog) flow.Service {
			return flow.Retry(flow.Compensate(retryOnce(l, "b"), l.undo("b")), errors.Policy{MaxAttempts: 3, Initial: time.Microsecond})
		}, nil, []string{"undo b", "undo a"}},
		{"timeout", func(l *undoLog) flow.Service { return flow.Timeout(l.cu("b"), time.Hour) }, nil, []string{"undo b", "undo a"}},
		{"compensate of a combinator", func(l *undoLog) flow.Service {
			return flow.Compensate(flow.Then(l.do("b"), l.cu("c")), l.undo("b+c"))
		}, nil, []string{"undo b+c", "undo c", "undo a"}},
		{"compensate of a when that ran", func(l *undoLog) flow.Service {
			return flow.Compensate(flow.When("true", l.do("b")), l.undo("b"))
		}, nil, []string{"undo b", "undo a"}},
		{"compensate of a when that was skipped", func(l *undoLog) flow.Service {
			return flow.Compensate(flow.When("false", l.do("b")), l.undo("b"))
		}, nil, []string{"undo a"}},
		{"skipped when", func(l *undoLog) flow.Service { return flow.When("false", l.cu("b")) }, nil, []string{"undo a"}},
		{"skipped when func", func(l *undoLog) flow.Service {
			return flow.WhenFunc("never", func(context.Context, *fc.Context) bool { return false }, l.cu("b"))
		}, nil, []string{"undo a"}},
		{"empty each", func(l *undoLog) flow.Service { return flow.Compensate(flow.Each("items", l.do("b")), l.undo("all")) },
			map[string]any{"items": []any{}}, []string{"undo a"}},
		{"tap", func(l *undoLog) flow.Service { return flow.Tap(l.cu("b")) }, nil, []string{"undo a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &undoLog{}
			b := flow.New("order", flow.Saga(l.cu("a"), tt.mid(l), boom))
			if tt.input != nil {
				b.Input(fc.KeyInfo{Name: "k", Optional: true}, fc.KeyInfo{Name: "items", Optional: true})
			}
			f, err := b.Build()
			require.NoError(t, err)
			_, err = f.Run(t.Context(), tt.input)
			require.NoError(t, f.Wait(t.Context()))
			require.ErrorContains(t, err, "boom")
			assert.Equal(t, tt.want, l.undos())
		})
	}
}

// TestSagaAllBranchesCompensatedOnce: concurrent branches are undone once
// each, after the saga's earlier step is not, and a branch that failed
// keeps its earlier steps' undos (given the branch's own context).
func TestSagaAllBranchesCompensatedOnce(t *testing.T) {
	l := &undoLog{}
	branch := func(name string, fail bool) flow.Service {
		last := l.do(name + "2")
		if fail {
			last = flow.Step(name+"2", func(ctx context.Context, c *fc.Context) error { return errors.New("boom") })
		}
		return flow.Then(
			flow.Compensate(flow.Step(name, func(ctx context.Context, c *fc.Context) error { c.Set("mine", name); return nil }),
				func(ctx context.Context, c *fc.Context, cause error) error {
					l.add(fmt.Sprintf("undo %s saw %v", name, c.View()["mine"]))
					return nil
				}),
			last)
	}
	f := flow.New("order", flow.Saga(l.cu("a"), flow.All(branch("x", false), branch("y", true), branch("z", false)))).MustBuild()
	_, err := f.Run(t.Context(), nil)
	require.ErrorContains(t, err, "boom")
	got := l.undos()
	require.NotEmpty(t, got)
	assert.Equal(t, "undo a", got[len(got)-1], "the step before the branches is undone last")
	assert.Contains(t, got, "undo y saw y", "the failed branch's completed step, with its context")
	assert.Len(t, slices.Compact(slices.Sorted(slices.Values(got))), len(got), "each once")
}

func TestSagaNestedFailureCompensatesEachOnce(t *testing.T) {
	l := &undoLog{}
	f := flow.New("order", flow.Saga(l.cu("a"), flow.Saga(l.cu("b"), boom))).MustBuild()
	_, err := f.Run(t.Context(), nil)
	require.ErrorContains(t, err, "boom")
	assert.Equal(t, []string{"undo b", "undo a"}, l.undos())
}

func TestSagaSucceedingCompensatesNothing(t *testing.T) {
	l := &undoLog{}
	inner := flow.New("sub", flow.Saga(l.cu("b"))).MustBuild()
	f := flow.New("order", flow.Saga(l.cu("a"), flow.When("true", inner), l.cu("c"))).MustBuild()
	_, err := f.Run(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, l.undos())
	assert.Equal(t, []string{"a", "b", "c"}, l.get())
}

func TestCompensateOutsideSagaIsABuildError(t *testing.T) {
	l := &undoLog{}
	for name, steps := range map[string][]flow.Service{
		"top level":  {l.cu("a")},
		"in a when":  {flow.When("true", l.cu("a"))},
		"in a fork":  {flow.Fork("'x'", flow.On("x", l.cu("a")))},
		"after saga": {flow.Saga(l.do("s")), l.cu("a")},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := flow.New("order", steps...).Build()
			var be *flow.BuildError
			require.ErrorAs(t, err, &be)
			assert.Equal(t, "a", be.Step)
			assert.ErrorContains(t, err, `flow "order": step "a": compensate: no saga encloses this step`)
		})
	}
}

func TestSagaCompensateFailed(t *testing.T) {
	l := &undoLog{}
	failing := flow.Compensate(flow.Step("charge", func(ctx context.Context, c *fc.Context) error {
		l.add("charge")
		return errors.New("declined")
	}), l.undo("charge"))
	f := flow.New("order", flow.Saga(l.cu("a"), flow.When("true", failing)).CompensateFailed()).MustBuild()
	_, err := f.Run(t.Context(), nil)
	require.ErrorContains(t, err, "declined")
	assert.Equal(t, []string{"undo charge", "undo a"}, l.undos(), "the failing step first")

	l2 := &undoLog{}
	f = flow.New("order", flow.Saga(l2.cu("a"), flow.Compensate(flow.Step("charge", func(ctx context.Context, c *fc.Context) error {
		return errors.New("declined")
	}), l2.undo("charge")))).MustBuild()
	_, err = f.Run(t.Context(), nil)
	require.Error(t, err)
	assert.Equal(t, []string{"undo a"}, l2.undos(), "without the option the failing step is not undone")
}

func TestSagaFromSkipsAreNotCompensated(t *testing.T) {
	l := &undoLog{}
	f := flow.New("order", flow.Saga(l.cu("a"), flow.Compensate(flow.Then(l.do("b")), l.undo("b")), l.cu("c"), boom)).MustBuild()
	_, err := f.Run(t.Context(), nil, flow.From("c"))
	require.ErrorContains(t, err, "boom")
	assert.Equal(t, []string{"undo c"}, l.undos(), "a and b were skipped by From")
}

func TestSagaTraceRecordsCompensation(t *testing.T) {
	l := &undoLog{}
	f := flow.New("order", flow.Saga(l.cu("a"), flow.Compensate(flow.Step("b", func(ctx context.Context, c *fc.Context) error { return nil }),
		func(ctx context.Context, c *fc.Context, cause error) error { return errors.New("cannot undo") }), boom)).MustBuild()
	var tr flow.Trace
	_, err := f.Run(t.Context(), nil, flow.WithTrace(&tr))
	require.ErrorContains(t, err, "cannot undo")
	var names []string
	for _, s := range tr.Steps {
		names = append(names, s.Name+"="+s.Outcome.String())
	}
	assert.Equal(t, []string{"a=ok", "b=ok", "boom=failed", "compensate(b)=failed", "compensate(a)=ok"}, names)
	assert.Equal(t, "order/saga/b/compensate", tr.Steps[3].Path)
}

func TestWhenFunc(t *testing.T) {
	big := func(ctx context.Context, c *fc.Context) bool { v, _ := c.Get("total"); return v.(float64) > 100 }
	f := flow.New("w", flow.WhenFunc("big", big, setStep("flag", "flag", true))).Input(fc.Key[float64]("total")).MustBuild()
	var tr flow.Trace
	c, err := f.Run(t.Context(), map[string]any{"total": 5.0}, flow.WithTrace(&tr))
	require.NoError(t, err)
	assert.NotContains(t, c.View(), "flag")
	require.Len(t, tr.Steps, 1)
	assert.Equal(t, "when(big)", tr.Steps[0].Name)
	assert.Equal(t, errors.KindSkipped, tr.Steps[0].Outcome)
	c, err = f.Run(t.Context(), map[string]any{"total": 500.0})
	require.NoError(t, err)
	assert.Equal(t, true, c.View()["flag"])

	_, err = flow.New("w", flow.WhenFunc("", nil)).Build()
	assert.ErrorContains(t, err, "WhenFunc: no name")
	assert.ErrorContains(t, err, "WhenFunc: nil function")
	assert.ErrorContains(t, err, `step "when()": no steps`)

	// The steps inside are checked like When's: what they provide is not
	// known after it.
	_, err = flow.New("w", flow.WhenFunc("big", big, setStep("flag", "flag", true)),
		flow.Func("use", func(ctx context.Context, in struct{ Flag bool }) (struct{}, error) { return struct{}{}, nil })).Build()
	assert.ErrorContains(t, err, `step "use": key "flag": needed but not provided`)

	panicky := flow.New("w", flow.WhenFunc("p", func(context.Context, *fc.Context) bool { panic("bad predicate") }, setStep("x", "x", 1))).MustBuild()
	_, err = panicky.Run(t.Context(), nil)
	var se *flow.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "when(p)", se.Step)
	assert.ErrorContains(t, err, "bad predicate")
}

// TestSagaCompensateFailedCanceledBranch: with CompensateFailed, a branch
// canceled by another's failure while it ran is undone too.
func TestSagaCompensateFailedCanceledBranch(t *testing.T) {
	l := &undoLog{}
	started := make(chan struct{})
	slow := flow.Compensate(flow.Step("slow", func(ctx context.Context, c *fc.Context) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}), l.undo("slow"))
	failing := flow.Compensate(flow.Step("failing", func(ctx context.Context, c *fc.Context) error {
		<-started
		return errors.New("boom")
	}), l.undo("failing"))
	f := flow.New("order", flow.Saga(l.cu("a"), flow.All(slow, failing)).CompensateFailed()).MustBuild()
	_, err := f.Run(t.Context(), nil)
	require.ErrorContains(t, err, "boom")
	got := l.undos()
	require.Len(t, got, 3)
	assert.ElementsMatch(t, []string{"undo slow", "undo failing"}, got[:2])
	assert.Equal(t, "undo a", got[2])
}

// TestSagaUndoesResumedSteps: a durable run that ends with a Fatal (the
// processor failed; the run resumes later) does not compensate; the run
// that resumes it skips the steps completed, and when its saga then fails
// it undoes them once.
func TestSagaUndoesResumedSteps(t *testing.T) {
	l := &undoLog{}
	fatal := true
	f := flow.New("order", flow.Saga(l.cu("a"), flow.When("true", l.cu("b")),
		flow.Step("c", func(ctx context.Context, c *fc.Context) error {
			if fatal {
				return errors.Fatal(errors.New("database connection lost"))
			}
			return errors.Stop("declined")
		}))).MustBuild()
	j := newJournal()
	_, err := f.Run(t.Context(), nil, flow.WithJournal(j))
	require.True(t, errors.IsFatal(err), "%v", err)
	assert.Equal(t, []string{"a", "b"}, l.get(), "not compensated: the run resumes")

	fatal = false
	var tr flow.Trace
	_, err = f.Run(t.Context(), nil, flow.WithJournal(j), flow.WithTrace(&tr))
	require.True(t, errors.IsStop(err), "%v", err)
	assert.Equal(t, []string{"a", "b", "undo b", "undo a"}, l.get(), "a and b resumed, not run again, and undone once")
	var outcomes []string
	for _, s := range tr.Steps {
		outcomes = append(outcomes, s.Name+"="+s.Outcome.String())
	}
	assert.Equal(t, []string{"a=resumed", "b=resumed", "c=stop", "compensate(b)=ok", "compensate(a)=ok"}, outcomes)

	// Without a journal, a Fatal compensates: the message runs again from
	// the top.
	l2 := &undoLog{}
	fatal = true
	f = flow.New("order", flow.Saga(l2.cu("a"), flow.Step("c", func(ctx context.Context, c *fc.Context) error {
		return errors.Fatal(errors.New("database connection lost"))
	}))).MustBuild()
	_, err = f.Run(t.Context(), nil)
	require.Error(t, err)
	assert.Equal(t, []string{"a", "undo a"}, l2.get())
}

// parker parks a durable run until a signal.
type parker struct{ flow.Service }

func (p parker) Park(c *fc.Context) (flow.Wait, bool) { return flow.Wait{Signal: "approved"}, true }

// TestSagaDoesNotCompensateAParkedRun: a durable run that parks inside a
// saga waits; nothing is undone.
func TestSagaDoesNotCompensateAParkedRun(t *testing.T) {
	l := &undoLog{}
	f := flow.New("order", flow.Saga(l.cu("a"), parker{l.do("wait")})).MustBuild()
	_, err := f.Run(t.Context(), nil, flow.WithJournal(newJournal()))
	assert.Equal(t, errors.KindWaiting, errors.KindOf(err), "%v", err)
	assert.Equal(t, []string{"a"}, l.get())
}

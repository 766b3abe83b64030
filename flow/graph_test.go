package flow_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// graphStep is a step that does nothing: graphs only need its name and
// contract.
func graphStep(name string, opts ...flow.StepOption) flow.Service {
	return flow.Step(name, func(context.Context, *fc.Context) error { return nil }, opts...)
}

// graphOrderFlow has a step with a contract, a fork with cases and a
// default, a Then, a When and a nested flow.
func graphOrderFlow(t *testing.T) *flow.Flow {
	t.Helper()
	rate := fc.Key[float64]("rate")
	notify := flow.New("notify", graphStep("email"), graphStep("sms")).MustBuild()
	f, err := flow.New("order",
		graphStep("validate", flow.Needs(fc.Any("items")), flow.Provides(fc.Any("subtotal"))),
		flow.Fork("tier",
			flow.On("gold", graphStep("gold_discount", flow.Provides(rate))),
			flow.On("silver", graphStep("silver_discount", flow.Provides(rate))),
			flow.Default(graphStep("no_discount", flow.Provides(rate))),
		),
		flow.Then(
			graphStep("total",
				flow.Needs(fc.Any("subtotal"), rate, fc.Key[string]("coupon").Optional()),
				flow.Provides(fc.Key[float64]("total"))),
			graphStep("tax"),
		),
		flow.When("total > 100", graphStep("free_shipping")),
		notify,
	).Input(fc.Any("items"), fc.Key[string]("tier")).Build()
	require.NoError(t, err)
	return f
}

// graphKinds is a hand-made graph with every kind of node, shaped as the
// combinators shape theirs, plus a kind the renderers do not know and two
// nodes whose paths clash.
func graphKinds() *flow.Node {
	step := func(path string) *flow.Node {
		return &flow.Node{Kind: flow.KindStep, Name: path[strings.LastIndex(path, "/")+1:], Path: path}
	}
	return &flow.Node{Kind: flow.KindFlow, Name: "kinds", Path: "kinds", Children: []*flow.Node{
		step("kinds/a"),
		{Kind: flow.KindTap, Name: "tap(audit)", Path: "kinds/tap(audit)", Children: []*flow.Node{
			step("kinds/tap(audit)/audit"),
		}},
		{Kind: flow.KindAll, Name: "all", Path: "kinds/all", Children: []*flow.Node{
			step("kinds/all/p1"),
			{Kind: flow.KindThen, Name: "then", Path: "kinds/all", Children: []*flow.Node{
				step("kinds/all/p2"), step("kinds/all/p3"),
			}},
		}},
		{Kind: flow.KindEach, Name: "each(items)", Path: "kinds/each(items)", Label: "items", Children: []*flow.Node{
			step("kinds/each(items)/e1"),
		}},
		{Kind: flow.KindUntil, Name: "until(done)", Path: "kinds/until(done)", Label: "done", Children: []*flow.Node{
			step("kinds/until(done)/u1"),
		}},
		{Kind: flow.KindFirst, Name: "first", Path: "kinds/first", Children: []*flow.Node{
			{Kind: flow.KindGuard, Name: "guard(x > 1)", Path: "kinds/first/guard(x > 1)", Label: "x > 1", Children: []*flow.Node{
				step("kinds/first/guard(x > 1)/big"),
			}},
			{Kind: flow.KindGuard, Name: "guard(true)", Path: "kinds/first/guard(true)", Label: "true", Children: []*flow.Node{
				step("kinds/first/guard(true)/small"),
			}},
		}},
		{Kind: flow.KindSaga, Name: "saga", Path: "kinds/saga", Children: []*flow.Node{
			step("kinds/saga/reserve"),
			{Kind: flow.KindFlow, Name: "inner", Path: "kinds/saga/inner", Children: []*flow.Node{
				step("kinds/saga/inner/charge"),
			}},
		}},
		{Kind: "custom", Name: "custom", Path: "kinds/custom", Children: []*flow.Node{
			step("kinds/custom/c1"),
		}},
		{Kind: "marker", Path: "kinds/a"},
	}}
}

func TestGraphDOT(t *testing.T) {
	want := `digraph "order" {
	node [shape=box, fontname="Helvetica"];
	edge [fontname="Helvetica", fontsize=10];
	flow_start [label="order", shape=oval];
	n_order_validate [label=<validate<BR/><FONT POINT-SIZE="10">needs: items; provides: subtotal</FONT>>];
	n_order_fork_tier [label="tier", shape=diamond];
	n_order_fork_tier_gold_gold_discount [label=<gold_discount<BR/><FONT POINT-SIZE="10">provides: rate</FONT>>];
	n_order_fork_tier_silver_silver_discount [label=<silver_discount<BR/><FONT POINT-SIZE="10">provides: rate</FONT>>];
	n_order_fork_tier_default_no_discount [label=<no_discount<BR/><FONT POINT-SIZE="10">provides: rate</FONT>>];
	n_order_total [label=<total<BR/><FONT POINT-SIZE="10">needs: subtotal, rate, coupon?; provides: total</FONT>>];
	n_order_tax [label="tax"];
	n_order_when_total_100 [label="total > 100", shape=diamond];
	n_order_when_total_100_free_shipping [label="free_shipping"];
	subgraph cluster_n_order_notify {
		label="notify";
		n_order_notify_email [label="email"];
		n_order_notify_sms [label="sms"];
	}
	flow_end [label="end", shape=oval];
	flow_start -> n_order_validate;
	n_order_validate -> n_order_fork_tier;
	n_order_fork_tier -> n_order_fork_tier_gold_gold_discount [label="gold"];
	n_order_fork_tier -> n_order_fork_tier_silver_silver_discount [label="silver"];
	n_order_fork_tier -> n_order_fork_tier_default_no_discount [label="default"];
	n_order_fork_tier_gold_gold_discount -> n_order_total;
	n_order_fork_tier_silver_silver_discount -> n_order_total;
	n_order_fork_tier_default_no_discount -> n_order_total;
	n_order_total -> n_order_tax;
	n_order_tax -> n_order_when_total_100;
	n_order_when_total_100 -> n_order_when_total_100_free_shipping [label="yes"];
	n_order_when_total_100_free_shipping -> n_order_notify_email;
	n_order_when_total_100 -> n_order_notify_email [label="no"];
	n_order_notify_email -> n_order_notify_sms;
	n_order_notify_sms -> flow_end;
}
`
	assert.Equal(t, want, graphOrderFlow(t).Graph().DOT())
}

func TestGraphMermaid(t *testing.T) {
	want := `flowchart TD
	flow_start(["order"])
	n_order_validate["validate<br><small>needs: items; provides: subtotal</small>"]
	n_order_fork_tier{"tier"}
	n_order_fork_tier_gold_gold_discount["gold_discount<br><small>provides: rate</small>"]
	n_order_fork_tier_silver_silver_discount["silver_discount<br><small>provides: rate</small>"]
	n_order_fork_tier_default_no_discount["no_discount<br><small>provides: rate</small>"]
	n_order_total["total<br><small>needs: subtotal, rate, coupon?; provides: total</small>"]
	n_order_tax["tax"]
	n_order_when_total_100{"total #gt; 100"}
	n_order_when_total_100_free_shipping["free_shipping"]
	subgraph n_order_notify ["notify"]
		n_order_notify_email["email"]
		n_order_notify_sms["sms"]
	end
	flow_end(["end"])
	flow_start --> n_order_validate
	n_order_validate --> n_order_fork_tier
	n_order_fork_tier -->|"gold"| n_order_fork_tier_gold_gold_discount
	n_order_fork_tier -->|"silver"| n_order_fork_tier_silver_silver_discount
	n_order_fork_tier -->|"default"| n_order_fork_tier_default_no_discount
	n_order_fork_tier_gold_gold_discount --> n_order_total
	n_order_fork_tier_silver_silver_discount --> n_order_total
	n_order_fork_tier_default_no_discount --> n_order_total
	n_order_total --> n_order_tax
	n_order_tax --> n_order_when_total_100
	n_order_when_total_100 -->|"yes"| n_order_when_total_100_free_shipping
	n_order_when_total_100_free_shipping --> n_order_notify_email
	n_order_when_total_100 -->|"no"| n_order_notify_email
	n_order_notify_email --> n_order_notify_sms
	n_order_notify_sms --> flow_end
`
	assert.Equal(t, want, graphOrderFlow(t).Graph().Mermaid())
}

func TestGraphEveryKind(t *testing.T) {
	// all fans out and joins; tap is a dashed edge leading nowhere; each
	// is a box before its steps; until loops back on "no"; first labels
	// each guard's edge; saga, a nested flow and an unknown kind are
	// clusters; an unknown kind without children is a box; clashing
	// paths get numbered IDs.
	want := `flowchart TD
	flow_start(["kinds"])
	n_kinds_a["a"]
	n_kinds_tap_audit_audit["audit"]
	n_kinds_all("all")
	n_kinds_all_p1["p1"]
	n_kinds_all_p2["p2"]
	n_kinds_all_p3["p3"]
	n_kinds_each_items("each items")
	n_kinds_each_items_e1["e1"]
	n_kinds_until_done_u1["u1"]
	n_kinds_until_done{"done"}
	n_kinds_first{"first"}
	n_kinds_first_guard_x_1_big["big"]
	n_kinds_first_guard_true_small["small"]
	subgraph n_kinds_saga ["saga"]
		n_kinds_saga_reserve["reserve"]
		subgraph n_kinds_saga_inner ["inner"]
			n_kinds_saga_inner_charge["charge"]
		end
	end
	subgraph n_kinds_custom ["custom"]
		n_kinds_custom_c1["c1"]
	end
	n_kinds_a_2["marker"]
	flow_end(["end"])
	flow_start --> n_kinds_a
	n_kinds_a -.-> n_kinds_tap_audit_audit
	n_kinds_a --> n_kinds_all
	n_kinds_all --> n_kinds_all_p1
	n_kinds_all --> n_kinds_all_p2
	n_kinds_all_p2 --> n_kinds_all_p3
	n_kinds_all_p1 --> n_kinds_each_items
	n_kinds_all_p3 --> n_kinds_each_items
	n_kinds_each_items --> n_kinds_each_items_e1
	n_kinds_each_items_e1 --> n_kinds_until_done_u1
	n_kinds_until_done_u1 --> n_kinds_until_done
	n_kinds_until_done -->|"no"| n_kinds_until_done_u1
	n_kinds_until_done -->|"yes"| n_kinds_first
	n_kinds_first -->|"x #gt; 1"| n_kinds_first_guard_x_1_big
	n_kinds_first -->|"true"| n_kinds_first_guard_true_small
	n_kinds_first_guard_x_1_big --> n_kinds_saga_reserve
	n_kinds_first_guard_true_small --> n_kinds_saga_reserve
	n_kinds_saga_reserve --> n_kinds_saga_inner_charge
	n_kinds_saga_inner_charge --> n_kinds_custom_c1
	n_kinds_custom_c1 --> n_kinds_a_2
	n_kinds_a_2 --> flow_end
`
	assert.Equal(t, want, graphKinds().Mermaid())

	dot := graphKinds().DOT()
	for _, line := range []string{
		"\tn_kinds_a -> n_kinds_tap_audit_audit [style=dashed];\n",
		"\tn_kinds_all [label=\"all\", style=rounded];\n",
		"\tn_kinds_until_done -> n_kinds_until_done_u1 [label=\"no\"];\n",
		"\tsubgraph cluster_n_kinds_saga {\n\t\tlabel=\"saga\";\n",
		"\t\tsubgraph cluster_n_kinds_saga_inner {\n\t\t\tlabel=\"inner\";\n",
		"\tn_kinds_a_2 [label=\"marker\"];\n",
	} {
		assert.Contains(t, dot, line)
	}
}

// graphWeird has labels with quotes, backslashes, line breaks and
// characters that mean something in HTML or Mermaid.
func graphWeird() *flow.Node {
	return &flow.Node{Kind: flow.KindFlow, Name: `say "hi" \ bye`, Path: "p", Children: []*flow.Node{
		{Kind: flow.KindWhen, Name: "when", Path: "p/when", Label: "note == \"a\\b\"\nor true", Children: []*flow.Node{
			{Kind: flow.KindStep, Name: "x<y>&z #1", Path: "p/when/x", Needs: []fc.KeyInfo{{Name: `k"1`}}},
		}},
		{Kind: flow.KindFork, Name: "fork", Path: "p/fork", Label: "`tier`", Children: []*flow.Node{
			{Kind: flow.KindCase, Path: "p/fork/a", Label: "a\r\nb\\", Children: []*flow.Node{
				{Kind: flow.KindStep, Name: "s", Path: "p/fork/a/s"},
			}},
		}},
	}}
}

func TestGraphEscapesLabels(t *testing.T) {
	dot := graphWeird().DOT()
	for _, line := range []string{
		`digraph "say \"hi\" \\ bye" {`,
		`flow_start [label="say \"hi\" \\ bye", shape=oval];`,
		`n_p_when [label="note == \"a\\b\"\nor true", shape=diamond];`,
		`n_p_when_x [label=<x&lt;y&gt;&amp;z #1<BR/><FONT POINT-SIZE="10">needs: k&quot;1</FONT>>];`,
		"n_p_fork [label=\"`tier`\", shape=diamond];",
		`n_p_fork -> n_p_fork_a_s [label="a\nb\\"];`,
	} {
		assert.Contains(t, dot, line+"\n")
	}
	for _, line := range strings.Split(strings.TrimSuffix(dot, "\n"), "\n") {
		assert.Regexp(t, `[{};]$`, line, "a label's line break must be escaped, not written")
	}

	mm := graphWeird().Mermaid()
	for _, line := range []string{
		`flow_start(["say #quot;hi#quot; \ bye"])`,
		`n_p_when{"note == #quot;a\b#quot;<br>or true"}`,
		`n_p_when_x["x#lt;y#gt;#amp;z #35;1<br><small>needs: k#quot;1</small>"]`,
		`n_p_fork{"#96;tier#96;"}`,
		`n_p_fork -->|"a<br>b\"| n_p_fork_a_s`,
	} {
		assert.Contains(t, mm, "\t"+line+"\n")
	}
}

func TestGraphIsDeterministic(t *testing.T) {
	a, b := graphOrderFlow(t).Graph(), graphOrderFlow(t).Graph()
	assert.Equal(t, a.DOT(), b.DOT())
	assert.Equal(t, a.Mermaid(), b.Mermaid())
	assert.Equal(t, a.DOT(), a.DOT())
}

func TestGraphDOTRendersWithGraphviz(t *testing.T) {
	dot, err := exec.LookPath("dot")
	if err != nil {
		t.Skip("Graphviz dot is not installed")
	}
	for _, n := range []*flow.Node{graphOrderFlow(t).Graph(), graphKinds(), graphWeird()} {
		t.Run(n.Path, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "graph.dot")
			require.NoError(t, os.WriteFile(file, []byte(n.DOT()), 0o600))
			var stderr strings.Builder
			cmd := exec.CommandContext(t.Context(), dot, "-Tsvg", file)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, "dot: %s", stderr.String())
			assert.Empty(t, stderr.String(), "dot warnings")
			assert.Contains(t, string(out), "<svg")
		})
	}
}

func ExampleNode_Mermaid() {
	noop := func(context.Context, *fc.Context) error { return nil }
	f := flow.New("checkout",
		flow.Step("validate", noop),
		flow.Fork("tier",
			flow.On("gold", flow.Step("discount", noop)),
			flow.Default(flow.Step("full_price", noop)),
		),
	).Input(fc.Key[string]("tier")).MustBuild()

	fmt.Print(f.Graph().Mermaid())
	// Output:
	// flowchart TD
	// 	flow_start(["checkout"])
	// 	n_checkout_validate["validate"]
	// 	n_checkout_fork_tier{"tier"}
	// 	n_checkout_fork_tier_gold_discount["discount"]
	// 	n_checkout_fork_tier_default_full_price["full_price"]
	// 	flow_end(["end"])
	// 	flow_start --> n_checkout_validate
	// 	n_checkout_validate --> n_checkout_fork_tier
	// 	n_checkout_fork_tier -->|"gold"| n_checkout_fork_tier_gold_discount
	// 	n_checkout_fork_tier -->|"default"| n_checkout_fork_tier_default_full_price
	// 	n_checkout_fork_tier_gold_discount --> flow_end
	// 	n_checkout_fork_tier_default_full_price --> flow_end
}

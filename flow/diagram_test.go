package flow_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// TestDiagramMatchesMermaid: the diagram holds the nodes and edges the
// Mermaid drawing renders, one line each.
func TestDiagramMatchesMermaid(t *testing.T) {
	for _, n := range []*flow.Node{graphOrderFlow(t).Graph(), graphKinds(), graphWeird()} {
		d := n.Diagram()
		mm := n.Mermaid()
		assert.Equal(t, "flow_start", d.Nodes[0].ID)
		assert.Equal(t, "flow_end", d.Nodes[len(d.Nodes)-1].ID)
		ids := map[string]bool{}
		for _, x := range d.Nodes {
			assert.False(t, ids[x.ID], "duplicate id %s", x.ID)
			ids[x.ID] = true
			assert.Contains(t, []string{"box", "rounded", "diamond", "terminal"}, x.Shape)
			assert.Contains(t, mm, x.ID)
		}
		arrows := strings.Count(mm, "-->") + strings.Count(mm, "-.->")
		assert.Equal(t, arrows, len(d.Edges))
		for _, e := range d.Edges {
			assert.True(t, ids[e.From] && ids[e.To], "edge %v names unknown nodes", e)
		}
	}
	assert.Empty(t, (*flow.Node)(nil).Diagram().Nodes)
}

func ExampleNode_Diagram() {
	noop := func(context.Context, *fc.Context) error { return nil }
	f := flow.New("checkout",
		flow.Step("validate", noop),
		flow.Fork("tier",
			flow.On("gold", flow.Step("discount", noop)),
			flow.Default(flow.Step("full_price", noop)),
		),
	).Input(fc.Key[string]("tier")).MustBuild()

	d := f.Graph().Diagram()
	for _, n := range d.Nodes {
		fmt.Println(n.ID, n.Shape, n.Label)
	}
	for _, e := range d.Edges {
		fmt.Println(strings.TrimSpace(e.From + " -> " + e.To + " " + e.Label))
	}
	// Output:
	// flow_start terminal checkout
	// n_checkout_validate box validate
	// n_checkout_fork_tier diamond tier
	// n_checkout_fork_tier_gold_discount box discount
	// n_checkout_fork_tier_default_full_price box full_price
	// flow_end terminal end
	// flow_start -> n_checkout_validate
	// n_checkout_validate -> n_checkout_fork_tier
	// n_checkout_fork_tier -> n_checkout_fork_tier_gold_discount gold
	// n_checkout_fork_tier -> n_checkout_fork_tier_default_full_price default
	// n_checkout_fork_tier_gold_discount -> flow_end
	// n_checkout_fork_tier_default_full_price -> flow_end
}

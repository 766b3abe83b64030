package console_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/console"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

func noop(context.Context, *fc.Context) error { return nil }

// overlaps reports two nodes of a layout whose boxes intersect.
func overlaps(l console.Layout) string {
	for i, a := range l.Nodes {
		for _, b := range l.Nodes[i+1:] {
			if a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H {
				return a.ID + " and " + b.ID
			}
		}
	}
	return ""
}

// TestLayout50Steps: a flow of 50 steps is a column of 52 layers (start,
// the steps, end), nothing overlaps, every label is whole, and the
// drawing is as narrow as its widest node.
func TestLayout50Steps(t *testing.T) {
	var steps []flow.Service
	for i := range 50 {
		steps = append(steps, flow.Step(fmt.Sprintf("step_%02d_normalise_payload", i), noop))
	}
	f := flow.New("long", steps...).MustBuild()
	l := console.LayoutDiagram(f.Name(), f.Graph().Diagram())
	require.Len(t, l.Nodes, 52)
	for i, n := range l.Nodes {
		assert.Equal(t, i, n.Layer)
		assert.Less(t, n.X+n.W, l.Width)
		assert.Less(t, n.Y+n.H, l.Height)
	}
	assert.Empty(t, overlaps(l))
	assert.Less(t, l.Width, 400, "one column")
	svg := l.SVG()
	for i := range 50 {
		assert.Contains(t, svg, fmt.Sprintf(">step_%02d_normalise_payload</text>", i))
	}
}

// TestLayoutBranchesAndLoops: a fork's cases share a layer side by side;
// an until's loop is a back edge; labels are escaped.
func TestLayoutBranchesAndLoops(t *testing.T) {
	f := flow.New("mixed",
		flow.Step("a<b>", noop),
		flow.Fork("tier",
			flow.On("gold", flow.Step("gold_discount", noop)),
			flow.On("silver", flow.Step("silver_discount", noop)),
			flow.Default(flow.Step("full_price", noop)),
		),
		flow.Until("done == true", flow.Step("poll", func(_ context.Context, c *fc.Context) error { c.Set("done", true); return nil })),
		flow.All(flow.Step("mail", noop), flow.Step("sms", noop)),
	).Input(fc.Key[string]("tier"), fc.Key[bool]("done")).MustBuild()
	l := console.LayoutDiagram(f.Name(), f.Graph().Diagram())
	assert.Empty(t, overlaps(l))
	layer := map[string]int{}
	for _, n := range l.Nodes {
		layer[n.Label] = n.Layer
	}
	assert.Equal(t, layer["gold_discount"], layer["silver_discount"])
	assert.Equal(t, layer["gold_discount"], layer["full_price"])
	assert.Equal(t, layer["mail"], layer["sms"])
	assert.Less(t, layer["poll"], layer["done == true"])
	back := 0
	for _, e := range l.Edges {
		if e.Back {
			back++
			assert.Equal(t, "no", e.Label, "the loop goes back on no")
		}
	}
	assert.Equal(t, 1, back)
	svg := l.SVG()
	assert.Contains(t, svg, "a&lt;b&gt;")
	assert.NotContains(t, svg, "<b>")
	assert.Equal(t, strings.Count(svg, "<g class=\"node "), len(l.Nodes))
}

package flow

// Diagram is the drawing of a flow as data: the nodes and edges that
// [Node.DOT] and [Node.Mermaid] render, for a tool that lays the graph
// out itself (a web page drawing SVG). Get it with
//
//	f.Graph().Diagram()
type Diagram struct {
	// Nodes are the drawing's nodes in drawing order: the start node
	// first (ID flow_start, labelled with the flow's name), the end node
	// (flow_end) last.
	Nodes []DiagramNode `json:"nodes"`
	// Edges connect nodes by ID, in drawing order.
	Edges []DiagramEdge `json:"edges"`
}

// DiagramNode is one node of a [Diagram].
type DiagramNode struct {
	// ID is the node's ID, as in [Node.DOT]: unique, stable across builds
	// of the same flow.
	ID string `json:"id"`
	// Label is what the node shows: a step's name, a fork's key, a
	// condition.
	Label string `json:"label"`
	// Detail is a second, smaller line: a step's contract ("needs: a;
	// provides: b"), empty when none.
	Detail string `json:"detail,omitempty"`
	// Shape is "box" (a step), "rounded" (all, each), "diamond" (a fork or
	// a condition) or "terminal" (start and end).
	Shape string `json:"shape"`
	// Group names the clusters the node is drawn in (a saga, a nested
	// flow), outermost first, joined with " / "; empty at the top level.
	Group string `json:"group,omitempty"`
}

// DiagramEdge is one edge of a [Diagram].
type DiagramEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Label is a fork's case value, "yes"/"no" of a condition; empty when
	// none.
	Label string `json:"label,omitempty"`
	// Dashed marks the edge to a tapped step (it runs beside the flow).
	Dashed bool `json:"dashed,omitempty"`
}

// Diagram returns the drawing of the flow structure rooted at n as data
// (see [Diagram]); a nil n gives an empty diagram.
func (n *Node) Diagram() Diagram {
	g := newDrawing(n)
	d := Diagram{Nodes: []DiagramNode{}, Edges: []DiagramEdge{}}
	shapes := [...]string{shapeBox: "box", shapeRounded: "rounded", shapeDiamond: "diamond", shapeTerm: "terminal"}
	var walk func(c *gCluster, group string)
	walk = func(c *gCluster, group string) {
		for _, it := range c.items {
			switch {
			case it.node != nil:
				d.Nodes = append(d.Nodes, DiagramNode{ID: it.node.id, Label: it.node.label, Detail: it.node.small,
					Shape: shapes[it.node.shape], Group: group})
			case it.cluster != nil:
				inner := it.cluster.label
				if group != "" {
					inner = group + " / " + inner
				}
				walk(it.cluster, inner)
			}
		}
	}
	walk(g.root, "")
	for _, e := range g.edges {
		d.Edges = append(d.Edges, DiagramEdge{From: e.from, To: e.to, Label: e.label, Dashed: e.dashed})
	}
	return d
}

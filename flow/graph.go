package flow

import (
	"strconv"
	"strings"

	fc "github.com/svcflow/svcflow/context"
)

// DOT renders the flow structure rooted at n as a Graphviz digraph, ready
// for `dot -Tsvg`. Render a built flow with
//
//	f.Graph().DOT()
//
// The drawing reads top to bottom from a start node labelled with the flow's
// name to an end node:
//   - steps are boxes labelled with their name and, in a smaller second
//     line, the keys of their contract (needs, provides and removes);
//   - a sequence (a flow, [Then], the steps of a case) is a chain of edges;
//   - [Fork] is a diamond labelled with its key, with an edge labelled with
//     each case's value (or "default") to the case's first step; the ends
//     of all cases join the next step;
//   - [When], [Unless] and a guard outside first are a diamond labelled with
//     the condition, whose "yes" and "no" edges lead into the steps or past
//     them; until is the same diamond after its steps, its "no" edge
//     looping back to the first of them; first is a diamond with an edge
//     labelled with each guard's condition;
//   - all is a rounded box "all" fanning out to its children, which run
//     in parallel; their ends join the next step. each is a rounded box
//     "each <key>" followed by the steps it runs per element;
//   - tap is a dashed edge to its step, which leads nowhere: the flow goes
//     on beside it;
//   - [Divert] is a diamond labelled with the condition whose "yes" edge
//     leads into its steps and from their end to the end of the flow
//     (of the nested flow's cluster, for a divert inside one); its "no"
//     edge goes on to the next step;
//   - a step under [Passthrough], [StoreInputAs] or [StoreOutputAs] adds
//     the options to its second line ("passthrough, store_output_as:
//     lookup"); a combinator under them is a cluster named so;
//   - saga, a flow node below the root, a step node with children, and any
//     kind this function does not know are a cluster labelled with the
//     node's name, holding its children in sequence (a kind with no
//     children is drawn as a box). A flow nested in another is one step
//     to it, so its graph node is a plain step: draw the nested flow's own
//     Graph to see inside it.
//
// Node IDs are "n_" followed by the node's Path with every run of
// characters other than ASCII letters and digits made one underscore
// (order/fork(tier)/gold/discount is n_order_fork_tier_gold_discount); an
// ID already taken gets a suffix _2, _3, ... in drawing order. So IDs are
// unique, and stable across builds of the same flow. The start and end
// nodes are flow_start and flow_end. The output is deterministic.
func (n *Node) DOT() string { return newDrawing(n).dot() }

// Mermaid renders the flow structure rooted at n as a Mermaid
// `flowchart TD`, drawn as [Node.DOT] draws it: diamonds for forks and
// conditions, rounded boxes for all and each, dotted links for taps and
// subgraphs for sagas and nested flows. Render a built flow with
//
//	f.Graph().Mermaid()
//
// Labels are quoted, with `"` written as #quot; and line breaks as <br>.
// The output is deterministic.
func (n *Node) Mermaid() string { return newDrawing(n).mermaid() }

// ---- the drawing, independent of the output syntax ----

type gShape int

const (
	shapeBox     gShape = iota // a step
	shapeRounded               // a combinator that fans out (all, each)
	shapeDiamond               // a decision (fork, condition)
	shapeTerm                  // start and end
)

type gNode struct {
	id    string
	label string
	small string // a second, smaller line ("" for none)
	shape gShape
}

type gEdge struct {
	from, to string
	label    string
	dashed   bool
}

// gCluster is a subgraph; the root cluster is the graph itself.
type gCluster struct {
	id    string
	label string
	items []gItem
}

// gItem is one entry of a cluster, in order: a node or a cluster.
type gItem struct {
	node    *gNode
	cluster *gCluster
}

// gPending is an edge waiting for its head: it leaves node id, carrying
// label, towards whatever is drawn next.
type gPending struct {
	id    string
	label string
}

type drawing struct {
	name  string
	root  *gCluster
	stack []*gCluster
	edges []gEdge
	ids   map[string]bool
	holes int
	exits []gPending // the ends of diverts: edges to the end of their flow
}

func newDrawing(n *Node) *drawing {
	g := &drawing{root: &gCluster{}, ids: map[string]bool{}}
	g.stack = []*gCluster{g.root}
	if n == nil {
		return g
	}
	g.name = n.Name
	start := g.add("flow_start", n.Name, "", shapeTerm)
	var out []gPending
	if n.Kind == KindFlow {
		out = g.seq(n.Children, []gPending{{id: start}})
	} else {
		out = g.draw(n, []gPending{{id: start}})
	}
	end := g.add("flow_end", "end", "", shapeTerm)
	g.connect(append(out, g.exits...), end, false)
	return g
}

// id returns a unique node ID derived from a path: "n_" followed by the
// path's ASCII letters and digits, any run of other characters becoming
// one underscore. A clash (two paths that sanitize alike, or a sequence
// sharing its parent's path) gets a numeric suffix, so IDs stay stable as
// long as the flow does.
func (g *drawing) id(path string) string {
	var b strings.Builder
	b.WriteString("n")
	sep := true
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			if sep {
				b.WriteByte('_')
				sep = false
			}
			b.WriteByte(c)
			continue
		}
		sep = true
	}
	base := b.String()
	id := base
	for i := 2; g.ids[id]; i++ {
		id = base + "_" + strconv.Itoa(i)
	}
	g.ids[id] = true
	return id
}

// add adds a node to the current cluster. Fixed IDs (start, end) do not
// start with "n_", so they never meet an ID derived from a path.
func (g *drawing) add(id, label, small string, s gShape) string {
	c := g.stack[len(g.stack)-1]
	c.items = append(c.items, gItem{node: &gNode{id: id, label: label, small: small, shape: s}})
	return id
}

func (g *drawing) node(n *Node, label, small string, s gShape) string {
	return g.add(g.id(n.Path), label, small, s)
}

func (g *drawing) connect(in []gPending, to string, dashed bool) {
	for _, e := range in {
		g.edges = append(g.edges, gEdge{from: e.id, to: to, label: e.label, dashed: dashed})
	}
}

// seq draws nodes one after the other; an empty sequence passes its
// pending edges through unchanged.
func (g *drawing) seq(nodes []*Node, in []gPending) []gPending {
	for _, c := range nodes {
		if c != nil {
			in = g.draw(c, in)
		}
	}
	return in
}

// branch draws nodes in sequence as a branch entered later: it returns
// the edges that enter the branch (their From to be filled in by the
// caller, see attach), the branch's exits, and the placeholder standing
// for the branch's entry among those exits (when the branch is empty or
// only taps, the entry passes straight through to its exits).
func (g *drawing) branch(nodes []*Node) (entry []gEdge, out []gPending, hole string) {
	g.holes++
	hole = "\x00" + strconv.Itoa(g.holes) // never a node ID
	mark := len(g.edges)
	out = g.seq(nodes, []gPending{{id: hole}})
	kept := make([]gEdge, 0, len(g.edges))
	for i, e := range g.edges {
		if i >= mark && e.from == hole {
			entry = append(entry, e)
		} else {
			kept = append(kept, e)
		}
	}
	g.edges = kept
	return entry, out, hole
}

// attach draws the edges entering a branch from each pending edge of in.
func (g *drawing) attach(in []gPending, entry []gEdge, dashed bool) {
	for _, e := range entry {
		for _, x := range in {
			g.edges = append(g.edges, gEdge{from: x.id, to: e.to, label: x.label, dashed: dashed || e.dashed})
		}
	}
}

// fillHole replaces the placeholder hole among out by the pending edges in.
func fillHole(out []gPending, hole string, in []gPending) []gPending {
	var res []gPending
	for _, x := range out {
		if x.id == hole {
			res = append(res, in...)
		} else {
			res = append(res, x)
		}
	}
	return res
}

// draw draws n after the pending edges in and returns its own.
func (g *drawing) draw(n *Node, in []gPending) []gPending {
	switch n.Kind {
	case KindStep:
		if len(n.Children) > 0 {
			return g.cluster(n, in)
		}
		small := graphContract(n)
		if n.Label != "" { // passthrough, store_input_as, store_output_as
			small = strings.TrimPrefix(small+"; "+n.Label, "; ")
		}
		return g.box(n, n.Name, small, shapeBox, in)
	case KindDivert:
		// A condition whose "yes" edge runs the steps, which lead to the
		// end of the flow; "no" goes on.
		id := g.box(n, n.Label, "", shapeDiamond, in)[0].id
		g.exits = append(g.exits, g.seq(n.Children, []gPending{{id: id, label: "yes"}})...)
		return []gPending{{id: id, label: "no"}}
	case KindThen, KindCase:
		return g.seq(n.Children, in)
	case KindFork:
		return g.branches(n, n.Label, in)
	case KindFirst:
		return g.branches(n, "first", in)
	case KindWhen, KindGuard:
		return g.cond(n, in, "yes", "no")
	case KindUnless:
		return g.cond(n, in, "no", "yes")
	case KindUntil:
		// The steps, then the condition: "no" loops back to the steps.
		entry, out, hole := g.branch(n.Children)
		g.attach(in, entry, false)
		id := g.node(n, n.Label, "", shapeDiamond)
		g.connect(fillHole(out, hole, in), id, false)
		g.attach([]gPending{{id: id, label: "no"}}, entry, false)
		return []gPending{{id: id, label: "yes"}}
	case KindEach:
		// A box naming the iterated key, then the steps run per element.
		return g.seq(n.Children, g.box(n, strings.TrimSpace("each "+n.Label), "", shapeRounded, in))
	case KindAll:
		// A box fanning out to the children, whose ends all join the next.
		from := g.box(n, "all", "", shapeRounded, in)
		var out []gPending
		for _, c := range n.Children {
			if c != nil {
				out = append(out, g.draw(c, from)...)
			}
		}
		if len(out) == 0 {
			out = from
		}
		return out
	case KindTap:
		// A dashed edge to the tapped steps; the flow goes on beside them.
		entry, _, _ := g.branch(n.Children)
		g.attach(in, entry, true)
		return in
	}
	if len(n.Children) == 0 {
		label := n.Name
		if label == "" {
			label = n.Kind
		}
		return g.box(n, label, graphContract(n), shapeBox, in)
	}
	return g.cluster(n, in) // saga, a nested flow, a kind added later
}

// box draws one node for n after in.
func (g *drawing) box(n *Node, label, small string, s gShape, in []gPending) []gPending {
	id := g.node(n, label, small, s)
	g.connect(in, id, false)
	return []gPending{{id: id}}
}

// branches draws a decision labelled label with an edge to each child: a
// case or guard child labels its edge with its own Label and stands for
// its children in sequence.
func (g *drawing) branches(n *Node, label string, in []gPending) []gPending {
	from := g.box(n, label, "", shapeDiamond, in)
	var out []gPending
	for _, c := range n.Children {
		switch {
		case c == nil:
		case c.Kind == KindCase || c.Kind == KindGuard:
			out = append(out, g.seq(c.Children, []gPending{{id: from[0].id, label: c.Label}})...)
		default:
			out = append(out, g.draw(c, from)...)
		}
	}
	if len(out) == 0 {
		out = from
	}
	return out
}

// cond draws a condition diamond whose edge labelled run leads into the
// children and whose edge labelled skip passes them by.
func (g *drawing) cond(n *Node, in []gPending, run, skip string) []gPending {
	id := g.box(n, n.Label, "", shapeDiamond, in)[0].id
	out := g.seq(n.Children, []gPending{{id: id, label: run}})
	return append(out, gPending{id: id, label: skip})
}

// cluster draws n's children in sequence inside a subgraph labelled with
// n's name.
func (g *drawing) cluster(n *Node, in []gPending) []gPending {
	label := n.Name
	if label == "" {
		label = n.Kind
	}
	c := &gCluster{id: g.id(n.Path), label: label}
	top := g.stack[len(g.stack)-1]
	top.items = append(top.items, gItem{cluster: c})
	g.stack = append(g.stack, c)
	saved := g.exits
	if n.Kind == KindFlow {
		g.exits = nil // a nested flow's diverts end the nested flow only
	}
	out := g.seq(n.Children, in)
	if n.Kind == KindFlow {
		out, g.exits = append(out, g.exits...), saved
	}
	g.stack = g.stack[:len(g.stack)-1]
	return out
}

// graphContract is the second line of a step's label: the keys it needs
// and provides, an optional need marked with "?".
func graphContract(n *Node) string {
	var parts []string
	if len(n.Needs) > 0 {
		parts = append(parts, "needs: "+graphKeys(n.Needs))
	}
	if len(n.Provides) > 0 {
		parts = append(parts, "provides: "+graphKeys(n.Provides))
	}
	if len(n.Removes) > 0 {
		parts = append(parts, "removes: "+strings.Join(n.Removes, ", "))
	}
	return strings.Join(parts, "; ")
}

func graphKeys(infos []fc.KeyInfo) string {
	names := make([]string, len(infos))
	for i, k := range infos {
		names[i] = k.Name
		if k.Optional {
			names[i] += "?"
		}
	}
	return strings.Join(names, ", ")
}

// ---- DOT ----

var (
	dotQuoted = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r\n", `\n`, "\n", `\n`, "\r", `\n`)
	dotHTML   = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "\r\n", "<BR/>", "\n", "<BR/>", "\r", "<BR/>")
)

// dotString returns s as a DOT quoted string, for a label: backslashes and
// quotes are escaped, line breaks become \n.
func dotString(s string) string {
	return `"` + dotQuoted.Replace(strings.ToValidUTF8(s, "\uFFFD")) + `"`
}

func (g *drawing) dot() string {
	var b strings.Builder
	b.WriteString("digraph " + dotString(g.name) + " {\n")
	b.WriteString("\tnode [shape=box, fontname=\"Helvetica\"];\n")
	b.WriteString("\tedge [fontname=\"Helvetica\", fontsize=10];\n")
	g.dotCluster(&b, g.root, "\t")
	for _, e := range g.edges {
		b.WriteString("\t" + e.from + " -> " + e.to)
		var attrs []string
		if e.label != "" {
			attrs = append(attrs, "label="+dotString(e.label))
		}
		if e.dashed {
			attrs = append(attrs, "style=dashed")
		}
		if len(attrs) > 0 {
			b.WriteString(" [" + strings.Join(attrs, ", ") + "]")
		}
		b.WriteString(";\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func (g *drawing) dotCluster(b *strings.Builder, c *gCluster, indent string) {
	for _, it := range c.items {
		if sub := it.cluster; sub != nil {
			b.WriteString(indent + "subgraph cluster_" + sub.id + " {\n")
			b.WriteString(indent + "\tlabel=" + dotString(sub.label) + ";\n")
			g.dotCluster(b, sub, indent+"\t")
			b.WriteString(indent + "}\n")
			continue
		}
		n := it.node
		var label string
		if n.small != "" {
			label = "<" + dotHTML.Replace(strings.ToValidUTF8(n.label, "\uFFFD")) +
				`<BR/><FONT POINT-SIZE="10">` + dotHTML.Replace(strings.ToValidUTF8(n.small, "\uFFFD")) + "</FONT>>"
		} else {
			label = dotString(n.label)
		}
		attrs := "label=" + label
		switch n.shape {
		case shapeRounded:
			attrs += ", style=rounded"
		case shapeDiamond:
			attrs += ", shape=diamond"
		case shapeTerm:
			attrs += ", shape=oval"
		}
		b.WriteString(indent + n.id + " [" + attrs + "];\n")
	}
}

// ---- Mermaid ----

var mermaidText = strings.NewReplacer(
	"#", "#35;", `"`, "#quot;", "&", "#amp;", "<", "#lt;", ">", "#gt;", "`", "#96;",
	"\r\n", "<br>", "\n", "<br>", "\r", "<br>")

// mermaidString returns s as a quoted Mermaid label: quotes and the
// characters Mermaid or HTML would interpret become entity codes, line
// breaks become <br>.
func mermaidString(s string) string {
	return `"` + mermaidText.Replace(strings.ToValidUTF8(s, "\uFFFD")) + `"`
}

func (g *drawing) mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart TD\n")
	g.mermaidCluster(&b, g.root, "\t")
	for _, e := range g.edges {
		arrow := "-->"
		if e.dashed {
			arrow = "-.->"
		}
		if e.label != "" {
			arrow += "|" + mermaidString(e.label) + "|"
		}
		b.WriteString("\t" + e.from + " " + arrow + " " + e.to + "\n")
	}
	return b.String()
}

func (g *drawing) mermaidCluster(b *strings.Builder, c *gCluster, indent string) {
	for _, it := range c.items {
		if sub := it.cluster; sub != nil {
			b.WriteString(indent + "subgraph " + sub.id + " [" + mermaidString(sub.label) + "]\n")
			g.mermaidCluster(b, sub, indent+"\t")
			b.WriteString(indent + "end\n")
			continue
		}
		n := it.node
		label := mermaidString(n.label)
		if n.small != "" {
			label = label[:len(label)-1] + "<br><small>" + mermaidText.Replace(strings.ToValidUTF8(n.small, "\uFFFD")) + `</small>"`
		}
		open, close := "[", "]"
		switch n.shape {
		case shapeRounded:
			open, close = "(", ")"
		case shapeDiamond:
			open, close = "{", "}"
		case shapeTerm:
			open, close = "([", "])"
		}
		b.WriteString(indent + n.id + open + label + close + "\n")
	}
}

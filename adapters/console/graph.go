package console

import (
	"fmt"
	"html"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/svcflow/svcflow/flow"
)

// Layout is a flow's diagram placed for drawing: the answer of GET
// /api/channels/{channel}/graph. Nodes are laid out in layers, top to
// bottom (a node sits one layer below the lowest of the nodes it comes
// from), ordered within a layer to keep edges short. Coordinates are in
// pixels, the origin top left.
type Layout struct {
	Flow   string       `json:"flow"`
	Width  int          `json:"width"`
	Height int          `json:"height"`
	Nodes  []LayoutNode `json:"nodes"`
	Edges  []LayoutEdge `json:"edges"`
}

// LayoutNode is a node of a [Layout]: a flow.DiagramNode with its layer
// and box (X, Y: top left corner).
type LayoutNode struct {
	flow.DiagramNode
	Layer int `json:"layer"`
	X     int `json:"x"`
	Y     int `json:"y"`
	W     int `json:"w"`
	H     int `json:"h"`
}

// LayoutEdge is an edge of a [Layout]; Back marks an edge that goes up
// (the loop of an until).
type LayoutEdge struct {
	flow.DiagramEdge
	Back bool `json:"back,omitempty"`
}

const (
	nodeH     = 44
	layerGap  = 40 // between layers, room for edge labels
	nodeGap   = 32
	margin    = 24
	charW     = 7 // width of a character of the 13px label font, roughly
	maxLabel  = 32
	maxDetail = 44
)

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// LayoutDiagram places d in layers (see [Layout]).
func LayoutDiagram(name string, d flow.Diagram) Layout {
	n := len(d.Nodes)
	index := make(map[string]int, n)
	for i, x := range d.Nodes {
		index[x.ID] = i
	}
	out := make([][]int, n)
	for ei, e := range d.Edges {
		if f, ok := index[e.From]; ok {
			if _, ok := index[e.To]; ok {
				out[f] = append(out[f], ei)
			}
		}
	}
	// Back edges: those that close a cycle in a depth-first walk from the
	// start, in drawing order.
	back := make([]bool, len(d.Edges))
	state := make([]int8, n) // 0 new, 1 on the stack, 2 done
	var dfs func(v int)
	dfs = func(v int) {
		state[v] = 1
		for _, ei := range out[v] {
			w := index[d.Edges[ei].To]
			switch state[w] {
			case 0:
				dfs(w)
			case 1:
				back[ei] = true
			}
		}
		state[v] = 2
	}
	for v := range n {
		if state[v] == 0 {
			dfs(v)
		}
	}
	// Layers: the longest path over forward edges (a topological order
	// by repeated relaxation; the graph is small).
	layer := make([]int, n)
	for changed := true; changed; {
		changed = false
		for ei, e := range d.Edges {
			f, ok1 := index[e.From]
			t, ok2 := index[e.To]
			if !ok1 || !ok2 || back[ei] {
				continue
			}
			if layer[t] < layer[f]+1 {
				layer[t] = layer[f] + 1
				changed = true
			}
		}
	}
	depth := 0
	for _, l := range layer {
		depth = max(depth, l+1)
	}
	rows := make([][]int, depth)
	for v := range n {
		rows[layer[v]] = append(rows[layer[v]], v)
	}
	// Order each layer by the mean position of the nodes above it
	// (barycentre), keeping drawing order for ties.
	pos := make([]float64, n)
	for _, row := range rows {
		for i, v := range row {
			pos[v] = float64(i)
		}
	}
	preds := make([][]int, n)
	for ei, e := range d.Edges {
		if back[ei] {
			continue
		}
		f, ok1 := index[e.From]
		t, ok2 := index[e.To]
		if ok1 && ok2 {
			preds[t] = append(preds[t], f)
		}
	}
	for l := 1; l < depth; l++ {
		row := rows[l]
		bary := make(map[int]float64, len(row))
		for _, v := range row {
			if len(preds[v]) == 0 {
				bary[v] = pos[v]
				continue
			}
			sum := 0.0
			for _, p := range preds[v] {
				sum += pos[p]
			}
			bary[v] = sum / float64(len(preds[v]))
		}
		sortStable(row, func(a, b int) bool { return bary[a] < bary[b] })
		for i, v := range row {
			pos[v] = float64(i)
		}
	}
	lay := Layout{Flow: name, Nodes: make([]LayoutNode, n), Edges: make([]LayoutEdge, 0, len(d.Edges))}
	widths := make([]int, depth)
	for v, x := range d.Nodes {
		w := max(utf8.RuneCountInString(clip(x.Label, maxLabel)), utf8.RuneCountInString(clip(x.Detail, maxDetail))*6/7)*charW + 32
		if x.Shape == "diamond" {
			w += 40
		}
		lay.Nodes[v] = LayoutNode{DiagramNode: x, Layer: layer[v], W: max(w, 96), H: nodeH}
	}
	for l, row := range rows {
		for i, v := range row {
			if i > 0 {
				widths[l] += nodeGap
			}
			widths[l] += lay.Nodes[v].W
		}
	}
	width := 0
	for _, w := range widths {
		width = max(width, w)
	}
	for l, row := range rows {
		x := margin + (width-widths[l])/2
		for _, v := range row {
			lay.Nodes[v].X = x
			lay.Nodes[v].Y = margin + l*(nodeH+layerGap)
			x += lay.Nodes[v].W + nodeGap
		}
	}
	lay.Width = width + 2*margin + 40 // room for back edges on the right
	lay.Height = depth*(nodeH+layerGap) - layerGap + 2*margin
	for ei, e := range d.Edges {
		lay.Edges = append(lay.Edges, LayoutEdge{DiagramEdge: e, Back: back[ei]})
	}
	return lay
}

// sortStable is an insertion sort: layers are small and it keeps ties in
// order.
func sortStable(s []int, less func(a, b int) bool) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && less(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// SVG draws the layout as a standalone SVG document: boxes for steps,
// rounded boxes for all and each, diamonds for decisions, pills for start
// and end, edges with arrows and labels, dashed for taps; a node's
// title (a tooltip) holds its whole label, contract and group.
func (l Layout) SVG() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="flow-graph" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		l.Width, l.Height, l.Width, l.Height, esc("graph of flow "+l.Flow))
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#555"/></marker></defs>`)
	at := make(map[string]*LayoutNode, len(l.Nodes))
	for i := range l.Nodes {
		at[l.Nodes[i].ID] = &l.Nodes[i]
	}
	b.WriteString(`<g class="edges">`)
	for _, e := range l.Edges {
		f, t := at[e.From], at[e.To]
		if f == nil || t == nil {
			continue
		}
		dash := ""
		if e.Dashed {
			dash = ` stroke-dasharray="5 4"`
		}
		x1, y1 := f.X+f.W/2, f.Y+f.H
		x2, y2 := t.X+t.W/2, t.Y
		var lx, ly int
		if e.Back {
			// Around the right of both nodes, upwards.
			right := max(f.X+f.W, t.X+t.W) + 28
			x1, y1 = f.X+f.W, f.Y+f.H/2
			x2, y2 = t.X+t.W, t.Y+t.H/2
			fmt.Fprintf(&b, `<path d="M%d,%d C%d,%d %d,%d %d,%d" fill="none" stroke="#555"%s marker-end="url(#arrow)"/>`, x1, y1, right, y1, right, y2, x2, y2, dash)
			lx, ly = right+2, (y1+y2)/2
		} else {
			fmt.Fprintf(&b, `<path d="M%d,%d C%d,%d %d,%d %d,%d" fill="none" stroke="#555"%s marker-end="url(#arrow)"/>`,
				x1, y1, x1, y1+layerGap/2, x2, y2-layerGap/2, x2, y2, dash)
			lx, ly = (x1+x2)/2+4, y1+layerGap/2+4
		}
		if e.Label != "" {
			fmt.Fprintf(&b, `<text class="edge-label" x="%d" y="%d" font-size="11" fill="#333">%s</text>`, lx, ly, esc(clip(e.Label, 24)))
		}
	}
	b.WriteString(`</g><g class="nodes">`)
	for _, x := range l.Nodes {
		title := x.Label
		if x.Detail != "" {
			title += "\n" + x.Detail
		}
		if x.Group != "" {
			title += "\nin " + x.Group
		}
		fmt.Fprintf(&b, `<g class="node node-%s" id="%s"><title>%s</title>`, x.Shape, esc(x.ID), esc(title))
		switch x.Shape {
		case "diamond":
			cx, cy := x.X+x.W/2, x.Y+x.H/2
			fmt.Fprintf(&b, `<polygon points="%d,%d %d,%d %d,%d %d,%d" fill="#fff6d5" stroke="#8a6d00"/>`, cx, x.Y, x.X+x.W, cy, cx, x.Y+x.H, x.X, cy)
		case "terminal":
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" rx="%d" fill="#e6e6e6" stroke="#444"/>`, x.X, x.Y, x.W, x.H, x.H/2)
		case "rounded":
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" rx="12" fill="#e4f0fb" stroke="#1f5f99"/>`, x.X, x.Y, x.W, x.H)
		default:
			fill := "#ffffff"
			if x.Group != "" {
				fill = "#f1ecfa"
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" rx="3" fill="%s" stroke="#222"/>`, x.X, x.Y, x.W, x.H, fill)
		}
		cx := x.X + x.W/2
		if x.Detail != "" {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="13" fill="#111">%s</text>`, cx, x.Y+18, esc(clip(x.Label, maxLabel)))
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="10" fill="#444">%s</text>`, cx, x.Y+34, esc(clip(x.Detail, maxDetail)))
		} else {
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-size="13" fill="#111">%s</text>`, cx, x.Y+x.H/2+5, esc(clip(x.Label, maxLabel)))
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</g></svg>`)
	return b.String()
}

func esc(s string) string { return html.EscapeString(s) }

func (c *Console) layout(w http.ResponseWriter, r *http.Request) (Layout, bool) {
	ch, ok := c.channel(w, r)
	if !ok {
		return Layout{}, false
	}
	f := ch.Flow()
	if f == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("channel %q has no flow", ch.Name()))
		return Layout{}, false
	}
	return LayoutDiagram(f.Name(), f.Graph().Diagram()), true
}

func (c *Console) getGraph(w http.ResponseWriter, r *http.Request) {
	if l, ok := c.layout(w, r); ok {
		writeJSON(w, http.StatusOK, l)
	}
}

func (c *Console) getGraphSVG(w http.ResponseWriter, r *http.Request) {
	l, ok := c.layout(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(l.SVG()))
}

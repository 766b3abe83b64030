package branch

import (
	"slices"

	"github.com/expr-lang/expr/ast"
)

// envIdent is the special identifier expr uses for the whole environment.
const envIdent = "$env"

// identRef is one read of a context key, at a rune offset into the source.
type identRef struct {
	name string
	from int
}

// collectIdents returns the context keys read by the tree rooted at n, in
// source order of their first occurrence. Builtins (which the parser turns
// into BuiltinNode), closure pointers (#, #index, .field), let-bound
// variables and member names after a dot are not context keys.
func collectIdents(n ast.Node) []identRef {
	c := identCollector{seen: map[string]int{}}
	c.walk(n, nil)
	slices.SortStableFunc(c.refs, func(a, b identRef) int { return a.from - b.from })
	return c.refs
}

type identCollector struct {
	refs []identRef
	seen map[string]int // name -> index into refs
}

func (c *identCollector) add(name string, from int) {
	if i, ok := c.seen[name]; ok {
		// Keep the earliest occurrence for error positions.
		c.refs[i].from = min(c.refs[i].from, from)
		return
	}
	c.seen[name] = len(c.refs)
	c.refs = append(c.refs, identRef{name: name, from: from})
}

// walk visits n with scope holding the let-bound names visible at n.
func (c *identCollector) walk(n ast.Node, scope []string) {
	switch n := n.(type) {
	case nil:
	case *ast.IdentifierNode:
		if n.Value == envIdent || slices.Contains(scope, n.Value) {
			return
		}
		c.add(n.Value, n.Location().From)
	case *ast.MemberNode:
		// $env.key and $env["key"] read a context key explicitly.
		if id, ok := n.Node.(*ast.IdentifierNode); ok && id.Value == envIdent && !slices.Contains(scope, envIdent) {
			if s, ok := n.Property.(*ast.StringNode); ok {
				c.add(s.Value, n.Location().From)
				return
			}
		}
		c.walk(n.Node, scope)
		c.walk(n.Property, scope) // a StringNode for `a.b`, any node for `a[b]`
	case *ast.VariableDeclaratorNode:
		c.walk(n.Value, scope)
		c.walk(n.Expr, append(slices.Clip(scope), n.Name))
	case *ast.UnaryNode:
		c.walk(n.Node, scope)
	case *ast.BinaryNode:
		c.walk(n.Left, scope)
		c.walk(n.Right, scope)
	case *ast.ChainNode:
		c.walk(n.Node, scope)
	case *ast.SliceNode:
		c.walk(n.Node, scope)
		c.walk(n.From, scope)
		c.walk(n.To, scope)
	case *ast.CallNode:
		c.walk(n.Callee, scope)
		for _, a := range n.Arguments {
			c.walk(a, scope)
		}
	case *ast.BuiltinNode:
		for _, a := range n.Arguments {
			c.walk(a, scope)
		}
	case *ast.PredicateNode:
		c.walk(n.Node, scope)
	case *ast.SequenceNode:
		for _, s := range n.Nodes {
			c.walk(s, scope)
		}
	case *ast.ConditionalNode:
		c.walk(n.Cond, scope)
		c.walk(n.Exp1, scope)
		c.walk(n.Exp2, scope)
	case *ast.ArrayNode:
		for _, e := range n.Nodes {
			c.walk(e, scope)
		}
	case *ast.MapNode:
		for _, p := range n.Pairs {
			c.walk(p, scope)
		}
	case *ast.PairNode:
		c.walk(n.Key, scope)
		c.walk(n.Value, scope)
	default:
		// Literals, PointerNode (# and friends) and ConstantNode read no keys.
	}
}

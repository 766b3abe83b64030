// Package redact masks secrets in what is kept of a run: the values at
// given dotted paths of a context map, and the text of those values
// wherever it appears in error messages, traces and logs.
package redact

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// Mask replaces a redacted value.
const Mask = "[redacted]"

// minSecret is the shortest value text masked inside other text: a
// shorter one ("1", "eu") would mask unrelated words.
const minSecret = 4

// Paths are the dotted paths of the keys to mask ("password",
// "card.number"). A path names a key of the context, or a key of a map
// under it; a list on the way is entered element by element
// ("lines.card" masks card in every element of lines). The zero value
// masks nothing.
type Paths struct {
	paths [][]string
}

// Parse checks and compiles dotted paths. An empty path, or one with an
// empty segment ("a..b", ".a"), is an error.
func Parse(paths []string) (Paths, error) {
	var p Paths
	for _, s := range paths {
		segs := strings.Split(s, ".")
		for _, seg := range segs {
			if seg == "" {
				return Paths{}, fmt.Errorf("redact: %q: expected a key or a dotted path such as card.number", s)
			}
		}
		p.paths = append(p.paths, segs)
	}
	return p, nil
}

// Empty reports whether p masks nothing.
func (p Paths) Empty() bool { return len(p.paths) == 0 }

// Map returns m with the values at p's paths replaced by Mask, and the
// text of the values masked (strings and numbers, and those inside masked
// maps and lists), for Text. m itself is not modified: maps and lists on
// the way to a masked value are copied, the rest is shared. A path that
// m does not have masks nothing.
func (p Paths) Map(m map[string]any) (map[string]any, Secrets) {
	if p.Empty() || m == nil {
		return m, nil
	}
	var s Secrets
	out := m
	for _, path := range p.paths {
		if v, ok := maskPath(out, path, &s); ok {
			out = v.(map[string]any)
		}
	}
	return out, s
}

// maskPath returns a copy of v with the value at path masked, and
// whether anything was masked.
func maskPath(v any, path []string, s *Secrets) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		cur, ok := x[path[0]]
		if !ok {
			return v, false
		}
		var nv any = Mask
		if len(path) > 1 {
			var changed bool
			if nv, changed = maskPath(cur, path[1:], s); !changed {
				return v, false
			}
		} else {
			if cur == Mask {
				return v, false
			}
			s.add(cur)
		}
		c := make(map[string]any, len(x))
		for k, e := range x {
			c[k] = e
		}
		c[path[0]] = nv
		return c, true
	case []any:
		var c []any
		for i, e := range x {
			if ne, changed := maskPath(e, path, s); changed {
				if c == nil {
					c = append([]any(nil), x...)
				}
				c[i] = ne
			}
		}
		if c == nil {
			return v, false
		}
		return c, true
	}
	return v, false
}

// Secrets are the texts of masked values.
type Secrets []string

func (s *Secrets) add(v any) {
	switch x := v.(type) {
	case string:
		if len(x) >= minSecret {
			*s = append(*s, x)
		}
	case json.Number:
		s.add(string(x))
	case float64:
		s.add(strconv.FormatFloat(x, 'f', -1, 64))
	case int:
		s.add(strconv.Itoa(x))
	case int64:
		s.add(strconv.FormatInt(x, 10))
	case map[string]any:
		for _, e := range x {
			s.add(e)
		}
	case []any:
		for _, e := range x {
			s.add(e)
		}
	}
}

// Text returns text with every secret replaced by Mask.
func (s Secrets) Text(text string) string {
	for _, secret := range s {
		if strings.Contains(text, secret) {
			text = strings.ReplaceAll(text, secret, Mask)
		}
	}
	return text
}

type ctxKey struct{}

// WithPaths returns a context carrying p, for code that logs values of a
// run (a log step) to mask them: see FromContext.
func WithPaths(ctx context.Context, p Paths) context.Context {
	if p.Empty() {
		return ctx
	}
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the paths a run's context carries (none when it
// carries none).
func FromContext(ctx context.Context) Paths {
	p, _ := ctx.Value(ctxKey{}).(Paths)
	return p
}

// NewHandler wraps h so that a record logged with a context carrying
// paths (WithPaths: a channel's run) has the attributes those paths name
// masked: an attribute whose key is a redacted key is Mask, and one whose
// value is a map has the paths under it masked. The message text is
// logged as it is.
func NewHandler(h slog.Handler) slog.Handler { return &handler{h} }

type handler struct{ next slog.Handler }

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler { return &handler{h.next.WithAttrs(as)} }

func (h *handler) WithGroup(name string) slog.Handler { return &handler{h.next.WithGroup(name)} }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	p := FromContext(ctx)
	if p.Empty() {
		return h.next.Handle(ctx, r)
	}
	attrs := make(map[string]any, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.Any()
		return true
	})
	masked, _ := p.Map(attrs)
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if v := masked[a.Key]; v == Mask || (a.Value.Kind() == slog.KindAny && v != nil) {
			a = slog.Any(a.Key, v)
		}
		out.AddAttrs(a)
		return true
	})
	return h.next.Handle(ctx, out)
}

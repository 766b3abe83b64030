package logging

import (
	"context"
	"log/slog"
)

// AttrsKey is the context key under which [WithAttrs] keeps attributes
// for [Handler] to add to the records logged with the context. A context
// implementation may answer it itself with a []slog.Attr (a production
// component's run does: component and kind).
type AttrsKey struct{}

// WithAttrs returns ctx with attrs added to those [Handler] adds to every
// record logged with it (the inner context's replace an outer one's).
func WithAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	return context.WithValue(ctx, AttrsKey{}, attrs)
}

// attrsFrom returns the attributes of ctx.
func attrsFrom(ctx context.Context) []slog.Attr {
	a, _ := ctx.Value(AttrsKey{}).([]slog.Attr)
	return a
}

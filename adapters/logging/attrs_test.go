package logging_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/svcflow/svcflow/adapters/logging"
)

// WithAttrs adds attributes to the records logged with the context; the
// inner context's replace the outer one's.
func TestWithAttrs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(logging.Handler(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})))
	ctx := logging.WithAttrs(context.Background(), slog.String("component", "outer"))
	log.InfoContext(ctx, "one")
	log.InfoContext(logging.WithAttrs(ctx, slog.String("component", "inner"), slog.String("kind", "operation")), "two")
	log.Info("three")
	assert.Equal(t, "level=INFO msg=one component=outer\nlevel=INFO msg=two component=inner kind=operation\nlevel=INFO msg=three\n", buf.String())
}

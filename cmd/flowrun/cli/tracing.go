package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/telemetry/otlp"
)

// tracing sets OpenTelemetry tracing up from the OTEL_* environment (off
// unless it asks for an OTLP exporter) into opts, and returns the function
// that flushes the spans left; ok is false when the environment asks for
// what flowrun cannot do.
func (e *Env) tracing(ctx context.Context, c *Command, log *slog.Logger, opts *serve.Options) (flush func(), ok bool) {
	tr, shutdown, err := otlp.Setup(ctx, "flowrun")
	if err != nil {
		fmt.Fprintf(e.Stderr, "flowrun %s: tracing: %v\n", c.Name, err)
		return nil, false
	}
	if tr != nil {
		opts.Observer, opts.Middleware = tr, append(opts.Middleware, tr.Middleware())
		log.Info("tracing: exporting spans with OTLP over HTTP")
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			log.Warn("tracing: flushing spans", "error", err)
		}
	}, true
}

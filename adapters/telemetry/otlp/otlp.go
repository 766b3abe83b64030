// Package otlp sets tracing up from the standard OpenTelemetry
// environment variables, exporting spans with OTLP over HTTP
// (go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp).
//
// Tracing is on when OTEL_TRACES_EXPORTER is "otlp", or when it is unset
// and OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// is set; it is off when OTEL_SDK_DISABLED is "true" or
// OTEL_TRACES_EXPORTER is "none", and off when nothing is set. The
// exporter reads the other OTEL_EXPORTER_OTLP_* variables itself
// (headers, timeout, certificates, compression), the SDK reads
// OTEL_TRACES_SAMPLER and OTEL_BSP_*, and the resource
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
//
// Only the http/protobuf protocol is linked: OTLP over gRPC would add
// gRPC's server and client stacks to every build for a choice a
// collector offers on both ports.
package otlp

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/svcflow/svcflow/adapters/telemetry"
)

// Enabled reports whether the environment (read with getenv) asks for
// trace export, and why not when it asks for an exporter or a protocol
// this package does not have.
func Enabled(getenv func(string) string) (bool, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	on := getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "":
	case "none":
		return false, nil
	case "otlp":
		on = true
	default:
		return false, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: only otlp (or none) is supported", exp)
	}
	if !on {
		return false, nil
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(getenv(k)); p != "" {
			if p != "http/protobuf" {
				return false, fmt.Errorf("%s=%s: only http/protobuf is supported", k, p)
			}
			break
		}
	}
	return true, nil
}

// Setup returns a Tracing exporting to the OTLP endpoint the environment
// names, with service as the default service.name (OTEL_SERVICE_NAME
// wins), and the function that flushes and stops the exporter. When the
// environment asks for no tracing it returns a nil Tracing and a
// shutdown that does nothing. It connects to nothing: spans are sent in
// batches, in the background.
func Setup(ctx context.Context, service string) (*telemetry.Tracing, func(context.Context) error, error) {
	nop := func(context.Context) error { return nil }
	on, err := Enabled(os.Getenv)
	if err != nil || !on {
		return nil, nop, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nop, fmt.Errorf("otlp exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return nil, nop, fmt.Errorf("otel resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return telemetry.New(tp), tp.Shutdown, nil
}

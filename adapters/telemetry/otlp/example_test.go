package otlp_test

import (
	"context"
	"fmt"

	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/telemetry/otlp"
)

func ExampleEnabled() {
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
	on, err := otlp.Enabled(func(k string) string { return env[k] })
	fmt.Println(on, err)
	env = map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
	on, err = otlp.Enabled(func(k string) string { return env[k] })
	fmt.Println(on, err)
	// Output:
	// true <nil>
	// false OTEL_EXPORTER_OTLP_PROTOCOL=grpc: only http/protobuf is supported
}

func ExampleSetup() {
	ctx := context.Background()
	tr, shutdown, err := otlp.Setup(ctx, "my-service") // nil, and a no-op shutdown, unless OTEL_* asks for OTLP
	if err != nil {
		panic(err)
	}
	defer shutdown(ctx) // flushes the spans left
	var opts serve.Options
	if tr != nil {
		opts.Observer, opts.Middleware = tr, append(opts.Middleware, tr.Middleware())
	}
	_ = opts // serve.New(cfg, opts)
}

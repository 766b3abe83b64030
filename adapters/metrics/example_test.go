package metrics_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/svcflow/svcflow/adapters/metrics"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func ExampleNew() {
	r := metrics.New() // serve it with r.Handler() on /metrics
	f := flow.New("orders", flow.Step("price", func(ctx context.Context, c *fc.Context) error { return nil })).
		Use(flow.Measure(r)).MustBuild()
	_, _ = f.Run(context.Background(), nil)
	r.ObserveStep("orders", "charge", errors.KindWillRetry, 3*time.Millisecond)

	var b strings.Builder
	if err := r.WritePrometheus(&b); err != nil {
		fmt.Println(err)
	}
	for line := range strings.Lines(b.String()) {
		if strings.HasPrefix(line, "svcflow_step_duration_seconds_count") {
			fmt.Print(line)
		}
	}
	// Output:
	// svcflow_step_duration_seconds_count{flow="orders",outcome="ok",step="price"} 1
	// svcflow_step_duration_seconds_count{flow="orders",outcome="will-retry",step="charge"} 1
}

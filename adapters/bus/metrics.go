package bus

import (
	"fmt"
	"io"
	"strings"
)

// WritePrometheus writes the services' counters in the Prometheus text
// format 0.0.4: svcflow_bus_messages_total{service,outcome} (ok, stop,
// failed: every outcome that is not ok or a stop), svcflow_bus_restarts_total
// and svcflow_bus_panics_total per service, svcflow_bus_queued (messages in
// the mailbox) and svcflow_bus_service_up (1 while running or restarting).
func (b *Bus) WritePrometheus(w io.Writer) error {
	var sb strings.Builder
	sts := b.Status()
	sb.WriteString("# HELP svcflow_bus_messages_total Messages a bus service ran, by outcome.\n# TYPE svcflow_bus_messages_total counter\n")
	for _, st := range sts {
		n := quote(st.Name)
		fmt.Fprintf(&sb, "svcflow_bus_messages_total{outcome=\"ok\",service=%s} %d\n", n, st.Processed-st.Failed-st.Rejected)
		fmt.Fprintf(&sb, "svcflow_bus_messages_total{outcome=\"stop\",service=%s} %d\n", n, st.Rejected)
		fmt.Fprintf(&sb, "svcflow_bus_messages_total{outcome=\"failed\",service=%s} %d\n", n, st.Failed)
	}
	sb.WriteString("# HELP svcflow_bus_restarts_total Restarts of a bus service after panics and Fatal errors.\n# TYPE svcflow_bus_restarts_total counter\n")
	for _, st := range sts {
		fmt.Fprintf(&sb, "svcflow_bus_restarts_total{service=%s} %d\n", quote(st.Name), st.Restarts)
	}
	sb.WriteString("# HELP svcflow_bus_panics_total Panics in the actions of a bus service.\n# TYPE svcflow_bus_panics_total counter\n")
	for _, st := range sts {
		fmt.Fprintf(&sb, "svcflow_bus_panics_total{service=%s} %d\n", quote(st.Name), st.Panics)
	}
	sb.WriteString("# HELP svcflow_bus_queued Messages in a bus service's mailbox.\n# TYPE svcflow_bus_queued gauge\n")
	for _, st := range sts {
		fmt.Fprintf(&sb, "svcflow_bus_queued{service=%s} %d\n", quote(st.Name), st.Queued)
	}
	sb.WriteString("# HELP svcflow_bus_service_up Whether a bus service runs (1) or not (0).\n# TYPE svcflow_bus_service_up gauge\n")
	for _, st := range sts {
		up := 0
		if st.State == StateRunning || st.State == StateRestarting {
			up = 1
		}
		fmt.Fprintf(&sb, "svcflow_bus_service_up{service=%s} %d\n", quote(st.Name), up)
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// quote renders a label value.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

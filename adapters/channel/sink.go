package channel

import (
	"context"

	"github.com/svcflow/svcflow/adapters/message"
)

// Sink receives messages sent on from a flow: a broker subject, a folder,
// another service. Sink components (package component) make them.
type Sink interface {
	// Name identifies the sink in logs and metrics.
	Name() string
	// Send delivers m; it returns once the receiver has acknowledged it.
	Send(ctx context.Context, m *message.Message) error
}

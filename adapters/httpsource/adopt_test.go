package httpsource_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/httpsource"
	"github.com/svcflow/svcflow/adapters/message"
	"github.com/svcflow/svcflow/adapters/store"
)

// answer answers every message with {"by": who}.
func answer(who string) channel.HandlerFunc {
	return func(_ context.Context, m *message.Message) channel.Result {
		done := m.Clone()
		done.Context = map[string]any{"by": who}
		return channel.Result{Settle: channel.Ack, State: store.Done, Message: done}
	}
}

// TestAdoptReplacesRoutesAtOnce: a server built for a new configuration
// hands its routes to the serving one: the route with the same method
// and path is replaced, the others added; a request the old route took
// after its channel began to stop goes to the new one; Detach removes a
// route.
func TestAdoptReplacesRoutesAtOnce(t *testing.T) {
	ts := startServer(t, httpsource.Config{})
	old, err := ts.Route("POST", "/orders")
	require.NoError(t, err)
	stopOld := run(t, old, answer("old"))
	ts.waitReady(t)
	assert.Equal(t, "old", ts.do(t, "POST", "/orders", "application/json", `{}`).body["by"])

	staging := httpsource.NewServer(httpsource.Config{Logger: quietLogger()})
	neu, err := staging.Route("POST", "/orders")
	require.NoError(t, err)
	added, err := staging.Route("POST", "/refunds")
	require.NoError(t, err)
	run(t, neu, answer("new"))
	run(t, added, answer("refunds"))
	var _ component.Adopter = ts.Server
	require.NoError(t, ts.Adopt(staging))
	assert.Equal(t, 2, ts.Routes())
	assert.Equal(t, 0, staging.Routes())
	assert.Equal(t, "new", ts.do(t, "POST", "/orders", "application/json", `{}`).body["by"])
	assert.Equal(t, "refunds", ts.do(t, "POST", "/refunds", "application/json", `{}`).body["by"])

	// The old route, stopped, hands on what reaches it.
	stopOld()
	assert.True(t, old.(interface{ Ready() bool }).Ready(), "its successor takes its requests")
	assert.True(t, ts.Ready())

	added.(component.Detacher).Detach()
	assert.Equal(t, http.StatusNotFound, ts.do(t, "POST", "/refunds", "application/json", `{}`).status)
	assert.Equal(t, 1, ts.Routes())
}

// TestAdoptRefusesAServingServer: only a server that never served can
// hand its routes over.
func TestAdoptRefusesAServingServer(t *testing.T) {
	ts := startServer(t, httpsource.Config{})
	other := startServer(t, httpsource.Config{})
	require.Equal(t, http.StatusOK, other.do(t, "GET", "/healthz", "", "").status) // it serves
	err := ts.Adopt(other.Server)
	require.ErrorIs(t, err, httpsource.ErrServing)
}

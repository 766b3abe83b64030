package productiontest_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/adapters/production"
	"github.com/svcflow/svcflow/adapters/production/productiontest"
	_ "github.com/svcflow/svcflow/adapters/steps" // set, stop
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const src = `version: 1
flows:
  intake:
    input: [order]
    steps:
      - send: {target: Python.Process, body: order, into: answer}
  process:
    input: [sku]
    steps:
      - set: {req: "{sku: sku}"}
      - send: {target: Stock, body: req, into: stock}
      - send: {target: Price, body: req, async: price}
      - send: {target: Stock, body: req, async: stock_again}
      - complete: responses
      - set: {total: "responses.price.response.price * stock.qty"}
  real_operation:
    steps:
      - stop: {if: "true", reason: "the real system is not reachable from tests"}
production:
  Stock: {kind: operation, flow: real_operation}
  Price: {kind: operation, flow: real_operation}
  Python.Process: {kind: process, flow: process}
  Python.Intake: {kind: service, flow: intake}
`

// The harness captures every send (target, request, response,
// completion key) and substitutes the operations that reach real systems.
func TestCaptureAndSubstitute(t *testing.T) {
	cfg, err := config.LoadSources([]config.Source{{Name: "p.yaml", Data: []byte(src)}})
	require.NoError(t, err)
	h := productiontest.FromConfig(t, cfg,
		productiontest.Respond("Stock", func(req map[string]any) (map[string]any, error) {
			return map[string]any{"qty": 3}, nil
		}),
		productiontest.Respond("Price", func(req map[string]any) (map[string]any, error) {
			if req["sku"] == "gone" {
				return nil, errors.Stop("no price for gone")
			}
			return map[string]any{"price": 2.5}, nil
		}))

	out, err := h.ProcessInput("Python.Intake", map[string]any{"order": map[string]any{"sku": "apple"}})
	require.NoError(t, err)
	assert.Equal(t, 7.5, out["answer"].(map[string]any)["total"])

	sends := h.Sends()
	require.Len(t, sends, 4)
	assert.Equal(t, "Python.Intake", sends[3].From, "the service's send ends last")
	assert.Equal(t, "Python.Process", sends[3].Component)
	stock := h.SendsTo("Stock")
	require.Len(t, stock, 2)
	modes := map[production.Mode]production.Send{}
	for _, s := range stock {
		modes[s.Mode] = s
	}
	assert.Equal(t, map[string]any{"sku": "apple"}, modes[production.Sync].Request)
	assert.Equal(t, map[string]any{"sku": "apple", "qty": 3}, modes[production.Sync].Response)
	assert.Equal(t, "stock_again", modes[production.Async].Key)
	price := h.SendsTo("Price")
	require.Len(t, price, 1)
	assert.Equal(t, production.Send{From: "Python.Process", Target: "Price", Component: "Price", Mode: production.Async, Key: "price",
		Request: map[string]any{"sku": "apple"}, Response: map[string]any{"sku": "apple", "price": 2.5}, Status: errors.KindOK},
		withoutDuration(price[0]))

	// A rejected async call reaches complete with its status; the total
	// then cannot be computed.
	h.Reset()
	_, err = h.ProcessInput("Python.Intake", map[string]any{"order": map[string]any{"sku": "gone"}})
	require.Error(t, err)
	price = h.SendsTo("Price")
	require.Len(t, price, 1)
	assert.Equal(t, errors.KindStop, price[0].Status)
}

func withoutDuration(s production.Send) production.Send {
	s.Duration = 0
	return s
}

// A polling business service on the fake clock of a synctest bubble: an
// hourly poll is tested at once.
func TestPollingOnFakeClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := production.New("poll", production.Options{Logger: quiet})
		require.NoError(t, p.Add(production.Component{Name: "Sink", Kind: production.Operation,
			Service: flow.Step("real", func(context.Context, *fc.Context) error { return errors.New("not in tests") })}))
		polls := 0
		require.NoError(t, p.Add(production.Component{Name: "Hourly", Kind: production.Service,
			Service: flow.Step("forward", func(ctx context.Context, c *fc.Context) error {
				_, err := production.From(ctx).SendSync(ctx, "Sink", c.Map())
				return err
			}),
			Poll: &production.Poll{Every: time.Hour, OnPoll: func(ctx context.Context) ([]map[string]any, error) {
				polls++
				return []map[string]any{{"poll": polls}}, nil
			}}}))
		h := productiontest.Start(t, p, productiontest.Respond("Sink", func(req map[string]any) (map[string]any, error) {
			return map[string]any{"stored": true}, nil
		}))
		time.Sleep(5*time.Hour + time.Minute)
		synctest.Wait()
		sends := h.SendsTo("Sink")
		require.Len(t, sends, 6, "at start and every hour")
		for i, s := range sends {
			assert.Equal(t, "Hourly", s.From)
			assert.Equal(t, float64(i+1), s.Request["poll"], "a polled message is JSON: numbers are float64")
			assert.Equal(t, true, s.Response["stored"])
		}
	})
}

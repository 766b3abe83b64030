package fulfillmentsaga_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	fulfillment "github.com/svcflow/svcflow/examples/fulfillment-saga"
	"github.com/svcflow/svcflow/flow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs an app on a free port against the vendor at url; the
// returned function stops it and returns Run's error.
func start(t *testing.T, dir, url string) (*fulfillment.App, func() error) {
	t.Helper()
	app, err := fulfillment.New(fulfillment.Options{Addr: "127.0.0.1:0", DataDir: dir, VendorURL: url})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	var once bool
	stop := func() error {
		if once {
			return nil
		}
		once = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { _ = stop() })
	return app, stop
}

// post sends a purchase request with its id as Idempotency-Key and
// returns the status and the decoded answer.
func post(t *testing.T, app *fulfillment.App, body string) (int, map[string]any) {
	t.Helper()
	var req struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(body), &req))
	r, err := http.NewRequest(http.MethodPost, "http://"+app.Addr()+"/purchases", strings.NewReader(body))
	require.NoError(t, err)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Idempotency-Key", req.ID)
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(data, &out), "%s", data)
	return resp.StatusCode, out
}

// selections returns the choices recorded in the stored trace of a
// request: which middleware stack and which transactions it ran, and
// the steps that ran or were compensated.
func selections(t *testing.T, app *fulfillment.App, id string) (middlewares, transactions string, steps []string) {
	t.Helper()
	rec, err := app.Channel().Store().Get(t.Context(), id)
	require.NoError(t, err)
	var tr flow.Trace
	require.NoError(t, json.Unmarshal(rec.Message.Trace, &tr))
	for _, s := range tr.Steps {
		switch s.Name {
		case "middlewares":
			middlewares = s.Selected
		case "select(transactions)":
			transactions = s.Selected
		default:
			steps = append(steps, s.Name+"="+s.Outcome.String())
		}
	}
	return middlewares, transactions, steps
}

func TestPurchaseSaga(t *testing.T) {
	api := fulfillment.NewVendorAPI(5)
	vendor := httptest.NewServer(api)
	defer vendor.Close()
	app, stop := start(t, t.TempDir(), vendor.URL)

	t.Run("an enterprise purchase runs every transaction, audited", func(t *testing.T) {
		status, out := post(t, app, `{"id": "PR-1", "type": "purchase", "customer": "acme", "tier": "enterprise", "items": [{"sku": "seat", "quantity": 3}]}`)
		require.Equal(t, http.StatusOK, status, "%v", out)
		assert.Equal(t, "t-acme", out["tenant_id"])
		assert.Equal(t, true, out["approved"])
		subs, licenses, approved, _ := api.Snapshot()
		assert.Equal(t, map[string]string{out["subscription_id"].(string): "t-acme"}, subs)
		assert.Equal(t, []any{"lic-2"}, out["license_ids"])
		assert.Equal(t, map[string]string{"lic-2": "t-acme/seat/3"}, licenses)
		assert.Equal(t, []string{"PR-1"}, approved)
		mw, tx, steps := selections(t, app, "PR-1")
		assert.Equal(t, "audited", mw)
		assert.Equal(t, "purchase", tx)
		assert.Equal(t, []string{"resolve_tenant=ok", "create_subscription=ok", "assign_license=ok", "approve=ok"}, steps)
		assert.Equal(t, []string{"PR-1 resolve_tenant ok", "PR-1 create_subscription ok", "PR-1 assign_license ok", "PR-1 approve ok"}, app.Audit.Lines())
	})

	t.Run("a change of a small customer: other transactions, no audit, the tenant from the cache", func(t *testing.T) {
		status, out := post(t, app, `{"id": "PR-2", "type": "change", "customer": "acme", "tier": "small", "items": [{"sku": "seat", "quantity": 2}]}`)
		require.Equal(t, http.StatusOK, status, "%v", out)
		assert.NotContains(t, out, "subscription_id")
		subs, licenses, _, lookups := api.Snapshot()
		assert.Len(t, subs, 1, "no new subscription")
		assert.Len(t, licenses, 2)
		assert.Equal(t, 1, lookups, "the tenant came from the cache")
		mw, tx, steps := selections(t, app, "PR-2")
		assert.Equal(t, "standard", mw)
		assert.Equal(t, "change", tx)
		assert.Equal(t, []string{"resolve_tenant=ok", "assign_license=ok", "approve=ok"}, steps)
		assert.Len(t, app.Audit.Lines(), 4, "not audited")
	})

	t.Run("a refused license undoes what the purchase did, the failing step's own first", func(t *testing.T) {
		status, out := post(t, app, `{"id": "PR-3", "type": "purchase", "customer": "initech", "items": [{"sku": "seat", "quantity": 2}, {"sku": "addon", "quantity": 9}]}`)
		assert.Equal(t, http.StatusUnprocessableEntity, status)
		assert.Equal(t, "vendor refused POST /licenses: quota exceeded: 9 > 5", out["error"])
		subs, licenses, approved, _ := api.Snapshot()
		assert.Len(t, subs, 1, "PR-3's subscription deleted")
		assert.Len(t, licenses, 2, "PR-3's seat licenses revoked")
		assert.Equal(t, []string{"PR-1", "PR-2"}, approved)
		_, tx, steps := selections(t, app, "PR-3")
		assert.Equal(t, "purchase", tx)
		assert.Equal(t, []string{
			"resolve_tenant=ok", "create_subscription=ok", "assign_license=ok", "assign_license=stop",
			"compensate(assign_license)=ok", "compensate(assign_license)=ok", "compensate(create_subscription)=ok",
		}, steps, "each undone once, in reverse: the refused item (nothing to revoke), the assigned one, the subscription")
	})

	t.Run("a vendor down at approval: retried, then everything undone", func(t *testing.T) {
		status, _ := post(t, app, `{"id": "down-4", "type": "purchase", "customer": "acme", "items": [{"sku": "seat", "quantity": 1}]}`)
		assert.Equal(t, http.StatusServiceUnavailable, status, "left for the client to send again")
		subs, licenses, _, _ := api.Snapshot()
		assert.Len(t, subs, 1)
		assert.Len(t, licenses, 2)
		_, _, steps := selections(t, app, "down-4")
		assert.Contains(t, steps, "approve=retry-exhausted")
		assert.Contains(t, steps, "compensate(create_subscription)=ok")
	})
	require.NoError(t, stop())
}

// TestCacheOutlivesRestart: the SQLite cache provider keeps the tenant
// across a restart of the app.
func TestCacheOutlivesRestart(t *testing.T) {
	api := fulfillment.NewVendorAPI(5)
	vendor := httptest.NewServer(api)
	defer vendor.Close()
	dir := t.TempDir()
	app, stop := start(t, dir, vendor.URL)
	status, _ := post(t, app, `{"id": "R-1", "type": "change", "customer": "acme", "items": []}`)
	require.Equal(t, http.StatusOK, status)
	require.NoError(t, stop())
	app, stop = start(t, dir, vendor.URL)
	status, out := post(t, app, `{"id": "R-2", "type": "change", "customer": "acme"}`)
	require.Equal(t, http.StatusOK, status, "%v", out)
	_, _, _, lookups := api.Snapshot()
	assert.Equal(t, 1, lookups)
	_, _, steps := selections(t, app, "R-2")
	assert.Equal(t, []string{"resolve_tenant=ok", "when(assign_licenses)=skipped", "approve=ok"}, steps)
	require.NoError(t, stop())
}

func ExampleNewPurchaseSaga() {
	api := fulfillment.NewVendorAPI(5)
	vendor := httptest.NewServer(api)
	defer vendor.Close()
	providers, _ := fulfillment.NewProviders(vendor.URL, ":memory:", 0)
	defer providers.Close(context.Background())
	f, err := fulfillment.NewPurchaseSaga(providers, &fulfillment.AuditLog{})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := f.Run(context.Background(), map[string]any{
		"id": "PR-1", "type": "purchase", "customer": "acme",
		"items": []any{map[string]any{"sku": "seat", "quantity": 2}, map[string]any{"sku": "addon", "quantity": 7}},
	})
	fmt.Println(err)
	subs, licenses, _, _ := api.Snapshot()
	fmt.Println(out.View()["subscription_id"], len(subs), len(licenses))
	// Output:
	// flow "purchase": step "assign_license": stop: vendor refused POST /licenses: quota exceeded: 7 > 5
	// sub-1 0 0
}

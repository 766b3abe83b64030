package fulfillmentsaga

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/svcflow/svcflow/errors"
)

// Vendor is the client of the vendor's API that the transactions are
// given (a provided singleton): it creates and deletes subscriptions and
// licenses, and approves requests. A refusal of the vendor (409) is a
// Stop naming it; a vendor that is down (5xx) a Retry.
type Vendor struct {
	URL    string
	Client *http.Client
}

// call sends a JSON request and decodes a JSON answer into out.
func (v *Vendor) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, v.URL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	client := v.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return errors.Retry(fmt.Errorf("vendor %s %s: %w", method, path, err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusConflict:
		var e struct{ Error string }
		_ = json.Unmarshal(data, &e)
		return errors.Stopf("vendor refused %s %s: %s", method, path, e.Error)
	case resp.StatusCode >= 500:
		return errors.Retry(fmt.Errorf("vendor %s %s: %s", method, path, resp.Status))
	case resp.StatusCode >= 300:
		return fmt.Errorf("vendor %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// Tenant returns the vendor's tenant of a customer.
func (v *Vendor) Tenant(ctx context.Context, customer string) (string, error) {
	var out struct{ Tenant string }
	err := v.call(ctx, http.MethodGet, "/tenants/"+customer, nil, &out)
	return out.Tenant, err
}

// CreateSubscription creates a subscription of a tenant for a request.
func (v *Vendor) CreateSubscription(ctx context.Context, tenant, request string) (string, error) {
	var out struct{ ID string }
	err := v.call(ctx, http.MethodPost, "/subscriptions", map[string]string{"tenant": tenant, "request": request}, &out)
	return out.ID, err
}

// DeleteSubscription deletes a subscription.
func (v *Vendor) DeleteSubscription(ctx context.Context, id string) error {
	return v.call(ctx, http.MethodDelete, "/subscriptions/"+id, nil, nil)
}

// AssignLicenses assigns quantity licenses of sku to a tenant.
func (v *Vendor) AssignLicenses(ctx context.Context, tenant, sku string, quantity int) (string, error) {
	var out struct{ ID string }
	err := v.call(ctx, http.MethodPost, "/licenses", map[string]any{"tenant": tenant, "sku": sku, "quantity": quantity}, &out)
	return out.ID, err
}

// RevokeLicenses revokes an assignment of licenses.
func (v *Vendor) RevokeLicenses(ctx context.Context, id string) error {
	return v.call(ctx, http.MethodDelete, "/licenses/"+id, nil, nil)
}

// Approve tells the marketplace the request is fulfilled.
func (v *Vendor) Approve(ctx context.Context, request string) error {
	return v.call(ctx, http.MethodPost, "/approvals", map[string]string{"request": request}, nil)
}

// VendorAPI is an in-memory vendor: the server the example's tests start
// (and `purchase -vendor demo` serves). Licenses beyond Quota per
// assignment are refused (409); approving a request whose id starts with
// "down-" fails with 503.
type VendorAPI struct {
	Quota int

	mu            sync.Mutex
	next          int
	TenantLookups int               // GET /tenants calls
	Subscriptions map[string]string // id -> tenant
	Licenses      map[string]string // id -> tenant/sku/quantity
	Approved      []string
}

// NewVendorAPI returns an empty vendor allowing quota licenses at once.
func NewVendorAPI(quota int) *VendorAPI {
	return &VendorAPI{Quota: quota, Subscriptions: map[string]string{}, Licenses: map[string]string{}}
}

// Snapshot returns the live subscriptions, licenses and approvals.
func (a *VendorAPI) Snapshot() (subs, licenses map[string]string, approved []string, lookups int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	subs, licenses = map[string]string{}, map[string]string{}
	for k, v := range a.Subscriptions {
		subs[k] = v
	}
	for k, v := range a.Licenses {
		licenses[k] = v
	}
	return subs, licenses, append([]string(nil), a.Approved...), a.TenantLookups
}

// ServeHTTP implements http.Handler: the vendor API.
func (a *VendorAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var in struct {
		Tenant, Request, SKU string
		Quantity             int
	}
	if r.Body != nil {
		_ = json.NewDecoder(r.Body).Decode(&in)
	}
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	id := func(prefix string) string { a.next++; return fmt.Sprintf("%s-%d", prefix, a.next) }
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/tenants/"):
		a.TenantLookups++
		reply(http.StatusOK, map[string]string{"tenant": "t-" + strings.TrimPrefix(r.URL.Path, "/tenants/")})
	case r.Method == http.MethodPost && r.URL.Path == "/subscriptions":
		sid := id("sub")
		a.Subscriptions[sid] = in.Tenant
		reply(http.StatusCreated, map[string]string{"id": sid})
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/subscriptions/"):
		delete(a.Subscriptions, strings.TrimPrefix(r.URL.Path, "/subscriptions/"))
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && r.URL.Path == "/licenses":
		if in.Quantity > a.Quota {
			reply(http.StatusConflict, map[string]string{"error": fmt.Sprintf("quota exceeded: %d > %d", in.Quantity, a.Quota)})
			return
		}
		lid := id("lic")
		a.Licenses[lid] = fmt.Sprintf("%s/%s/%d", in.Tenant, in.SKU, in.Quantity)
		reply(http.StatusCreated, map[string]string{"id": lid})
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/licenses/"):
		delete(a.Licenses, strings.TrimPrefix(r.URL.Path, "/licenses/"))
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && r.URL.Path == "/approvals":
		if strings.HasPrefix(in.Request, "down-") {
			reply(http.StatusServiceUnavailable, map[string]string{"error": "maintenance"})
			return
		}
		a.Approved = append(a.Approved, in.Request)
		reply(http.StatusOK, map[string]string{})
	default:
		reply(http.StatusNotFound, map[string]string{"error": "no such endpoint"})
	}
}

// Package fulfillmentsaga is the fulfillment framework's PurchaseSaga in
// svcflow: transactions with a name, should_execute, execute and
// compensate; the transactions and middlewares of each request chosen by
// functions of the request; a cache (SQLite) and a vendor client given to
// the transactions by a service provider; run from an event: a channel
// with an HTTP source, its messages in an SQLite store.
//
//	go run ./examples/fulfillment-saga/cmd/purchase -vendor demo
//	curl -s localhost:8080/purchases -H 'Idempotency-Key: PR-1' \
//	  -d '{"id": "PR-1", "type": "purchase", "customer": "acme", "tier": "enterprise", "items": [{"sku": "seat", "quantity": 3}]}'
package fulfillmentsaga

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/svcflow/svcflow/adapters/cache"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/provide"
)

// Item is a line of a request: licenses of a SKU.
type Item struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// The request's keys (the body of the HTTP request).
var (
	RequestID = fc.Key[string]("id")
	Type      = fc.Key[string]("type") // purchase or change
	Customer  = fc.Key[string]("customer")
	Tier      = fc.Key[string]("tier") // enterprise requests are audited
	Items     = fc.Key[[]Item]("items")
)

// Transaction is a business transaction as the fulfillment framework
// declares one. Execute and Compensate are services over the request's
// context, typically flow.Func steps whose inputs receive provided values
// (the vendor client, the cache).
type Transaction struct {
	Name          string
	ShouldExecute func(ctx context.Context, request *fc.Context) bool // nil: always
	Execute       flow.Service                                        // named Name
	Compensate    flow.Service                                        // nil: nothing to undo
}

// step returns the transaction as a step of a saga: run when
// ShouldExecute holds, undone when the saga does not complete after it ran
// (or, the saga compensating failed steps too, when it failed). The
// compensation is a flow of its own, given the same providers and able to
// read every key of the request.
func (t Transaction) step(c *provide.Container) (flow.Service, error) {
	s := t.Execute
	if t.Compensate != nil {
		var needs []fc.Info
		if ct, ok := t.Compensate.(flow.Contractor); ok {
			for _, k := range ct.Contract().Needs {
				k.Optional = true // the step may have failed before writing it
				needs = append(needs, k)
			}
		}
		undo, err := flow.New(t.Name+".compensate", t.Compensate).Input(needs...).Provide(c).Build()
		if err != nil {
			return nil, err
		}
		s = flow.Compensate(s, func(ctx context.Context, request *fc.Context, cause error) error {
			return undo.RunContext(ctx, request)
		})
	}
	if t.ShouldExecute != nil {
		s = flow.WhenFunc(t.Name, t.ShouldExecute, s)
	}
	return s, nil
}

func isPurchase(ctx context.Context, c *fc.Context) bool { t, _ := Type.Get(c); return t == "purchase" }

func hasItems(ctx context.Context, c *fc.Context) bool {
	items, _ := Items.Get(c)
	return len(items) > 0
}

// ResolveTenant finds the customer's tenant at the vendor, through the
// cache: a customer's tenant is looked up once per TTL, across restarts.
var ResolveTenant = Transaction{
	Name: "resolve_tenant",
	Execute: flow.Func("resolve_tenant", func(ctx context.Context, in struct {
		Customer string
		Cache    cache.Cache `provide:""`
		Vendor   *Vendor     `provide:""`
	}) (struct{ TenantID string }, error) {
		tenant, err := cache.Remember(ctx, in.Cache, "tenant:"+in.Customer, 0, func(ctx context.Context) (string, error) {
			return in.Vendor.Tenant(ctx, in.Customer)
		})
		return struct{ TenantID string }{tenant}, err
	}),
}

// CreateSubscription creates the tenant's subscription of a purchase, and
// deletes it when the saga fails.
var CreateSubscription = Transaction{
	Name:          "create_subscription",
	ShouldExecute: isPurchase,
	Execute: flow.Func("create_subscription", func(ctx context.Context, in struct {
		ID       string
		TenantID string
		Vendor   *Vendor `provide:""`
	}) (struct{ SubscriptionID string }, error) {
		id, err := in.Vendor.CreateSubscription(ctx, in.TenantID, in.ID)
		return struct{ SubscriptionID string }{id}, err
	}),
	Compensate: flow.Func("delete_subscription", func(ctx context.Context, in struct {
		SubscriptionID string  `flow:",optional"`
		Vendor         *Vendor `provide:""`
	}) (struct{}, error) {
		if in.SubscriptionID == "" {
			return struct{}{}, nil // failed before creating it
		}
		return struct{}{}, in.Vendor.DeleteSubscription(ctx, in.SubscriptionID)
	}),
}

// assignOne assigns the licenses of one item; revokeOne undoes it, on the
// item's own context.
var (
	assignOne = flow.Func("assign_license", func(ctx context.Context, in struct {
		Item     Item
		TenantID string
		Vendor   *Vendor `provide:""`
	}) (struct{ LicenseID string }, error) {
		id, err := in.Vendor.AssignLicenses(ctx, in.TenantID, in.Item.SKU, in.Item.Quantity)
		return struct{ LicenseID string }{id}, err
	})
	revokeOne = flow.Func("revoke_license", func(ctx context.Context, in struct {
		LicenseID string  `flow:",optional"`
		Vendor    *Vendor `provide:""`
	}) (struct{}, error) {
		if in.LicenseID == "" {
			return struct{}{}, nil
		}
		return struct{}{}, in.Vendor.RevokeLicenses(ctx, in.LicenseID)
	})
)

// Approve tells the marketplace the request is done. It has nothing to
// undo: it is the last transaction.
var Approve = Transaction{
	Name: "approve",
	Execute: flow.Func("approve", func(ctx context.Context, in struct {
		ID     string
		Vendor *Vendor `provide:""`
	}) (struct{ Approved bool }, error) {
		return struct{ Approved bool }{true}, in.Vendor.Approve(ctx, in.ID)
	}),
}

// Transactions returns the name of the list of transactions of a request
// (the fulfillment framework's transactions(request)): purchases create a
// subscription, changes only assign licenses.
func Transactions(ctx context.Context, request *fc.Context) (string, error) {
	return Type.Get(request)
}

// Middlewares returns the name of the middleware stack of a request (the
// fulfillment framework's middlewares(request)): enterprise requests are
// audited.
func Middlewares(ctx context.Context, request *fc.Context) (string, error) {
	if tier, _, _ := Tier.Lookup(request); tier == "enterprise" {
		return "audited", nil
	}
	return "standard", nil
}

// AuditLog records what audited requests did. It is safe for concurrent
// use.
type AuditLog struct {
	mu    sync.Mutex
	lines []string
	log   *slog.Logger
}

// Lines returns the records so far.
func (a *AuditLog) Lines() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.lines...)
}

// Middleware records each transaction attempt of an audited request: the
// request, the step and its outcome.
func (a *AuditLog) Middleware(next flow.Handler) flow.Handler {
	return func(ctx context.Context, s *flow.StepInfo, c *fc.Context) error {
		err := next(ctx, s, c)
		id, _ := RequestID.Get(c)
		line := fmt.Sprintf("%s %s %s", id, s.Name, errors.KindOf(err))
		a.mu.Lock()
		a.lines = append(a.lines, line)
		a.mu.Unlock()
		if a.log != nil {
			a.log.InfoContext(ctx, "audit", "request", id, "step", s.Name, "outcome", errors.KindOf(err).String())
		}
		return err
	}
}

// NewPurchaseSaga returns the purchase flow: the saga of the transactions
// the request's type selects, each compensated (the failing one too, as
// the fulfillment framework does) when a later one fails, under the
// middleware the request's tier selects. c provides the transactions'
// *Vendor and cache.Cache.
func NewPurchaseSaga(c *provide.Container, audit *AuditLog) (*flow.Flow, error) {
	// One compensation per item assigned, given that item's context.
	one, err := Transaction{Name: "assign_license", Execute: assignOne, Compensate: revokeOne}.step(c)
	if err != nil {
		return nil, err
	}
	assign := Transaction{
		Name:          "assign_licenses",
		ShouldExecute: hasItems,
		Execute:       flow.Each("items", one).As("item").Collect("license_id", "license_ids"),
	}
	var steps = map[string]flow.Service{}
	for _, t := range []Transaction{ResolveTenant, CreateSubscription, assign, Approve} {
		s, err := t.step(c)
		if err != nil {
			return nil, err
		}
		steps[t.Name] = s
	}
	// The same steps in both lists: only one list runs per request.
	return flow.New("purchase", flow.Saga(flow.Select("transactions", Transactions,
		flow.On("purchase", steps["resolve_tenant"], steps["create_subscription"], steps["assign_licenses"], steps["approve"]),
		flow.On("change", steps["resolve_tenant"], steps["assign_licenses"], steps["approve"]),
	)).CompensateFailed()).
		Input(RequestID, Type, Customer, Tier.Optional(), Items.Optional()).
		Retry(errors.Policy{MaxAttempts: 2, Initial: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond}).
		UseSelected(Middlewares, map[string][]flow.Middleware{"audited": {audit.Middleware}, "standard": nil}).
		Provide(c).
		Build()
}

// Package flowtest tests services and flows with tables: each row gives an
// input context, the keys the output must hold, and the error expected.
//
//	import (
//		"testing"
//
//		"github.com/svcflow/svcflow/errors"
//		"github.com/svcflow/svcflow/flow"
//		"github.com/svcflow/svcflow/flow/flowtest"
//	)
//
//	func orderFlow() *flow.Builder {
//		return flow.New("order", Validate, Price, Charge, Notify).Input(Items, Tier)
//	}
//
//	func TestOrder(t *testing.T) {
//		flowtest.RunFlow(t, orderFlow, []flowtest.Case{{
//			Name:  "gold customer pays less",
//			Input: map[string]any{"items": items, "tier": "gold"},
//			Want:  map[string]any{"total": 16, "payment_id": "p-1"},
//			Stubs: map[string]*flowtest.Stub{
//				"charge": {Set: map[string]any{"payment_id": "p-1"}, Want: map[string]any{"total": 16}},
//			},
//		}, {
//			Name:        "no items",
//			Input:       map[string]any{"items": []any{}, "tier": "gold"},
//			Err:         errors.KindStop,
//			ErrContains: "no items",
//			Absent:      []string{"total"},
//		}, {
//			Name:  "card declined",
//			Input: map[string]any{"items": items, "tier": "gold"},
//			Stubs: map[string]*flowtest.Stub{"charge": {Err: errors.Stop("card declined")}},
//			Err:   errors.KindStop,
//		}})
//	}
//
// [RunService] runs the same table against one service; [RunFlow] builds
// the flow afresh for each case from a function, so that each case's
// [Stub]s (which replace steps by name, see flow.Builder.Replace) stay in
// their case. Options narrow the run: [Through] stops after a step, [From]
// starts at one, [RetryPolicy] sets the retry policy (errors.NoRetry makes
// a case expecting errors.KindRetry end at once).
//
// # Matching
//
// Want is a subset match: other keys of the output are ignored, and
// values compare by their JSON form, by the rule the tests: tables of
// YAML configurations use too: 16, 16.0 and int64(16) agree, numbers that
// are not integers agree within a relative 1e-9 (float rounding), a struct
// equals the map that encodes like it, a nested map needs only the keys it
// names, lists match element by element. Absent lists keys that must not
// be there. Err is the outcome expected, an errors.Kind: errors.KindOK
// (the zero value) for success, errors.KindStop, errors.KindRetry (which
// also matches a run whose retries ran out), errors.KindRetryExhausted,
// errors.KindFatal, errors.KindFailed, errors.KindPanic or
// errors.KindCanceled; ErrAny expects any error; ErrContains checks the
// error's text.
//
// # Failures
//
// Each failure is one readable line, naming the case's subtest:
//
//	key "total": want 16, got 20
//	missing keys: "discount" (present: items, tier, total)
//	unexpected error (stop): flow "order": step "validate": stop: no items
//	error kind: want retry, got failed: flow "order": step "charge": boom
//	stub "charge": call 1: key "total": want 16, got 20
//
// and a failing flow case logs the run's trace (which steps ran, and how
// each ended) and its output context.
//
// # Stubs
//
// A [Stub] writes its Set keys and returns its Err (or runs its Func), and
// records the context of every call: Want checks each call received some
// keys, and [Stub.Calls] returns the contexts for any other assertion,
// from Case.Check or after RunFlow returns. A stubbed step never runs.
//
// Case.MockInput mocks a step's input instead (pypeman's
// mock(input=...)): the real step runs, on its context with the given
// keys written over it:
//
//	MockInput: map[string]map[string]any{"charge": {"total": 0}},
package flowtest

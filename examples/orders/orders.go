// Package orders holds the order-processing example: a YAML flow that
// validates an order, prices it, forks on the customer's tier for the
// discount, and reserves stock and charges the payment in a saga with
// retries. flowrun embeds it: "flowrun run --example orders".
package orders

import _ "embed"

// YAML is orders.yaml, the flows and their test cases.
//
//go:embed orders.yaml
var YAML []byte

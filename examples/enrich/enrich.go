// Package enrich holds the customer-enrichment example: a YAML flow that
// calls a customers service over HTTP (with timeout, retries and a 404
// fallback) and forks on the answer. Its test starts the service.
package enrich

import _ "embed"

// YAML is enrich.yaml, the flow and its test cases.
//
//go:embed enrich.yaml
var YAML []byte

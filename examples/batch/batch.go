// Package batch holds the batch-transform example: a YAML flow run over
// every record of a JSONL export with flowrun run --jsonl. Its test checks
// the output file record by record.
package batch

import _ "embed"

// YAML is batch.yaml, the flow and its test cases.
//
//go:embed batch.yaml
var YAML []byte

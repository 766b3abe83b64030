package cli

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// validate builds a production: section as serve would and reports its
// problems at file:line:col.
func TestValidateProduction(t *testing.T) {
	file := writeFile(t, "iop.yaml", `version: 1
flows:
  op:
    steps: [{set: {x: "1"}}]
production:
  Python.Op: {kind: operation, flow: op}
  Python.BP: {kind: process, flow: op, targets: {Operation: Python.Op}}
`)
	r := flowrun(t, "", "validate", file)
	assert.Equal(t, 0, r.code, r.errOut)
	assert.Equal(t, "ok: 1 flow, 2 production components, 0 test cases in "+file+"\n", r.out)

	bad := writeFile(t, "bad.yaml", `version: 1
flows:
  op:
    steps: [{set: {x: "1"}}]
production:
  Python.Op: {kind: operation, flow: op}
  Python.BP: {kind: process, flow: op, targets: {Operation: Python.Nope}}
`)
	r = flowrun(t, "", "validate", bad)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.errOut, bad+`:7:61: component "Python.BP": target Operation: unknown component "Python.Nope": expected one of Python.BP, Python.Op`)
}

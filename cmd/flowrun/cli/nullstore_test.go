package cli

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestMessagesOnNullStore: flowrun messages on a channel whose store is
// none says the channel has no store, and validate accepts it.
func TestMessagesOnNullStore(t *testing.T) {
	conf := writeFile(t, "none.yaml", strings.Replace(messagesYAML, "{sqlite: STORE}", "none", 1))
	r := flowrun(t, "", "validate", conf)
	assert.Equal(t, ExitOK, r.code, r.errOut)
	for _, args := range [][]string{{"messages", conf, "--channel", "c"}, {"messages", conf, "--channel", "c", "show", "some-id"}} {
		r = flowrun(t, "", args...)
		assert.Equal(t, ExitFailure, r.code)
		assert.Contains(t, r.errOut, `channel "c": store none: no such store: the channel has no store (store: none): nothing is recorded`)
	}
}

package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/serve"
)

// TestPlanCommandsUsage: the plan commands' mistakes are usage errors
// or name the file; a plan is reviewed without a server.
func TestPlanCommandsUsage(t *testing.T) {
	r := flowrun(t, "", "plan")
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, "expected the new configuration files")
	r = flowrun(t, "", "apply")
	assert.Equal(t, ExitUsage, r.code)
	r = flowrun(t, "", "verify", "a.json", "b.json")
	assert.Equal(t, ExitUsage, r.code)
	r = flowrun(t, "", "rollback")
	assert.Equal(t, ExitUsage, r.code)

	notPlan := writeFile(t, "x.json", `{"a": 1}`)
	r = flowrun(t, "", "apply", notPlan)
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, "not a plan")

	p := serve.Plan{Version: serve.PlanVersion, Base: "sha256:aa", Fingerprint: "sha256:bb", Server: "127.0.0.1:9191",
		Config: serve.Files{Files: []serve.File{{Name: "/srv/shop.yaml", Content: "version: 1\n"}}},
		Changes: []serve.Change{
			{Kind: serve.Add, What: "channel", Name: "refunds", Class: serve.Safe},
			{Kind: serve.Remove, What: "channel", Name: "legacy", Class: serve.Destructive, Detail: "its sources stop taking messages"},
		}}
	b, err := json.Marshal(p)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "plan.json")
	require.NoError(t, os.WriteFile(path, b, 0o600))
	r = flowrun(t, "", "plan", "--review", path)
	require.Equal(t, ExitOK, r.code, r.errOut)
	assert.Equal(t, `plan for 127.0.0.1:9191
  running: sha256:aa
  new:     sha256:bb
  files:   /srv/shop.yaml
! destructive remove channel legacy: its sources stop taking messages
  safe        add    channel refunds
2 change(s): 1 safe, 1 destructive
destructive changes apply only with: flowrun apply PLAN --allow-destructive
`, r.out)

	// No server there: the error names the address.
	r = flowrun(t, "", "verify", path, "--server", "127.0.0.1:1", "--token", "x")
	assert.Equal(t, ExitFailure, r.code)
	assert.Contains(t, r.errOut, "127.0.0.1:1/config")
}

package store_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoSQLite checks that a program importing only package store
// links no SQLite: the backends that need a driver live in packages of
// their own.
func TestLinksNoSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(gocmd, "list", "-deps", "github.com/svcflow/svcflow/adapters/store").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(strings.ToLower(pkg), "sqlite") {
			t.Errorf("package store depends on %s", pkg)
		}
	}
}

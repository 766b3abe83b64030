package config_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/config"
	"github.com/svcflow/svcflow/flow"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata/bad")

// Item is an order line of the typed test service.
type Item struct {
	SKU   string  `json:"sku"`
	Price float64 `json:"price"`
	Qty   int     `json:"qty"`
}

// testRegistry has a typed Go service, so build checks see its contract.
func testRegistry() *config.Registry {
	r := config.NewRegistry()
	r.MustRegister(flow.Func("subtotal", func(_ context.Context, in struct{ Items []Item }) (struct{ Subtotal float64 }, error) {
		var s float64
		for _, it := range in.Items {
			s += it.Price * float64(it.Qty)
		}
		return struct{ Subtotal float64 }{s}, nil
	}), "sum of price * qty")
	return r
}

var positioned = regexp.MustCompile(`^testdata/bad/[a-z_]+\.yaml:\d+:\d+: \S`)

// TestBadFiles loads every file of testdata/bad and compares the errors
// with its .golden file: each problem at file:line:col with its message.
func TestBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 20)
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			_, err := config.Load([]string{file}, config.WithRegistry(testRegistry()))
			require.Error(t, err, "a broken file must not load")
			var errs config.Errors
			require.ErrorAs(t, err, &errs)
			got := err.Error() + "\n"
			for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
				assert.Regexp(t, positioned, line, "every problem has file:line:col")
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test -update to create it")
			assert.Equal(t, string(want), got)
		})
	}
}

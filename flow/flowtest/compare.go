package flowtest

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/internal/compare"
)

// subset compares the keys of want with those of got (by compare.Match).
// It returns the keys of want missing from got, and one message per key
// whose value differs: `key "total": want 16, got 20`. Both are sorted by
// key.
func subset(want map[string]any, got *fc.Context) (missing []string, diffs []string) {
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got.Get(k)
		if !ok {
			missing = append(missing, k)
			continue
		}
		if !compare.Match(want[k], g) {
			diffs = append(diffs, fmt.Sprintf("key %q: want %s, got %s", k, compare.Text(want[k]), compare.Text(g)))
		}
	}
	return missing, diffs
}

// quoteAll formats keys as "a", "b".
func quoteAll(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(q, ", ")
}

// deepCopy copies the maps and slices of JSON shape inside v, so a
// recorded context does not change when a later step mutates a nested
// value in place. Other values are kept as they are.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

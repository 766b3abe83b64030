package flow_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// TestAttempt: middleware learns which attempt of a step it wraps.
func TestAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var seen []int
		record := func(next flow.Handler) flow.Handler {
			return func(ctx context.Context, s *flow.StepInfo, c *fc.Context) error {
				seen = append(seen, flow.Attempt(ctx, s))
				return next(ctx, s, c)
			}
		}
		calls := 0
		f := flow.New("f",
			flow.Step("flaky", func(ctx context.Context, c *fc.Context) error {
				if calls++; calls < 3 {
					return errors.Retry(errors.New("busy"))
				}
				return nil
			}),
			flow.Step("then", func(ctx context.Context, c *fc.Context) error { return nil }),
		).Retry(errors.Policy{MaxAttempts: 3, Initial: 10 * time.Millisecond}).Use(record).MustBuild()
		_, err := f.Run(t.Context(), nil)
		require.NoError(t, err)
		assert.Equal(t, []int{1, 2, 3, 1}, seen)
	})
}

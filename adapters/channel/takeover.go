package channel

import (
	"context"
	"fmt"

	"github.com/svcflow/svcflow/adapters/store"
)

// RecoverOwed runs again, in the background, the messages owed in the
// store (pending or processing, oldest first), as Start does unless
// Config.DeferRecovery is set, and returns how many it found. The channel
// must be running; Stop waits for these runs (or leaves the messages not
// yet taken owed). Serve's hot reload calls it once the instance the
// channel replaced has stopped.
func (c *Channel) RecoverOwed(ctx context.Context) (int, error) {
	if err := c.errNotBuilt(); err != nil {
		return 0, err
	}
	c.mu.Lock()
	if c.state != StateRunning {
		st := c.state
		c.mu.Unlock()
		return 0, fmt.Errorf("channel %q: recover: %s", c.cfg.Name, st)
	}
	intake := c.intake
	c.inflight.Add(1) // Stop waits for the recovery
	c.mu.Unlock()
	owed, err := store.Recover(ctx, c.store)
	if err != nil || len(owed) == 0 {
		c.inflight.Done()
		if err != nil {
			return 0, fmt.Errorf("channel %q: %w", c.cfg.Name, err)
		}
		return 0, nil
	}
	c.owed.Add(int64(len(owed)))
	go func() {
		defer c.inflight.Done()
		c.recoverAll(intake, context.WithoutCancel(ctx), owed)
	}()
	return len(owed), nil
}

package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/adapters/store/storetest"
	"github.com/svcflow/svcflow/internal/pgtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// tables numbers the table prefixes of the tests, so that each store
// opened by a test starts empty.
var tables atomic.Int64

func newTable() string { return fmt.Sprintf("t%d", tables.Add(1)) }

func open(t *testing.T, url, table string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, Options{Table: table})
	require.NoError(t, err)
	return s
}

func TestStore(t *testing.T) {
	srv := pgtest.Start(t)
	t.Run("conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store { return open(t, srv.URL, newTable()) })
	})
	t.Run("durable", func(t *testing.T) {
		table := newTable()
		storetest.RunDurable(t, func(t *testing.T) store.Store { return open(t, srv.URL, table) })
	})
}

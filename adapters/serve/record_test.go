package serve_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
)

// record: on a when block records every message that enters the block,
// in its own store, through a running channel.
const recordYAML = `version: 1
flows:
  orders:
    input: [tier, total]
    steps:
      - when:
          if: tier == "gold"
          steps:
            - stop: {if: "total <= 0", reason: "empty gold order"}
            - set: {discount: "total * 0.2"}
        record: sqlite:gold/gold.db
      - set: {seen: true}
channels:
  intake:
    from: {http: {listen: "127.0.0.1:0", path: /orders}}
    flow: orders
    store: memory
`

func TestRecordStepThroughChannel(t *testing.T) {
	cfg := load(t, recordYAML)
	dir := filepath.Dir(cfg.Files()[0])
	srv, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "127.0.0.1:0", Drain: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	addrs := srv.Addrs()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- srv.Run(ctx) }()
	base, admin := "http://"+addrs["http 127.0.0.1:0"], "http://"+addrs["admin"]
	require.Eventually(t, func() bool {
		r, err := http.Get(admin + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	}, 5*time.Second, 10*time.Millisecond)
	codes := map[string]int{}
	for _, body := range []string{`{"tier": "gold", "total": 10}`, `{"tier": "silver", "total": 10}`, `{"tier": "gold", "total": 0}`} {
		r, err := http.Post(base+"/orders", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		r.Body.Close()
		codes[body] = r.StatusCode
	}
	assert.Equal(t, 200, codes[`{"tier": "gold", "total": 10}`])
	assert.Equal(t, 422, codes[`{"tier": "gold", "total": 0}`])
	cancel()
	require.NoError(t, <-done)

	// The path is relative to the file's folder.
	st, err := serve.OpenStore(nil, "sqlite:"+filepath.Join(dir, "gold", "gold.db"))
	require.NoError(t, err)
	defer st.Close()
	recs, err := st.Search(context.Background(), store.Query{IDContains: "@orders/when("})
	require.NoError(t, err)
	require.Len(t, recs, 3, "every run reaching the block")
	byState := map[store.State]*store.Record{}
	for _, r := range recs {
		byState[r.State] = r
	}
	require.Contains(t, byState, store.Rejected)
	assert.Equal(t, "empty gold order", byState[store.Rejected].Reason)
	id := byState[store.Rejected].Message.Meta["id"]
	require.NotEmpty(t, id, "the run's meta, with the channel message's ID")
	assert.True(t, strings.HasPrefix(byState[store.Rejected].Message.ID, id+"@"), "the ID starts with the channel message's ID")
	n, err := st.Count(context.Background(), store.Query{States: []store.State{store.Done}})
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}

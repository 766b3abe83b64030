package serve_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/serve"
	"github.com/svcflow/svcflow/adapters/store"
	"github.com/svcflow/svcflow/internal/testfs"
)

const diskFull = `version: 1
flows:
  orders:
    input: [n]
    steps:
      - set: {total: "n * 10", pad: "'PAD'"}
channels:
  intake:
    from: {http: {listen: "127.0.0.1:0", path: /orders}}
    flow: orders
    store: sqlite:DB
`

// fill writes a file in dir until the file system is full, and returns
// its path.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for size := len(chunk); size > 0; {
		if _, err := f.Write(chunk[:size]); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "filling: %v", err)
			size /= 2 // fill the last bytes too
		}
	}
	return path
}

type reply struct {
	code       int
	retryAfter string
	body       string
}

func postOrder(t *testing.T, url, key string, n int) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(fmt.Sprintf(`{"n": %d}`, n)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(b)}
}

func readyz(t *testing.T, admin string) (int, string, map[string]any) {
	t.Helper()
	resp, err := http.Get(admin + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, resp.Header.Get("Retry-After"), body
}

// TestDiskFull: the SQLite store of a served channel on a small tmpfs.
// When the disk fills up, requests are refused with 503 and Retry-After
// and /readyz turns 503 naming the channel and "store not writable";
// when space returns, /readyz is 200 again without any request, the
// refused requests succeed when sent again, and every request answered
// 2xx is done in the store. Skipped where mounting is not permitted.
func TestDiskFull(t *testing.T) {
	tmp := testfs.Tmpfs(t, "4m")
	db := filepath.Join(tmp, "intake.db")
	cfg := load(t, strings.ReplaceAll(strings.ReplaceAll(diskFull, "DB", db), "PAD", strings.Repeat("x", 2000)))
	srv, err := serve.New(cfg, serve.Options{DataDir: t.TempDir(), Admin: "127.0.0.1:0", Drain: 5 * time.Second})
	require.NoError(t, err)
	require.NoError(t, srv.Listen())
	addrs := srv.Addrs()
	url, admin := "http://"+addrs["http 127.0.0.1:0"]+"/orders", "http://"+addrs["admin"]
	runCtx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	defer func() {
		stop()
		require.NoError(t, <-done)
	}()
	require.Eventually(t, func() bool { code, _, _ := readyz(t, admin); return code == 200 }, 5*time.Second, 10*time.Millisecond)

	var accepted, refused []string
	bodies := map[string]int{} // the n of each key: a key is sent again with its body
	post := func(key string, n int) reply {
		bodies[key] = n
		r := postOrder(t, url, key, n)
		switch {
		case r.code >= 200 && r.code < 300:
			accepted = append(accepted, key)
		case r.code == http.StatusServiceUnavailable:
			assert.NotEmpty(t, r.retryAfter, "a 503 carries Retry-After: %s", r.body)
			refused = append(refused, key)
		default:
			t.Fatalf("%s: unexpected %d: %s", key, r.code, r.body)
		}
		return r
	}
	for i := range 10 {
		require.Equal(t, 200, post(fmt.Sprintf("before-%d", i), i).code)
	}

	filler := fill(t, tmp)
	// Requests go on; once the store's log cannot grow, they are refused.
	for i := 0; len(refused) < 3; i++ {
		require.Less(t, i, 2000, "the full disk never refused a request")
		post(fmt.Sprintf("full-%d", i), i)
	}
	code, retry, body := readyz(t, admin)
	assert.Equal(t, http.StatusServiceUnavailable, code, body)
	assert.NotEmpty(t, retry, "the /readyz 503 carries Retry-After")
	assert.Contains(t, body["not_ready"], "intake")
	assert.Contains(t, body["store_not_writable"], "intake")
	reasons, _ := body["reasons"].(map[string]any)
	assert.Contains(t, reasons["intake"], "store not writable")
	t.Log("readyz while full: ", reasons["intake"])
	assert.Contains(t, metricsText(t, admin), `svcflow_store_writable{channel="intake"} 0`)
	// Still full a while later: the probes fail too.
	time.Sleep(1500 * time.Millisecond)
	code, _, _ = readyz(t, admin)
	assert.Equal(t, http.StatusServiceUnavailable, code)

	// Space returns: /readyz recovers without traffic.
	require.NoError(t, os.Remove(filler))
	require.Eventually(t, func() bool { code, _, _ := readyz(t, admin); return code == 200 }, 10*time.Second, 50*time.Millisecond,
		"readiness returns once the store can be written")
	assert.Contains(t, metricsText(t, admin), `svcflow_store_writable{channel="intake"} 1`)
	for _, key := range refused {
		require.Equal(t, 200, post(key, bodies[key]).code, "a refused request sent again is served")
	}
	for i := range 10 {
		require.Equal(t, 200, post(fmt.Sprintf("after-%d", i), i).code)
	}

	ch, ok := srv.Channel("intake")
	require.True(t, ok)
	for _, key := range accepted {
		rec, err := ch.Store().Get(t.Context(), key)
		if assert.NoError(t, err, key) {
			assert.Equal(t, store.Done, rec.State, key)
		}
	}
	t.Logf("%d requests answered 2xx, all done; %d refused while the disk was full", len(accepted), len(refused))
}

func metricsText(t *testing.T, admin string) string {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

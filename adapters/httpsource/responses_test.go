package httpsource_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/httpsource"
)

// TestOnResponse: every response the server writes is reported with the
// route and the status: routed answers, refused bodies (413 on a chunked
// body too large, which still closes the connection), unknown paths,
// health.
func TestOnResponse(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	ts := startServer(t, httpsource.Config{MaxBodyBytes: 64, Addr: "127.0.0.1:0", OnResponse: func(server, route string, code int) {
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, "127.0.0.1:0", server)
		seen[route+" "+http.StatusText(code)]++
	}})
	src, err := ts.Route("POST", "/in")
	require.NoError(t, err)
	run(t, src, channel.HandlerFunc(echo))
	ts.waitReady(t)

	assert.Equal(t, 200, ts.do(t, "POST", "/in", "application/json", `{"a": 1}`).status)
	assert.Equal(t, 200, ts.do(t, "POST", "/in", "application/json", `{"a": 2}`).status)
	assert.Equal(t, 400, ts.do(t, "POST", "/in", "application/json", `{`).status)
	assert.Equal(t, 404, ts.do(t, "GET", "/nowhere", "", "").status)
	assert.Equal(t, 405, ts.do(t, "GET", "/in", "", "").status)
	assert.Equal(t, 200, ts.do(t, "GET", "/healthz", "", "").status)

	big := `{"a":"` + strings.Repeat("x", 100) + `"}`
	req, err := http.NewRequest("POST", ts.base+"/in", io.MultiReader(strings.NewReader(big))) // chunked
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	r, err := ts.client.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	assert.Equal(t, 413, r.StatusCode)
	assert.True(t, r.Close, "the connection of a body too large is closed")

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{
		"POST /in OK": 2, "POST /in Bad Request": 1, "POST /in Request Entity Too Large": 1,
		" Not Found": 1, " Method Not Allowed": 1, " OK": 1,
	}, seen)
}

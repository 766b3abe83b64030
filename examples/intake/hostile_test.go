package intake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// post sends body to the intake route with an Idempotency-Key (none when
// key is "") and returns the status and the decoded answer.
func post(t *testing.T, addr, key, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/orders", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(data, &out), "%s", data)
	return resp.StatusCode, out
}

// TestHostileInput runs the shipped intake example under flowrun serve and
// sends what an attacker would: each case is a defect of issue 9, kept as
// a regression test.
func TestHostileInput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowrun")
	}
	bin := buildFlowrun(t)
	led := &ledger{calls: map[string]int{}}
	ls := httptest.NewServer(led)
	defer ls.Close()
	addr := freeAddr(t)
	args := []string{"serve", "intake.yaml", "--data", t.TempDir(), "--admin", "off",
		"--set", "vars.ledger=" + ls.URL,
		"--set", "channels.intake.from.http.listen=" + addr}
	srv := start(t, bin, args, addr)
	order := `{"items": [{"sku": "a", "price": 2, "qty": 3}]}`

	t.Run("an idempotency key cannot inject a field into the booking", func(t *testing.T) {
		// The booking body is built by body_template from meta.id, the
		// client's Idempotency-Key: a key that closes the string and adds
		// "id" would book another order's id.
		const hostile = `x", "id": "victim`
		status, out := post(t, addr, hostile, order)
		require.Equal(t, http.StatusOK, status, "%v", out)
		assert.Equal(t, map[string]any{"booked": hostile}, out["booking"])
		led.mu.Lock()
		defer led.mu.Unlock()
		assert.Equal(t, 1, led.calls[hostile], "booked under the key as sent")
		assert.NotContains(t, led.calls, "victim")
	})

	t.Run("an idempotency key reused with another body is refused", func(t *testing.T) {
		status, first := post(t, addr, "o-reuse", order)
		require.Equal(t, http.StatusOK, status, "%v", first)
		status, again := post(t, addr, "o-reuse", order)
		assert.Equal(t, http.StatusOK, status)
		assert.Equal(t, first, again, "a retry is answered from the store")
		status, out := post(t, addr, "o-reuse", `{"items": [{"sku": "b", "price": 100, "qty": 1}]}`)
		assert.Equal(t, http.StatusUnprocessableEntity, status)
		assert.Contains(t, out["error"], "Idempotency-Key: reused with a different request")
		assert.NotContains(t, out, "total", "the first client's answer is not shown")
	})

	t.Run("input of the wrong type is a 422 naming the key, not a 500", func(t *testing.T) {
		for body, want := range map[string]string{
			`{"items": [{"sku": "a", "price": "x", "qty": 3}]}`: `set "total"`,
			`{"items": [{"sku": "a", "price": 2, "qty": "3"}]}`: `stop condition`,
			`{"items": "many"}`: `stop condition`,
		} {
			status, out := post(t, addr, "", body)
			assert.Equal(t, http.StatusUnprocessableEntity, status, "%s: %v", body, out)
			assert.Contains(t, out["error"], want, body)
			assert.Contains(t, out["error"], "(items: ", body)
		}
	})

	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, <-srv.done, "flowrun serve exits 0 on SIGTERM")
	log, err := os.ReadFile(srv.log)
	require.NoError(t, err)
	require.Contains(t, string(log), "level=INFO")
	assert.NotContains(t, string(log), "level=ERROR", "hostile input is not an error of the server")

	// After a restart the stored request hash still tells a retry from a
	// reuse. This time the ledger's url names it "localhost", a host the
	// booking step's allow_hosts does not list: new orders are refused
	// with 422 naming the host, and nothing is sent.
	localURL := strings.Replace(ls.URL, "127.0.0.1", "localhost", 1)
	args2 := append(slices.Clone(args), "--set", "vars.ledger="+localURL)
	srv = start(t, bin, args2, addr)
	status, refused := post(t, addr, "o-elsewhere", order)
	assert.Equal(t, http.StatusUnprocessableEntity, status)
	assert.Contains(t, refused["error"], `host "`+strings.TrimPrefix(localURL, "http://")+`" is not in allow_hosts`)
	led.mu.Lock()
	assert.NotContains(t, led.calls, "o-elsewhere")
	led.mu.Unlock()
	status, _ = post(t, addr, "o-reuse", `{"items": [{"sku": "b", "price": 100, "qty": 1}]}`)
	assert.Equal(t, http.StatusUnprocessableEntity, status, "reuse after a restart")
	status, out := post(t, addr, "o-reuse", order)
	assert.Equal(t, http.StatusOK, status, "retry after a restart")
	assert.EqualValues(t, 6, out["total"])
	require.NoError(t, srv.cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, <-srv.done, "flowrun serve exits 0 on SIGTERM")
}

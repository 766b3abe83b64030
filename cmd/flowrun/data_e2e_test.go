package main_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServeDataEndToEnd runs flowrun serve as a child process. `set:
// {audit: "$env"}`, which once put the context inside itself and crashed
// the server on encoding (for good: the message was recovered first on
// every restart), is answered and stored; an integer beyond 2^53 comes
// back from the response and from the store with all its digits.
func TestServeDataEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs flowrun")
	}
	bin := flowrunBin(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "data.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`version: 1
flows:
  f:
    input: [id]
    steps:
      - set: {audit: "$env", next: "id > 1e19"}
channels:
  c:
    from: {http: {listen: "`+addr+`", path: /in}}
    flow: f
    store: sqlite:`+filepath.Join(dir, "c.db")+`
`), 0o644))
	data := filepath.Join(dir, "data")
	cmd := exec.Command(bin, "serve", file, "--data", data, "--admin", "off", "--drain", "5s")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	post := func(key, body string) (int, string) {
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/in", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	var code int
	var body string
	require.Eventually(t, func() bool {
		code, body = post("big-1", `{"id": 12345678901234567891}`)
		return code == 200
	}, 30*time.Second, 20*time.Millisecond, "%d %s", code, body)
	assert.Contains(t, body, `"audit":{"id":12345678901234567891,"meta":{`)
	assert.Contains(t, body, `"id":12345678901234567891,"meta":{`)
	assert.Contains(t, body, `"next":true`)
	assert.NotContains(t, body, "12345678901234567000")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, "serve exits 0: %s", logs.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not stop: %s", logs.String())
	}

	r := flowrun(t, "", "messages", file, "--channel", "c", "--data", data, "show", "big-1")
	require.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, `"state": "done"`)
	assert.Contains(t, r.out, `12345678901234567891`)
	assert.NotContains(t, r.out, "12345678901234567000")
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/config"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/flow"
)

// doubleFlow doubles x; negative x stops, and so does x == 13: its
// expression fails on the input's type (a Stop naming the keys).
func doubleFlow(t *testing.T) *flow.Flow {
	cfg, err := config.LoadSources([]config.Source{{Name: "d.yaml", Data: []byte(`
flows:
  d:
    input: [x]
    steps:
      - stop: {if: "x < 0", reason: "negative: x < 0"}
      - set: {y: "x == 13 ? x.nope.y : x * 2"}
`)}})
	require.NoError(t, err)
	f, _ := cfg.Flow("d")
	return f
}

func records(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "{\"x\": %d}\n", i)
	}
	return b.String()
}

func TestBatchKeepsOrderAndNeverAborts(t *testing.T) {
	f := doubleFlow(t)
	in := records(500) + "\n   \n" + `{"x": -1}` + "\n" + `{"x": 13` + "\n" + `[1]` + "\n" + `{"x": 2}` // no final newline
	for _, workers := range []int{1, 2, 7} {
		var out bytes.Buffer
		st, err := runBatch(context.Background(), f, strings.NewReader(in), &out, batchOptions{workers: workers})
		require.NoError(t, err)
		assert.Equal(t, batchStats{records: 504, ok: 500, stopped: 2, failed: 2, lastLine: 506}, st.withoutTime(), "workers=%d", workers)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		require.Len(t, lines, 504)
		for i := range 500 {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(lines[i]), &m))
			if i == 13 {
				assert.Equal(t, "stop", m["kind"], lines[i])
				assert.Contains(t, m["error"], `set "y": expr`, lines[i])
				assert.Contains(t, m["error"], `(x: number)`, lines[i])
				assert.Equal(t, 14.0, m["record"])
				assert.Equal(t, map[string]any{"x": 13.0}, m["input"])
				continue
			}
			assert.Equal(t, float64(2*i), m["y"], "record %d keeps its place", i)
		}
		assert.JSONEq(t, `{"record": 503, "kind": "stop", "error": "flow \"d\": step \"stop(negative: x < 0)\": stop: negative: x < 0", "input": {"x": -1}}`, lines[500])
		assert.Contains(t, lines[500], `x < 0`, "no HTML escaping")
		assert.Contains(t, lines[501], `"record":504,"kind":"input"`)
		assert.Contains(t, lines[501], `"line":"{\"x\": 13"`)
		assert.Contains(t, lines[502], `"record":505,"kind":"input"`)
		assert.Equal(t, `{"x":2,"y":4}`, lines[503])
	}
}

func (s batchStats) withoutTime() batchStats {
	s.elapsed = 0
	return s
}

func TestBatchLongLines(t *testing.T) {
	f := doubleFlow(t)
	pad := strings.Repeat(" ", 200_000) // longer than the reader's buffer
	in := `{"x": 1,` + pad + `"z": 0}` + "\n" + `{"x": 2}` + "\n"
	for _, workers := range []int{1, 3} {
		var out bytes.Buffer
		st, err := runBatch(context.Background(), f, strings.NewReader(in), &out, batchOptions{workers: workers})
		require.NoError(t, err)
		assert.Equal(t, 2, st.ok)
		assert.Equal(t, "{\"x\":1,\"y\":2,\"z\":0}\n{\"x\":2,\"y\":4}\n", out.String())
	}
}

type failingWriter struct{ after int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		return 0, fmt.Errorf("disk full")
	}
	return len(p), nil
}

type failingReader struct{ r io.Reader }

func (r *failingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err == io.EOF {
		return n, fmt.Errorf("connection reset")
	}
	return n, err
}

func TestBatchIOErrors(t *testing.T) {
	f := doubleFlow(t)
	for _, workers := range []int{1, 4} {
		_, err := runBatch(context.Background(), f, strings.NewReader(records(100_000)), &failingWriter{after: 1 << 17}, batchOptions{workers: workers})
		assert.ErrorContains(t, err, "writing output: disk full", "workers=%d", workers)

		var out bytes.Buffer
		st, err := runBatch(context.Background(), f, &failingReader{strings.NewReader(records(10))}, &out, batchOptions{workers: workers})
		assert.ErrorContains(t, err, "reading input: connection reset")
		assert.Equal(t, 10, st.ok, "records read before the error are run and written")
	}
}

func TestBatchCanceled(t *testing.T) {
	f := doubleFlow(t)
	for _, workers := range []int{1, 4} {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var out bytes.Buffer
		st, err := runBatch(ctx, f, strings.NewReader(records(100_000)), &out, batchOptions{workers: workers})
		require.NoError(t, err)
		assert.True(t, st.interrupted)
		assert.Less(t, st.records, 100_000)
		assert.Equal(t, st.records, strings.Count(out.String(), "\n"), "every record read is written")
	}
}

func TestBatchCommand(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, "orders.yaml", ordersYAML)
	in := filepath.Join(dir, "in.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(`{"items": [{"price": 2, "qty": 1}], "tier": "gold"}
{"items": [], "tier": "gold"}
{"items": [{"price": 2, "qty": 1}], "tier": "iron"}
`), 0o644))
	out := filepath.Join(dir, "out.jsonl")
	r := flowrun(t, "", "run", file, "--jsonl", in, "--out", out, "--workers", "2")
	assert.Equal(t, ExitStopped, r.code, "a stopped record and no failure: exit 3")
	assert.Contains(t, r.errOut, "progress: 30% (1 records")
	assert.Contains(t, r.errOut, "batch: 3 records in")
	assert.Contains(t, r.errOut, "2 ok, 1 stopped, 0 failed")
	assert.Contains(t, r.errOut, "are in "+out)
	data, err := os.ReadFile(out)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	require.Len(t, lines, 3)
	assert.Contains(t, lines[0], `"total":1`)
	assert.Contains(t, lines[1], `"record":2,"kind":"stop"`)
	assert.Contains(t, lines[2], `"total":2`)

	r = flowrun(t, `{"items": [{"price": 2, "qty": 1}], "tier": "gold"}`, "run", file, "--jsonl", "-", "--progress", "none")
	assert.Equal(t, 0, r.code, r.errOut)
	assert.Contains(t, r.out, `"total":1`)
	assert.NotContains(t, r.errOut, "progress")

	r = flowrun(t, "", "run", file, "--jsonl", in, "--out", in)
	assert.Equal(t, ExitUsage, r.code)
	assert.Contains(t, r.errOut, "would destroy it")
	r = flowrun(t, "", "run", file, "--jsonl", filepath.Join(dir, "missing.jsonl"))
	assert.Equal(t, ExitUsage, r.code)
	r = flowrun(t, "", "run", file, "--jsonl", in, "--trace")
	assert.Equal(t, ExitUsage, r.code)
}

func TestProgressLines(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, "lines", 1000)
	clock := p.start
	p.now = func() time.Time { clock = clock.Add(time.Second); return clock }
	for i := 1; i <= 100; i++ {
		p.update(i, int64(i*10))
	}
	p.done(100)
	got := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, got, 9, b.String())
	assert.Equal(t, "progress: 10% (10 records, 10 records/s)", got[0])
	assert.Equal(t, "progress: 90% (90 records, 10 records/s)", got[8])

	b.Reset()
	p = newProgress(&b, "lines", 0)
	p.update(progressEvery-1, 0)
	p.update(progressEvery, 0)
	p.update(progressEvery+1, 0)
	assert.Equal(t, 1, strings.Count(b.String(), "\n"))
	assert.Contains(t, b.String(), "progress: 100000 records")
}

func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, "bar", 1000)
	clock := p.start
	p.now = func() time.Time { return clock }
	clock = clock.Add(2 * time.Second)
	p.update(1, 500)
	assert.Equal(t, "\r[===============>              ]  50%  1 records  0 records/s  eta 2s\x1b[K", b.String())
	b.Reset()
	p.update(2, 600) // not a 64th record: no redraw
	assert.Empty(t, b.String())
	p.done(2)
	assert.Equal(t, "\r[==============================] 100%  2 records  1 records/s\x1b[K\n", b.String())
}

func TestProcessRecordAllocs(t *testing.T) {
	f := doubleFlow(t)
	line := []byte(`{"x": 3}`)
	out, kind := processRecord(context.Background(), f, line, 1)
	assert.Equal(t, `{"x":3,"y":6}`, string(out))
	assert.Equal(t, "ok", kind.String())
	_ = fc.New
}

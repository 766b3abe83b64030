package httpsource

import (
	"testing"

	"github.com/svcflow/svcflow/internal/jsonenc"
)

// BenchmarkResponseBody: the default answer's body (the output context
// without meta) against the hand-written baseline of encoding a context
// that has no meta, and the keys: and include_meta: shapes. Run:
//
//	go test -run '^$' -bench ResponseBody ./adapters/httpsource/
func BenchmarkResponseBody(b *testing.B) {
	ctx := func(meta bool) map[string]any {
		m := map[string]any{"order": "o-1", "total": 6.5, "items": []any{map[string]any{"sku": "a", "price": 2.0, "qty": 3.0}}, "valid": true}
		if meta {
			m["meta"] = map[string]any{"id": "0b6c6c52-7f5e-4a43-9d0f-55b1e2ed6c61", "http.remote": "127.0.0.1:51234", "http.method": "POST", "http.path": "/orders"}
		}
		return m
	}
	run := func(b *testing.B, s *shaping, out map[string]any) {
		buf := make([]byte, 0, 1024)
		b.ReportAllocs()
		for b.Loop() {
			body, _, err := s.body(buf[:0], out, jsonenc.Append)
			if err != nil {
				b.Fatal(err)
			}
			buf = body
		}
	}
	b.Run("baseline", func(b *testing.B) { // encode a context without meta
		out := ctx(false)
		buf := make([]byte, 0, 1024)
		b.ReportAllocs()
		for b.Loop() {
			body, err := jsonenc.Append(buf[:0], out)
			if err != nil {
				b.Fatal(err)
			}
			buf = body
		}
	})
	b.Run("default", func(b *testing.B) { run(b, nil, ctx(true)) })
	keys, _ := Response{Keys: []string{"order", "total"}}.compile()
	b.Run("keys", func(b *testing.B) { run(b, keys, ctx(true)) })
	meta, _ := Response{IncludeMeta: true}.compile()
	b.Run("include_meta", func(b *testing.B) { run(b, meta, ctx(true)) })
}

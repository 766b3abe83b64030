package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

var scanSeeds = []string{
	``, ` `, `{}`, `[]`, `{"a":1}`, `{ "a" : 1 }`, `[1,2,3]`, `[1,,2]`, `[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`,
	`"x"`, `"\u00e9\n\t\"\\\/"`, `"\x"`, `"\u12"`, "\"a\x01\"", `"unterminated`, `-0`, `-`, `01`, `1.`, `1.5e`,
	`1.5e+10`, `1E-2`, `-12.5`, `true`, `tru`, `false`, `null`, `nul`, `{"a":[{"b":null}]}`, `[[[[[]]]]]`,
	`{"a":1}x`, `1 2`, "\xff", `"\xff"`, `[` + strings.Repeat(`[`, 10001) + strings.Repeat(`]`, 10002),
	`{"flow":"f","start":"2026-01-02T03:04:05Z","steps":[{"name":"a","wrote":["x"]}]}`,
}

func TestScanAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range scanSeeds {
		valid, compact := Scan([]byte(s))
		assert.Equal(t, json.Valid([]byte(s)), valid, "%q", s)
		if valid {
			var buf bytes.Buffer
			_ = json.Compact(&buf, []byte(s))
			assert.Equal(t, buf.String() == s, compact, "%q", s)
		}
	}
}

func FuzzScan(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		valid, compact := Scan(b)
		if valid != json.Valid(b) {
			t.Fatalf("Scan(%q) valid = %v, json.Valid says %v", b, valid, !valid)
		}
		if valid {
			var buf bytes.Buffer
			_ = json.Compact(&buf, b)
			if (buf.String() == string(b)) != compact {
				t.Fatalf("Scan(%q) compact = %v", b, compact)
			}
		}
	})
}

// Scan against encoding/json's Valid on a trace-shaped kilobyte.
func BenchmarkScan(b *testing.B) {
	span := `{"name":"validate","path":"order/validate","start":"2026-11-22T12:33:43.123456789Z","duration_ns":1234,"attempts":1,"outcome":"ok","wrote":["subtotal"]}`
	doc := []byte(`{"flow":"order","start":"2026-11-22T12:33:43.123456789Z","duration_ns":9876,"outcome":"ok","steps":[` +
		strings.Repeat(span+",", 5) + span + `]}`)
	b.Run("Scan", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if ok, _ := Scan(doc); !ok {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if !json.Valid(doc) {
				b.Fatal("invalid")
			}
		}
	})
}

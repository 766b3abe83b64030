package redact

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMap(t *testing.T) {
	p, err := Parse([]string{"password", "card.number", "lines.secret", "missing.key"})
	require.NoError(t, err)
	in := map[string]any{
		"password": "hunter22",
		"card":     map[string]any{"number": json.Number("4111111111111111"), "brand": "visa"},
		"lines":    []any{map[string]any{"secret": "s3cr3t", "qty": 1.0}, "x"},
		"keep":     "me",
	}
	out, secrets := p.Map(in)
	assert.Equal(t, map[string]any{
		"password": Mask,
		"card":     map[string]any{"number": Mask, "brand": "visa"},
		"lines":    []any{map[string]any{"secret": Mask, "qty": 1.0}, "x"},
		"keep":     "me",
	}, out)
	assert.Equal(t, "hunter22", in["password"], "the input is not modified")
	assert.Equal(t, json.Number("4111111111111111"), in["card"].(map[string]any)["number"])
	assert.Equal(t, "s3cr3t", in["lines"].([]any)[0].(map[string]any)["secret"])
	assert.ElementsMatch(t, Secrets{"hunter22", "4111111111111111", "s3cr3t"}, secrets)
	assert.Equal(t, "login [redacted] failed for card [redacted]", secrets.Text("login hunter22 failed for card 4111111111111111"))

	short, s := Paths{}.Map(in)
	assert.Equal(t, in, short)
	assert.Nil(t, s)
	q, _ := Parse([]string{"pin"})
	_, s = q.Map(map[string]any{"pin": "12"})
	assert.Empty(t, s, "a value too short to mask inside text")

	for _, bad := range []string{"", "a..b", ".a", "a."} {
		_, err := Parse([]string{bad})
		assert.Error(t, err, bad)
	}
}

func TestContext(t *testing.T) {
	p, _ := Parse([]string{"a"})
	ctx := WithPaths(context.Background(), p)
	assert.Equal(t, p, FromContext(ctx))
	assert.True(t, FromContext(context.Background()).Empty())
}

func TestHandler(t *testing.T) {
	var b strings.Builder
	log := slog.New(NewHandler(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})))
	p, _ := Parse([]string{"token", "card.number"})
	ctx := WithPaths(context.Background(), p)
	log.InfoContext(ctx, "fetched", "token", "tok-123", "card", map[string]any{"number": "4111", "brand": "visa"}, "user", "ann")
	log.InfoContext(context.Background(), "outside a run", "token", "tok-123")
	assert.Equal(t, `level=INFO msg=fetched token=[redacted] card="map[brand:visa number:[redacted]]" user=ann
level=INFO msg="outside a run" token=tok-123
`, b.String())
}

package httpsource_test

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/httpsource"
	"github.com/svcflow/svcflow/adapters/store"
	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
)

// shapedRoute serves a channel (a real one, on a memory store) behind a
// route with the given response, and returns a function that posts a
// body and returns the status, the content type and the raw body.
func shapedRoute(t *testing.T, r httpsource.Response) func(body string) (int, string, string) {
	t.Helper()
	ts := startServer(t, httpsource.Config{})
	src, err := ts.Route("POST", "/in", httpsource.WithResponse(r))
	require.NoError(t, err)
	f := flow.New("f", flow.Step("s", func(ctx context.Context, c *fc.Context) error {
		switch c.View()["kind"] {
		case "stop":
			return errors.Stop("invalid")
		case "drop":
			return errors.Drop("not ours")
		case "fail":
			return errors.New("broken")
		}
		c.Set("total", 6)
		return nil
	})).MustBuild()
	ch, err := channel.New(channel.Config{Name: "c", Flow: f, Store: store.NewMemory(), Sources: []channel.Source{src}, Logger: quietLogger()})
	require.NoError(t, err)
	require.NoError(t, ch.Start(context.Background()))
	t.Cleanup(func() { _ = ch.Stop(context.Background()) })
	ts.waitReady(t)
	return func(body string) (int, string, string) {
		t.Helper()
		resp, err := ts.client.Post(ts.base+"/in", "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.NotEmpty(t, resp.Header.Get(httpsource.MessageIDHeader))
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(raw)
	}
}

func decode(t *testing.T, raw string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(raw), &m), raw)
	return m
}

// TestResponseNeverEchoesMetaByDefault: the default answer is the output
// context without meta: no client address, no headers, whatever the
// outcome.
func TestResponseNeverEchoesMetaByDefault(t *testing.T) {
	post := shapedRoute(t, httpsource.Response{})
	code, ctype, raw := post(`{"order": "o-1"}`)
	assert.Equal(t, 200, code)
	assert.Equal(t, "application/json", ctype)
	assert.Equal(t, map[string]any{"order": "o-1", "total": 6.0}, decode(t, raw))
	for _, body := range []string{`{"kind": "stop"}`, `{"kind": "fail"}`, `{"kind": "drop"}`, `{"order": "o-2"}`} {
		_, _, raw := post(body)
		assert.NotContains(t, raw, "meta", body)
		assert.NotContains(t, raw, "127.0.0.1", "%s: the client's address is not echoed", body)
		assert.NotContains(t, raw, "http.", body)
	}
}

func TestResponseShapes(t *testing.T) {
	t.Run("include_meta", func(t *testing.T) {
		post := shapedRoute(t, httpsource.Response{IncludeMeta: true})
		code, _, raw := post(`{"order": "o-1"}`)
		assert.Equal(t, 200, code)
		out := decode(t, raw)
		assert.Equal(t, "o-1", out["order"])
		meta := out["meta"].(map[string]any)
		assert.NotEmpty(t, meta["id"])
		assert.Contains(t, meta["http.remote"], "127.0.0.1")
	})
	t.Run("keys", func(t *testing.T) {
		post := shapedRoute(t, httpsource.Response{Keys: []string{"total", "missing"}})
		_, _, raw := post(`{"order": "o-1"}`)
		assert.Equal(t, map[string]any{"total": 6.0}, decode(t, raw), "only the keys named; a missing one left out")
		post = shapedRoute(t, httpsource.Response{Keys: []string{"total", "meta"}})
		_, _, raw = post(`{"order": "o-1"}`)
		out := decode(t, raw)
		assert.Len(t, out, 2)
		assert.Contains(t, out["meta"], "id", "meta when named")
	})
	t.Run("template", func(t *testing.T) {
		tpl, err := component.ParseTemplate(`{"order": {{.order}}, "due": {{.total}}, "ref": "web-{{.meta.id}}"}`, nil)
		require.NoError(t, err)
		post := shapedRoute(t, httpsource.Response{Template: tpl})
		code, ctype, raw := post(`{"order": "o\"1"}`)
		assert.Equal(t, 200, code)
		assert.Equal(t, "application/json", ctype)
		out := decode(t, raw)
		assert.Equal(t, `o"1`, out["order"], "values are JSON-encoded where they stand")
		assert.Equal(t, 6.0, out["due"])
		assert.True(t, strings.HasPrefix(out["ref"].(string), "web-"))
	})
	t.Run("text template", func(t *testing.T) {
		tpl, err := component.ParseTemplate(`total {{.total}} for {{.order}}`, nil)
		require.NoError(t, err)
		post := shapedRoute(t, httpsource.Response{Template: tpl, ContentType: "text/plain; charset=utf-8"})
		code, ctype, raw := post(`{"order": "o-1"}`)
		assert.Equal(t, 200, code)
		assert.Equal(t, "text/plain; charset=utf-8", ctype)
		assert.Equal(t, "total 6 for o-1", raw)
	})
}

// TestResponseStatusPerOutcome: the default codes, and each one
// overridden.
func TestResponseStatusPerOutcome(t *testing.T) {
	post := shapedRoute(t, httpsource.Response{})
	for body, want := range map[string]int{`{}`: 200, `{"kind": "stop"}`: 422, `{"kind": "drop"}`: 204, `{"kind": "fail"}`: 500} {
		code, _, raw := post(body)
		assert.Equal(t, want, code, body)
		if want == 204 {
			assert.Empty(t, raw, "a drop answers no body")
		}
	}
	post = shapedRoute(t, httpsource.Response{Status: map[string]int{"ok": 201, "stop": 400, "drop": 202, "error": 502}})
	code, _, _ := post(`{}`)
	assert.Equal(t, 201, code)
	code, _, raw := post(`{"kind": "stop"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "invalid", decode(t, raw)["error"])
	code, _, raw = post(`{"kind": "drop"}`)
	assert.Equal(t, 202, code)
	out := decode(t, raw)
	assert.Equal(t, "dropped", out["outcome"])
	assert.Equal(t, "not ours", out["reason"])
	assert.NotEmpty(t, out["id"])
	code, _, _ = post(`{"kind": "fail"}`)
	assert.Equal(t, 502, code)
}

func TestResponseErrors(t *testing.T) {
	srv := httpsource.NewServer(httpsource.Config{Logger: quietLogger()})
	tpl, err := component.ParseTemplate(`{"a": {{.a}}}`, nil)
	require.NoError(t, err)
	bad, err := component.ParseTemplate(`{"a": "{{.a}}`, nil)
	require.NoError(t, err)
	for want, r := range map[string]httpsource.Response{
		"keys and template":            {Keys: []string{"a"}, Template: tpl},
		"include_meta goes with":       {IncludeMeta: true, Keys: []string{"a"}},
		`unknown outcome "okay"`:       {Status: map[string]int{"okay": 200}},
		"700 is not a status code":     {Status: map[string]int{"ok": 700}},
		"needs an error code":          {Status: map[string]int{"retry": 200}},
		"content_type goes with":       {ContentType: "text/plain"},
		"template: bad template: JSON": {Template: bad},
		`content_type "a b"`:           {Template: tpl, ContentType: "a b"},
		"keys: an empty key":           {Keys: []string{""}},
	} {
		_, err := srv.Route("POST", "/x", httpsource.WithResponse(r))
		require.ErrorIs(t, err, httpsource.ErrInvalidRoute, want)
		assert.ErrorContains(t, err, want)
	}
}

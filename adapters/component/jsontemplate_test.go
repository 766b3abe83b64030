package component_test

import (
	"encoding/json"
	"testing"
	"text/template"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/svcflow/svcflow/adapters/component"
)

var jsonFuncs = template.FuncMap{"json": func(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}}

func jsonTemplate(t *testing.T, src string) component.Template {
	t.Helper()
	tp, err := component.ParseTemplate(src, jsonFuncs)
	require.NoError(t, err)
	j, err := tp.JSON()
	require.NoError(t, err)
	require.True(t, j.IsJSON())
	require.False(t, tp.IsJSON(), "JSON returns a copy")
	return j
}

func TestTemplateJSONEscapesWhatItInserts(t *testing.T) {
	hostile := `x", "id": "victim`
	ctx := map[string]any{
		"id": hostile, "total": 6, "items": []any{map[string]any{"sku": "a"}},
		"none": nil, "ok": true, "note": "a\\b\n</script>",
	}
	for src, want := range map[string]string{
		`{"id": {{.id}}, "total": {{.total}}}`:           `{"id": "x\", \"id\": \"victim", "total": 6}`,
		`{"id": "{{.id}}", "total": {{.total}}}`:         `{"id": "x\", \"id\": \"victim", "total": 6}`,
		`{"ref": "order-{{.id}}-{{.total}}"}`:            `{"ref": "order-x\", \"id\": \"victim-6"}`,
		`{"items": {{.items}}, "none": {{.none}}}`:       `{"items": [{"sku":"a"}], "none": null}`,
		`{"items": {{json .items}}}`:                     `{"items": [{"sku":"a"}]}`,
		`{"raw": "{{json .items}}"}`:                     `{"raw": "[{\"sku\":\"a\"}]"}`,
		`{"ok": {{if .ok}}"yes"{{else}}"no"{{end}}}`:     `{"ok": "yes"}`,
		`[{{range $i, $e := .items}}{{$e.sku}}{{end}}]`:  `["a"]`,
		`{"note": {{.note}}, "q": "say \"{{.total}}\""}`: `{"note": "a\\b\n\u003c/script\u003e", "q": "say \"6\""}`,
		`{"k": "{{with .id}}{{.}}{{end}}"}`:              `{"k": "x\", \"id\": \"victim"}`,
		`{"const": true}`:                                `{"const": true}`,
		`{{/* a comment */}}{"id": {{$x := .id}}{{$x}}}`: `{"id": "x\", \"id\": \"victim"}`,
	} {
		got, err := jsonTemplate(t, src).Execute(ctx)
		require.NoError(t, err, src)
		assert.JSONEq(t, want, got, src)
		var m any
		require.NoError(t, json.Unmarshal([]byte(got), &m), src)
		if mm, ok := m.(map[string]any); ok && mm["id"] != nil {
			assert.Equal(t, hostile, mm["id"], src)
		}
	}
}

func TestTemplateJSONRefusesWhatItCannotEscape(t *testing.T) {
	for src, want := range map[string]string{
		`{"a": "{{.x}}`:                                 "ends inside a JSON string",
		`{"a": "\{{.x}}"}`:                              "right after a backslash",
		`{"a": {{if .x}}"{{end}}}`:                      "branches of if end in different positions",
		`[{{range .x}}"{{end}}]`:                        "range body ends inside a string",
		`{{define "t"}}1{{end}}{"a": {{template "t"}}}`: "{{template}} is not supported",
		`not json`:                                      "not valid JSON",
	} {
		tp, err := component.ParseTemplate(src, jsonFuncs)
		require.NoError(t, err, src)
		_, err = tp.JSON()
		require.Error(t, err, src)
		assert.Contains(t, err.Error(), want, src)
	}
}

func TestTemplateJSONOutputIsChecked(t *testing.T) {
	// A value inserted where JSON has no place for it: the run fails
	// rather than sending a broken document.
	_, err := jsonTemplate(t, `{"a": 1{{.x}}}`).Execute(map[string]any{"x": "s"})
	require.ErrorContains(t, err, "not valid JSON")
}

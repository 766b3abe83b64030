package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"text/template"
)

// templateFuncs returns the functions templates may call. var reads the
// configuration's vars section, or an override of a var while a test
// case runs (its http_service's URL).
func templateFuncs(vars map[string]any, overrides *varOverrides) template.FuncMap {
	return template.FuncMap{
		"var": func(name string) (any, error) {
			if v, ok := overrides.get(name); ok {
				return v, nil
			}
			v, ok := vars[name]
			if !ok {
				return nil, fmt.Errorf("no var %q", name)
			}
			return v, nil
		},
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			if err != nil {
				return "", fmt.Errorf("json: %w", err)
			}
			return string(b), nil
		},
		"upper":      strings.ToUpper,
		"lower":      strings.ToLower,
		"trim":       strings.TrimSpace,
		"pathescape": url.PathEscape,
	}
}

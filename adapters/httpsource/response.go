package httpsource

import (
	"fmt"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/internal/jsonenc"
)

// Response shapes what a route answers for the messages it handled. The
// zero Response is the default: a done message is answered 200 with its
// output context as a JSON object, without the key meta (the message's
// meta: the client's address, headers, the message ID, which the client
// has in the X-Message-Id header); a rejected one 422 with the reason; a
// dropped one 204 with no body.
//
//	response: {keys: [id, total]}                      # only these keys of the context
//	response: {include_meta: true}                      # the whole context, meta included
//	response: {template: '{"order": {{.id}}, "total": {{.total}}}'}
//	response: {status: {ok: 201, stop: 400, drop: 202}}
type Response struct {
	// Keys, when not empty, answers a done message with only these
	// top-level keys of its context (a key the context lacks is left
	// out). Name meta among them to send it.
	Keys []string `yaml:"keys" doc:"answer with only these top-level keys of the output context (meta too, when named)"`
	// Template, when set, is the body of a done message's answer: a
	// text/template over the whole output context (meta included). With
	// a JSON content type (the default) it is in JSON mode: each value
	// it inserts is encoded as JSON for where it stands, and the result
	// must be valid JSON.
	Template component.Template `yaml:"template" doc:"the body of a done message's answer: a text/template over the output context (meta included); JSON mode when the content type is JSON"`
	// ContentType is the content type of a templated answer (default
	// application/json).
	ContentType string `yaml:"content_type" doc:"the content type of a templated answer (default application/json)"`
	// IncludeMeta sends meta with the default answer (the whole context).
	IncludeMeta bool `yaml:"include_meta" doc:"with neither keys nor template: answer with the whole context, meta included"`
	// Status overrides the status code of an outcome: ok (default 200),
	// stop (422), drop (204: no body; another code answers
	// {"id", "outcome": "dropped", "reason"}), error (500: a failure)
	// and retry (503 with Retry-After: retries ran out).
	Status map[string]int `yaml:"status" doc:"status code per outcome: ok (200), stop (422), drop (204), error (500), retry (503)"`
}

// The outcomes whose status codes Response.Status may set.
var statusOutcomes = []string{"ok", "stop", "drop", "error", "retry"}

// WithResponse shapes the route's answers (see [Response]).
func WithResponse(r Response) RouteOption {
	return func(rt *route) error {
		shaped, err := r.compile()
		if err != nil {
			return fmt.Errorf("%w: response: %w", ErrInvalidRoute, err)
		}
		rt.resp = shaped
		return nil
	}
}

// shaping is a checked Response.
type shaping struct {
	keys        []string
	tmpl        component.Template
	contentType string
	meta        bool
	status      map[string]int
}

func (r Response) compile() (*shaping, error) {
	s := &shaping{keys: slices.Clone(r.Keys), meta: r.IncludeMeta, status: maps.Clone(r.Status)}
	if len(r.Keys) > 0 && !r.Template.IsZero() {
		return nil, fmt.Errorf("keys and template: give one of them")
	}
	if r.IncludeMeta && (len(r.Keys) > 0 || !r.Template.IsZero()) {
		return nil, fmt.Errorf("include_meta goes with the default answer: with keys, name meta among them; a template sees meta")
	}
	for _, k := range r.Keys {
		if k == "" {
			return nil, fmt.Errorf("keys: an empty key")
		}
	}
	s.contentType = r.ContentType
	if s.contentType == "" {
		s.contentType = "application/json"
	} else if _, _, err := mime.ParseMediaType(s.contentType); err != nil {
		return nil, fmt.Errorf("content_type %q: %w", s.contentType, err)
	}
	if !r.Template.IsZero() {
		s.tmpl = r.Template
		if isJSONType(s.contentType) {
			t, err := r.Template.JSON()
			if err != nil {
				return nil, fmt.Errorf("template: %w", err)
			}
			s.tmpl = t
		}
	} else if r.ContentType != "" {
		return nil, fmt.Errorf("content_type goes with a template")
	}
	for k, code := range r.Status {
		if !slices.Contains(statusOutcomes, k) {
			return nil, fmt.Errorf("status: unknown outcome %q: expected one of %s", k, strings.Join(statusOutcomes, ", "))
		}
		if code < 200 || code > 599 {
			return nil, fmt.Errorf("status: %s: %d is not a status code from 200 to 599", k, code)
		}
		if k == "retry" && code < 400 {
			return nil, fmt.Errorf("status: retry: %d: a message to deliver again needs an error code (4xx or 5xx)", code)
		}
	}
	return s, nil
}

// isJSONType reports whether a content type is JSON.
func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// code returns the status code of an outcome: the configured one, else
// def.
func (s *shaping) code(outcome string, def int) int {
	if s != nil {
		if c, ok := s.status[outcome]; ok {
			return c
		}
	}
	return def
}

// body returns the answer's body for a done message's output context,
// with its content type, or an error.
func (s *shaping) body(dst []byte, out map[string]any, encode func([]byte, any) ([]byte, error)) ([]byte, string, error) {
	switch {
	case s != nil && !s.tmpl.IsZero():
		text, err := s.tmpl.Execute(out)
		if err != nil {
			return nil, "", err
		}
		return append(dst, text...), s.contentType, nil
	case s != nil && len(s.keys) > 0:
		picked := make(map[string]any, len(s.keys))
		for _, k := range s.keys {
			if v, ok := out[k]; ok {
				picked[k] = v
			}
		}
		b, err := encode(dst, picked)
		return b, "application/json", err
	case s != nil && s.meta:
		b, err := encode(dst, out)
		return b, "application/json", err
	}
	if _, ok := out["meta"]; ok {
		return appendWithout(dst, out, "meta", encode)
	}
	b, err := encode(dst, out)
	return b, "application/json", err
}

// keyBufs recycles the key slices of appendWithout.
var keyBufs = sync.Pool{New: func() any { s := make([]string, 0, 16); return &s }}

// appendWithout appends the JSON object of m without the key skip, as
// encode would write m (keys sorted), without copying m nor writing to it:
// the run's context may still be read by a tap of the flow.
func appendWithout(dst []byte, m map[string]any, skip string, encode func([]byte, any) ([]byte, error)) ([]byte, string, error) {
	kp := keyBufs.Get().(*[]string)
	keys := (*kp)[:0]
	for k := range m {
		if k != skip {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	var err error
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonenc.AppendString(dst, k)
		dst = append(dst, ':')
		if dst, err = encode(dst, m[k]); err != nil {
			err = fmt.Errorf("key %q: %w", k, err)
			break
		}
	}
	clear(keys)
	*kp = keys[:0]
	keyBufs.Put(kp)
	return append(dst, '}'), "application/json", err
}

// bodyless reports whether a status code has no body.
func bodyless(code int) bool {
	return code == http.StatusNoContent || code == http.StatusNotModified || code < 200
}

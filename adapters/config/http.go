package config

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	fc "github.com/svcflow/svcflow/context"
	"github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	yaml "go.yaml.in/yaml/v4"
)

// DefaultHTTPTimeout bounds each attempt of an http step that sets no
// timeout.
const DefaultHTTPTimeout = 10 * time.Second

// maxResponseBody bounds the response body an http step reads.
const maxResponseBody = 10 << 20

type header struct {
	name string
	t    *tmpl
}

// httpService makes one HTTP request per call.
//
// Outcomes: a 2xx status (or one listed in allow_status) stores the
// decoded body under into; 5xx, 408, 425 and 429 and transport errors
// are Retry errors (with the Retry-After hint when the server sends one);
// other 4xx statuses are Stop errors, since sending the same request again
// cannot succeed; anything else is a failure.
type httpService struct {
	name        string
	client      *http.Client
	method      string
	url         *tmpl
	headers     []header
	bodyKey     string
	bodyTmpl    *tmpl
	contentType string
	into        string
	statusInto  string
	allow       []int
	contract    flow.Contract
}

func (s *httpService) Name() string            { return s.name }
func (s *httpService) Contract() flow.Contract { return s.contract }

func (s *httpService) Call(ctx context.Context, c *fc.Context) error {
	m := c.View()
	u, err := s.url.exec(m)
	if err != nil {
		return fmt.Errorf("http url: %w", err)
	}
	var body io.Reader
	switch {
	case s.bodyKey != "":
		b, err := json.Marshal(m[s.bodyKey])
		if err != nil {
			return fmt.Errorf("http body %q: %w", s.bodyKey, err)
		}
		body = bytes.NewReader(b)
	case s.bodyTmpl != nil:
		b, err := s.bodyTmpl.exec(m)
		if err != nil {
			return fmt.Errorf("http body: %w", err)
		}
		body = strings.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, s.method, u, body)
	if err != nil {
		return errors.Stopf("http %s %s: bad request: %w", s.method, u, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", s.contentType)
	}
	req.Header.Set("Accept", "application/json")
	for _, h := range s.headers {
		v, err := h.t.exec(m)
		if err != nil {
			return fmt.Errorf("http header %s: %w", h.name, err)
		}
		req.Header.Set(h.name, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			// The attempt's deadline or the run's cancellation: the engine
			// tells them apart (a timeout is retried, cancellation is not).
			return fmt.Errorf("http %s %s: %w", s.method, u, ctx.Err())
		}
		return errors.Retry(fmt.Errorf("http %s %s: %w", s.method, u, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("http %s %s: reading response: %w", s.method, u, ctx.Err())
		}
		return errors.Retry(fmt.Errorf("http %s %s: reading response: %w", s.method, u, err))
	}
	if len(data) > maxResponseBody {
		return fmt.Errorf("http %s %s: response larger than %d bytes", s.method, u, maxResponseBody)
	}
	code := resp.StatusCode
	if code/100 != 2 && !slices.Contains(s.allow, code) {
		cause := fmt.Errorf("http %s %s: %s: %s", s.method, u, resp.Status, shortName(string(data)))
		switch {
		case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests:
			return errors.RetryAfter(cause, retryAfter(resp.Header.Get("Retry-After"), time.Now()))
		case code >= 400:
			return errors.Stopf("%w", cause)
		}
		return cause
	}
	v, err := decodeBody(resp.Header.Get("Content-Type"), data)
	if err != nil {
		return fmt.Errorf("http %s %s: %w", s.method, u, err)
	}
	c.Set(s.into, v)
	if s.statusInto != "" {
		c.Set(s.statusInto, code)
	}
	return nil
}

// decodeBody decodes a JSON response; other bodies are kept as a string.
func decodeBody(contentType string, data []byte) (any, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	trimmed := bytes.TrimSpace(data)
	looksJSON := trimmed[0] == '{' || trimmed[0] == '['
	if strings.Contains(contentType, "json") || looksJSON {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			if !strings.Contains(contentType, "json") {
				return string(data), nil
			}
			return nil, fmt.Errorf("response is not valid JSON: %w", err)
		}
		return v, nil
	}
	return string(data), nil
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

func (l *loader) parseHTTP(f *srcFile, n *yaml.Node) (*leafSpec, bool) {
	fs, ok := l.mapping(f, n, "http", []string{"method", "url", "headers", "body", "body_template",
		"content_type", "timeout", "retry", "into", "status_into", "allow_status"})
	if !ok {
		return nil, false
	}
	spec := &leafSpec{keyPos: map[string]*yaml.Node{}, timeout: DefaultHTTPTimeout}
	s := &httpService{client: l.reg.httpClient(), method: "GET", into: "response", contentType: "application/json"}
	var reads []string
	good := true
	read := func(ids []string, at *yaml.Node) {
		for _, id := range ids {
			reads = append(reads, id)
			if _, seen := spec.keyPos[id]; !seen {
				spec.keyPos[id] = at
			}
		}
	}
	tpl := func(n *yaml.Node, what string) *tmpl {
		src, ok := l.str(f, n, what)
		if !ok {
			good = false
			return nil
		}
		t, ok := l.template(f, n, what, src)
		if !ok {
			good = false
			return nil
		}
		read(t.idents, n)
		return t
	}
	if fd, ok := fs.get("method"); ok {
		m, ok := l.str(f, fd.val, "http: method")
		m = strings.ToUpper(m)
		switch {
		case !ok:
			good = false
		case !slices.Contains(httpMethods, m):
			l.at(f, fd.val, "http: method: expected %s, got %q", oneOf(httpMethods), fd.val.Value)
			good = false
		default:
			s.method = m
		}
	}
	if fd, ok := fs.get("url"); ok {
		if s.url = tpl(fd.val, "http: url"); s.url != nil && s.url.t == nil {
			if u, err := url.Parse(s.url.src); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				l.at(f, fd.val, "http: url: expected an http or https URL, got %q", s.url.src)
				good = false
			}
		}
	} else {
		l.at(f, n, "http: missing key \"url\"")
		good = false
	}
	if fd, ok := fs.get("headers"); ok {
		if hs, ok := l.mapping(f, fd.val, "http: headers", nil); ok {
			for _, k := range hs.order {
				if t := tpl(hs.m[k].val, fmt.Sprintf("http: header %q", k)); t != nil {
					s.headers = append(s.headers, header{name: k, t: t})
				}
			}
		} else {
			good = false
		}
	}
	bodyKey, hasBody := fs.get("body")
	bodyTmpl, hasTmpl := fs.get("body_template")
	switch {
	case hasBody && hasTmpl:
		l.at(f, bodyTmpl.key, "http: set body (a key sent as JSON) or body_template, not both")
		good = false
	case hasBody:
		if s.bodyKey, ok = l.name(f, bodyKey.val, "http: body"); ok {
			read([]string{s.bodyKey}, bodyKey.val)
		} else {
			good = false
		}
	case hasTmpl:
		s.bodyTmpl = tpl(bodyTmpl.val, "http: body_template")
	}
	if fd, ok := fs.get("content_type"); ok {
		if s.contentType, ok = l.str(f, fd.val, "http: content_type"); !ok {
			good = false
		}
	}
	if fd, ok := fs.get("timeout"); ok {
		if spec.timeout, ok = l.duration(f, fd.val, "http: timeout"); !ok {
			good = false
		}
	}
	if fd, ok := fs.get("retry"); ok {
		if spec.policy, ok = l.policy(f, fd.val, "http: retry"); !ok {
			good = false
		}
		spec.policyNode = fd.key
	}
	for _, k := range []string{"into", "status_into"} {
		if fd, ok := fs.get(k); ok {
			v, ok := l.name(f, fd.val, "http: "+k)
			if !ok {
				good = false
			} else if k == "into" {
				s.into = v
			} else {
				s.statusInto = v
			}
		}
	}
	if fd, ok := fs.get("allow_status"); ok {
		items, ok := l.seq(f, fd.val, "http: allow_status")
		good = good && ok
		for _, it := range items {
			code, ok := l.integer(f, it, "http: allow_status", 100, 599)
			good = good && ok
			s.allow = append(s.allow, code)
		}
	}
	if !good {
		return nil, false
	}
	s.contract.Needs = needsOf(reads, nil)
	s.contract.Provides = []fc.KeyInfo{fc.Any(s.into)}
	if s.statusInto != "" {
		s.contract.Provides = append(s.contract.Provides, fc.Key[int](s.statusInto).Info())
	}
	spec.defName = "http(" + s.into + ")"
	spec.make = func(name string) flow.Service {
		cp := *s
		cp.name = name
		return &cp
	}
	return spec, true
}

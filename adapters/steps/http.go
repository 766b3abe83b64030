package steps

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/telemetry"
	fc "github.com/svcflow/svcflow/context"
	ferrors "github.com/svcflow/svcflow/errors"
	"github.com/svcflow/svcflow/flow"
	"github.com/svcflow/svcflow/internal/jsonenc"
)

// DefaultHTTPTimeout bounds each attempt of an http step that sets no
// timeout (HTTPSpec's timeout default).
const DefaultHTTPTimeout = 10 * time.Second

// maxResponseBody bounds the response body an http step reads.
const maxResponseBody = 10 << 20

// HTTPSpec is the spec of an http step: one request per attempt, with the
// url, headers and body_template rendered over the context.
//
//	http: {method: GET, url: "{{var \"api\"}}/customers/{{.customer_id}}", into: customer, timeout: 2s}
//	http: {method: POST, url: "{{var \"api\"}}/orders", body: order, retry: {max_attempts: 5}}
//
// A 2xx status, or one of allow_status, stores the decoded body (JSON, or
// the text) under into, and the status under status_into; 5xx, 408, 425
// and 429 statuses and transport errors are Retry errors (with the
// server's Retry-After hint); other 4xx statuses are Stop errors, since the
// same request cannot succeed. timeout and retry are the step's own: the
// configuration applies them as the step's timeout: and retry: keys, per
// attempt, 10s by default. The client is the one the step is built with
// (config.WithHTTPClient), http.DefaultClient when none. In a traced run
// (package telemetry) the request carries the W3C trace context of the
// step's span (traceparent, tracestate); a traceparent among headers wins.
//
// With a JSON content_type (the default) body_template is in JSON mode
// (component.Template.JSON): each action's output is JSON-encoded for
// where it stands, a value outside strings and escaped text inside them,
// so input cannot change the document's shape; write values bare:
//
//	body_template: '{"id": {{.meta.id}}, "total": {{.total}}, "ref": "web-{{.meta.id}}"}'
//
// A template whose positions cannot be told is a spec error, and a body
// that is not valid JSON fails the run. Other content types render the
// template as text, unescaped.
//
// A url built from input lets a client choose what the server calls
// (server-side request forgery: internal services, cloud metadata
// endpoints). allow_hosts bounds it: when set, a request (or a redirect)
// to a host not in the list is not sent, and the run ends with a Stop
// naming the host. Entries are a host name or IP ("api.example.com", any
// port), host:port ("127.0.0.1:8082"), or "*.example.com" (any subdomain,
// any port); names are compared without case and without a final dot. The
// list checks names, not the addresses they resolve to. A constant url
// outside the list is a spec error.
//
//	http: {url: "https://{{.region}}.api.example.com/v1/{{pathescape .id}}", allow_hosts: ["*.api.example.com"]}
//
// The step needs the keys its url, headers and body read.
type HTTPSpec struct {
	Method       string                              `yaml:"method" default:"GET" doc:"the method: GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS (any case)"`
	URL          component.Template                  `yaml:"url" spec:"required" doc:"the http or https URL, a template over the context"`
	Headers      component.Pairs[component.Template] `yaml:"headers" doc:"request headers: name: template"`
	Body         component.Key                       `yaml:"body" doc:"a key whose value is sent as JSON"`
	BodyTemplate component.Template                  `yaml:"body_template" doc:"the body as a template (instead of body); with a JSON content_type each {{...}} is inserted JSON-encoded (a value, or escaped inside a string)"`
	ContentType  string                              `yaml:"content_type" default:"application/json" doc:"the Content-Type of a body"`
	Timeout      time.Duration                       `yaml:"timeout" default:"10s" doc:"bound on each attempt"`
	Retry        *ferrors.Policy                     `yaml:"retry" doc:"the retry policy (the keys of a flow's retry:)"`
	Into         component.Key                       `yaml:"into" default:"response" doc:"the key the decoded response goes into"`
	StatusInto   component.Key                       `yaml:"status_into" doc:"a key for the status code"`
	AllowStatus  []int                               `yaml:"allow_status" doc:"statuses other than 2xx that are answers, not errors"`
	AllowHosts   []string                            `yaml:"allow_hosts" doc:"when set, the only hosts the step may call (host, host:port or *.domain), redirects included; another host is a Stop naming it. Set it when the url is built from input (SSRF)"`
}

// StepName is "http(INTO)".
func (s HTTPSpec) StepName() string { return "http(" + string(cmp.Or(s.Into, "response")) + ")" }

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

func newHTTP(env component.Env, s HTTPSpec) (flow.Service, error) {
	var errs []error
	method := strings.ToUpper(s.Method)
	if method == "" {
		method = "GET"
	}
	if !slices.Contains(httpMethods, method) {
		errs = append(errs, component.FieldErrorf("method", "expected one of %s, got %q", strings.Join(httpMethods, ", "), s.Method))
	}
	if s.URL.IsZero() {
		errs = append(errs, component.FieldErrorf("url", "expected an http or https URL"))
	} else if s.URL.Constant() {
		if u, err := url.Parse(s.URL.Source()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, component.FieldErrorf("url", "expected an http or https URL, got %q", s.URL.Source()))
		}
	}
	if s.Body != "" && !s.BodyTemplate.IsZero() {
		errs = append(errs, component.FieldErrorf("body_template", "set body (a key sent as JSON) or body_template, not both"))
	}
	for i, code := range s.AllowStatus {
		if code < 100 || code > 599 {
			errs = append(errs, component.FieldErrorf("allow_status."+strconv.Itoa(i), "expected an integer from 100 to 599, got %d", code))
		}
	}
	allow, aerrs := parseAllowHosts(s.AllowHosts)
	errs = append(errs, aerrs...)
	if allow != nil && !s.URL.IsZero() && s.URL.Constant() {
		if u, err := url.Parse(s.URL.Source()); err == nil && u.Host != "" && !allow.allows(u) {
			errs = append(errs, component.FieldErrorf("url", "host %q is not in allow_hosts", u.Host))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	client, ok := component.Value[*http.Client](env)
	if !ok || client == nil {
		client = http.DefaultClient
	}
	if allow != nil {
		client = allow.client(client)
	}
	svc := &httpService{name: env.Name, client: client, method: method, url: s.URL, bodyKey: string(s.Body),
		contentType: s.ContentType, into: string(cmp.Or(s.Into, "response")), statusInto: string(s.StatusInto), allow: s.AllowStatus,
		hosts: allow}
	if svc.contentType == "" {
		svc.contentType = "application/json"
	}
	if !s.BodyTemplate.IsZero() {
		bt := s.BodyTemplate
		if isJSONType(svc.contentType) {
			t, err := bt.JSON()
			if err != nil {
				return nil, component.FieldErrorf("body_template", "%v", err)
			}
			bt = t
		}
		svc.bodyTmpl = &bt
	}
	reads := s.URL.Keys()
	for _, h := range s.Headers {
		svc.headers = append(svc.headers, header{name: h.Key, t: h.Value})
		reads = append(reads, h.Value.Keys()...)
	}
	if s.Body != "" {
		reads = append(reads, string(s.Body))
	}
	reads = append(reads, s.BodyTemplate.Keys()...)
	svc.contract.Needs = needsOf(reads)
	svc.contract.Provides = []fc.KeyInfo{fc.Any(svc.into)}
	if svc.statusInto != "" {
		svc.contract.Provides = append(svc.contract.Provides, fc.Key[int](svc.statusInto).Info())
	}
	return svc, nil
}

type header struct {
	name string
	t    component.Template
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
	url         component.Template
	headers     []header
	bodyKey     string
	bodyTmpl    *component.Template
	contentType string
	into        string
	statusInto  string
	allow       []int
	hosts       *allowHosts // nil: any host
	contract    flow.Contract
}

func (s *httpService) Name() string            { return s.name }
func (s *httpService) Contract() flow.Contract { return s.contract }

func (s *httpService) Call(ctx context.Context, c *fc.Context) error {
	m := c.View()
	u, err := s.url.Execute(m)
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
		b, err := s.bodyTmpl.Execute(m)
		if err != nil {
			return fmt.Errorf("http body: %w", err)
		}
		body = strings.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, s.method, u, body)
	if err != nil {
		return ferrors.Stopf("http %s %s: bad request: %w", s.method, u, err)
	}
	if s.hosts != nil && !s.hosts.allows(req.URL) {
		return ferrors.Stopf("http %s: host %q is not in allow_hosts", s.method, req.URL.Host)
	}
	if body != nil {
		req.Header.Set("Content-Type", s.contentType)
	}
	req.Header.Set("Accept", "application/json")
	telemetry.InjectHTTP(ctx, req.Header) // a traced run's traceparent; headers: may set their own
	for _, h := range s.headers {
		v, err := h.t.Execute(m)
		if err != nil {
			return fmt.Errorf("http header %s: %w", h.name, err)
		}
		req.Header.Set(h.name, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if refused, ok := ferrors.AsType[*hostRefused](err); ok {
			return ferrors.Stopf("http %s %s: redirected to host %q, which is not in allow_hosts", s.method, u, refused.host)
		}
		if ctx.Err() != nil {
			// The attempt's deadline or the run's cancellation: the engine
			// tells them apart (a timeout is retried, cancellation is not).
			return fmt.Errorf("http %s %s: %w", s.method, u, ctx.Err())
		}
		return ferrors.Retry(fmt.Errorf("http %s %s: %w", s.method, u, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("http %s %s: reading response: %w", s.method, u, ctx.Err())
		}
		return ferrors.Retry(fmt.Errorf("http %s %s: reading response: %w", s.method, u, err))
	}
	if len(data) > maxResponseBody {
		return fmt.Errorf("http %s %s: response larger than %d bytes", s.method, u, maxResponseBody)
	}
	code := resp.StatusCode
	if code/100 != 2 && !slices.Contains(s.allow, code) {
		cause := fmt.Errorf("http %s %s: %s: %s", s.method, u, resp.Status, shortName(string(data)))
		switch {
		case code >= 500, code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests:
			return ferrors.RetryAfter(cause, retryAfter(resp.Header.Get("Retry-After"), time.Now()))
		case code >= 400:
			return ferrors.Stopf("%w", cause)
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

// isJSONType reports whether a content type is JSON (application/json,
// text/json or a +json type).
func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
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
		if err := jsonenc.Unmarshal(data, &v); err != nil { // numbers keep their digits
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

// allowHosts is an http step's allow_hosts.
type allowHosts struct {
	hosts    map[string]bool // host names or IPs, any port
	hostPort map[string]bool // host:port
	suffixes []string        // ".example.com" of "*.example.com"
}

// parseAllowHosts checks and compiles allow_hosts (nil: not set).
func parseAllowHosts(list []string) (*allowHosts, []error) {
	if list == nil {
		return nil, nil
	}
	a := &allowHosts{hosts: map[string]bool{}, hostPort: map[string]bool{}}
	var errs []error
	for i, raw := range list {
		e := normHost(strings.TrimSpace(raw))
		field := "allow_hosts." + strconv.Itoa(i)
		switch {
		case e == "" || strings.ContainsAny(e, "/?#@ ") || strings.Contains(e, "://"):
			errs = append(errs, component.FieldErrorf(field, "expected a host, host:port or *.domain, got %q", raw))
		case strings.HasPrefix(e, "*."):
			if len(e) < 3 || strings.ContainsAny(e[2:], "*:") {
				errs = append(errs, component.FieldErrorf(field, "expected *.domain, got %q", raw))
				continue
			}
			a.suffixes = append(a.suffixes, e[1:])
		case strings.Contains(e, "*"):
			errs = append(errs, component.FieldErrorf(field, "a wildcard is only allowed as *.domain, got %q", raw))
		default:
			if h, p, err := net.SplitHostPort(e); err == nil {
				if _, perr := strconv.ParseUint(p, 10, 16); perr != nil || h == "" {
					errs = append(errs, component.FieldErrorf(field, "expected host:port, got %q", raw))
					continue
				}
				a.hostPort[net.JoinHostPort(normHost(h), p)] = true
				continue
			}
			a.hosts[strings.Trim(e, "[]")] = true
		}
	}
	if len(list) == 0 {
		errs = append(errs, component.FieldErrorf("allow_hosts", "expected at least one host (leave allow_hosts out to allow any)"))
	}
	return a, errs
}

// normHost lower-cases a host and drops a final dot.
func normHost(h string) string { return strings.TrimSuffix(strings.ToLower(h), ".") }

// allows reports whether u's host is in the list.
func (a *allowHosts) allows(u *url.URL) bool {
	host := normHost(u.Hostname())
	if host == "" {
		return false
	}
	if a.hosts[host] {
		return true
	}
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	if a.hostPort[net.JoinHostPort(host, port)] {
		return true
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

// hostRefused is a redirect to a host not in allow_hosts.
type hostRefused struct{ host string }

func (e *hostRefused) Error() string {
	return "host " + strconv.Quote(e.host) + " is not in allow_hosts"
}

// client returns a copy of c whose redirects are checked against the list
// before c's own redirect policy.
func (a *allowHosts) client(c *http.Client) *http.Client {
	cc := *c
	next := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !a.allows(req.URL) {
			return &hostRefused{host: req.URL.Host}
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cc
}

package poll

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/svcflow/svcflow/adapters/channel"
	"github.com/svcflow/svcflow/adapters/component"
	"github.com/svcflow/svcflow/adapters/message"
)

// Spec is the YAML form of a poll source: an HTTP endpoint fetched every
// interval, whose answer becomes messages.
//
//	from: {poll: {url: "http://crm.local/api/new-orders", every: 30s, id: order_id}}
//	from: {poll: "http://crm.local/api/new-orders"}   # every minute
//
// A JSON array answers one message per element, a JSON object one message,
// an empty body or 204 none. Each message's ID is the value of the id key
// of its element when set, else a hash of its content: an element seen
// again is a duplicate, answered from the channel's store and not run
// again. A status other than 2xx is logged and the next poll comes as
// usual.
type Spec struct {
	URL     string            `yaml:"url" spec:"required,scalar" doc:"the http or https URL to GET"`
	Every   time.Duration     `yaml:"every" default:"1m" doc:"how often to poll"`
	Method  string            `yaml:"method" default:"GET" doc:"the HTTP method"`
	Headers map[string]string `yaml:"headers" doc:"request headers"`
	Timeout time.Duration     `yaml:"timeout" default:"10s" doc:"bound on one poll"`
	ID      string            `yaml:"id" doc:"the key of each element whose value is the message ID (default: a hash of the element)"`
	MaxBody int64             `yaml:"max_body" default:"16777216" doc:"the largest accepted answer in bytes"`
}

// Component is the poll source component.
var Component = component.Source("poll", "an HTTP endpoint polled every interval: each element of the JSON answer is a message",
	func(env component.Env, s Spec) (channel.Source, error) {
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("poll: url %q: %w: expected an http:// or https:// URL", s.URL, ErrInvalid)
		}
		if s.Timeout <= 0 || s.MaxBody <= 0 {
			return nil, fmt.Errorf("poll: %s: %w: timeout and max_body must be positive", s.URL, ErrInvalid)
		}
		method := strings.ToUpper(s.Method)
		client := &http.Client{Timeout: s.Timeout}
		name := env.Name
		if name == "" {
			name = "poll " + s.URL
		}
		return New(name, s.Every, func(ctx context.Context) ([]*message.Message, error) {
			return fetch(ctx, client, method, s)
		}, WithLogger(env.Logger))
	})

func init() { component.Register(Component) }

// fetch makes one request and turns its answer into messages.
func fetch(ctx context.Context, client *http.Client, method string, s Spec) ([]*message.Message, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range s.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.MaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, s.URL, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("%s %s: status %d", method, s.URL, resp.StatusCode)
	}
	if int64(len(body)) > s.MaxBody {
		return nil, fmt.Errorf("%s %s: answer larger than max_body (%d bytes)", method, s.URL, s.MaxBody)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil
	}
	var items []json.RawMessage
	if body[0] == '[' {
		if err := json.Unmarshal(body, &items); err != nil {
			return nil, fmt.Errorf("%s %s: the answer is not JSON: %w", method, s.URL, err)
		}
	} else {
		if !json.Valid(body) || body[0] != '{' {
			return nil, fmt.Errorf("%s %s: the answer is not a JSON object or array", method, s.URL)
		}
		items = []json.RawMessage{body}
	}
	out := make([]*message.Message, 0, len(items))
	var errs []error
	for i, it := range items {
		id, err := itemID(it, s.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("element %d: %w", i, err))
			continue
		}
		m := message.New("application/json", it, map[string]string{"poll.url": s.URL})
		m.ID = id
		out = append(out, m)
	}
	return out, joinErrs(errs)
}

// idSpace is the UUID namespace of polled elements' content IDs.
var idSpace = uuid.MustParse("5b0b2f5e-1c43-4b7e-9b0e-7d4c3f1f9a2e")

// itemID is the element's id key, or a UUID from its content.
func itemID(item json.RawMessage, key string) (string, error) {
	if key == "" {
		sum := sha256.Sum256(item)
		return uuid.NewSHA1(idSpace, sum[:]).String(), nil
	}
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(item))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return "", fmt.Errorf("id %q: the element is not an object", key)
	}
	v, ok := obj[key]
	if !ok || v == nil {
		return "", fmt.Errorf("id %q: the element has no such key", key)
	}
	switch v := v.(type) {
	case string:
		if v == "" {
			return "", fmt.Errorf("id %q: empty", key)
		}
		return v, nil
	case json.Number:
		return v.String(), nil
	}
	return "", fmt.Errorf("id %q: not a string or number", key)
}

func joinErrs(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%d elements skipped: %w", len(errs), errors.Join(errs...))
}

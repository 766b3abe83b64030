package message

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/svcflow/svcflow/internal/jsonenc"
	"github.com/svcflow/svcflow/internal/jsonscan"
)

// ContentTypeJSON is the content type of messages created by NewJSON.
const ContentTypeJSON = "application/json"

// MetaRequestHash is the meta entry in which a source records a hash of
// the request a message was made from, when the message's ID comes from
// the client (an HTTP Idempotency-Key): a channel refuses a message whose
// ID is stored with another hash (see channel.ErrIDReused). It is kept
// with the message, so the check holds across restarts.
const MetaRequestHash = "request_hash"

// Message is one unit of work taken from a source.
type Message struct {
	// ID identifies the message; New and NewJSON set a random UUID (v4).
	ID string
	// Time is when the source produced the message, in UTC.
	Time time.Time
	// ContentType describes Payload, e.g. "application/json".
	ContentType string
	// Payload is the message body as the source delivered it.
	Payload []byte
	// Meta holds facts the source knows about the message: HTTP path,
	// file name, cron tick, NATS subject and so on.
	Meta map[string]string
	// Context is the flow run's context after processing; nil before.
	Context map[string]any
	// Trace is the flow run's trace as JSON; opaque to this package.
	Trace json.RawMessage
}

// New returns a message with a fresh UUID, the current UTC time and the
// given content type, payload and meta. The payload and meta are used as
// given, not copied.
func New(contentType string, payload []byte, meta map[string]string) *Message {
	return &Message{
		ID:          uuid.NewString(),
		Time:        time.Now().UTC(),
		ContentType: contentType,
		Payload:     payload,
		Meta:        meta,
	}
}

// NewJSON returns a message whose payload is v encoded as JSON, with
// content type ContentTypeJSON. See New.
func NewJSON(v any, meta map[string]string) (*Message, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("message: encode json payload: %w", err)
	}
	return New(ContentTypeJSON, payload, meta), nil
}

// Clone returns a copy of m that shares no mutable state with m at the top
// level: Payload, Meta, Context and Trace are copied. Context values are
// not copied deeply. Clone of nil is nil.
func (m *Message) Clone() *Message {
	if m == nil {
		return nil
	}
	c := *m
	c.Payload = cloneBytes(m.Payload)
	c.Meta = maps.Clone(m.Meta)
	c.Context = maps.Clone(m.Context)
	c.Trace = json.RawMessage(cloneBytes(m.Trace))
	return &c
}

// cloneBytes copies b, keeping nil and empty apart.
func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// DecodeJSON decodes the payload as JSON into v.
func (m *Message) DecodeJSON(v any) error {
	if err := json.Unmarshal(m.Payload, v); err != nil {
		return fmt.Errorf("message %q: decode json payload: %w", m.ID, err)
	}
	return nil
}

// IsJSON reports whether contentType names a JSON media type:
// application/json, text/json or any type with a "+json" suffix. The empty
// content type is not JSON.
func IsJSON(contentType string) bool {
	if contentType == ContentTypeJSON {
		return true // the common case, without parsing
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// wire is the JSON form written by MarshalJSON.
type wire struct {
	ID            string          `json:"id"`
	Time          string          `json:"time"`
	ContentType   string          `json:"content_type"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	PayloadBase64 string          `json:"payload_base64,omitempty"`
	Meta          json.RawMessage `json:"meta,omitempty"`
	Context       json.RawMessage `json:"context,omitempty"`
	Trace         json.RawMessage `json:"trace,omitempty"`
}

// wireIn is the JSON form read by UnmarshalJSON.
type wireIn struct {
	ID            string            `json:"id"`
	Time          string            `json:"time"`
	ContentType   string            `json:"content_type"`
	Payload       json.RawMessage   `json:"payload"`
	PayloadBase64 *string           `json:"payload_base64"`
	Meta          map[string]string `json:"meta"`
	Context       json.RawMessage   `json:"context"`
	Trace         json.RawMessage   `json:"trace"`
}

// ErrTime is returned (wrapped) by MarshalJSON for a time whose year is
// outside 0 to 9999, which RFC 3339 cannot represent.
var ErrTime = errors.New("time year outside [0,9999]")

// MarshalJSON encodes the message in its language-neutral JSON form (see
// the package documentation).
func (m *Message) MarshalJSON() ([]byte, error) {
	if m == nil {
		return []byte("null"), nil
	}
	t := m.Time.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("message %q: %w: %d", m.ID, ErrTime, y)
	}
	w := wire{ID: m.ID, Time: t.Format(time.RFC3339Nano), ContentType: m.ContentType}
	switch {
	case m.Payload == nil:
	case embeddable(m.ContentType, m.Payload):
		w.Payload = m.Payload
	case utf8.Valid(m.Payload):
		s, err := json.Marshal(string(m.Payload))
		if err != nil {
			return nil, fmt.Errorf("message %q: encode payload: %w", m.ID, err)
		}
		w.Payload = s
	default:
		w.PayloadBase64 = base64.StdEncoding.EncodeToString(m.Payload)
	}
	var err error
	if m.Meta != nil {
		if w.Meta, err = json.Marshal(m.Meta); err != nil {
			return nil, fmt.Errorf("message %q: encode meta: %w", m.ID, err)
		}
	}
	if m.Context != nil {
		if w.Context, err = json.Marshal(m.Context); err != nil {
			return nil, fmt.Errorf("message %q: encode context: %w", m.ID, err)
		}
	}
	if len(m.Trace) > 0 {
		if valid, _ := jsonscan.Scan(m.Trace); !valid {
			return nil, fmt.Errorf("message %q: encode trace: %w", m.ID, ErrInvalidTrace)
		}
		w.Trace = m.Trace
	}
	b, err := json.Marshal(&w)
	if err != nil {
		return nil, fmt.Errorf("message %q: encode: %w", m.ID, err)
	}
	return b, nil
}

// ErrInvalidTrace is returned (wrapped) by MarshalJSON when Trace is not
// valid JSON.
var ErrInvalidTrace = errors.New("trace is not valid JSON")

// embeddable reports whether payload can be written as a JSON value and
// read back with exactly the same bytes: the content type is JSON or
// empty, and payload is a non-string JSON value that encoding/json leaves
// unchanged when it compacts (and HTML-escapes) embedded JSON.
func embeddable(contentType string, payload []byte) bool {
	if contentType != "" && !IsJSON(contentType) {
		return false
	}
	if len(payload) == 0 || payload[0] == '"' || !utf8.Valid(payload) || !json.Valid(payload) {
		return false
	}
	canon, err := json.Marshal(json.RawMessage(payload))
	return err == nil && bytes.Equal(canon, payload)
}

// UnmarshalJSON decodes the JSON form written by MarshalJSON into m.
func (m *Message) UnmarshalJSON(data []byte) error {
	var w wireIn
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("message: decode: %w", err)
	}
	out := Message{ID: w.ID, ContentType: w.ContentType, Meta: w.Meta}
	if len(w.Context) > 0 {
		// Numbers a float64 would round are kept as json.Number.
		if err := jsonenc.Unmarshal(w.Context, &out.Context); err != nil {
			return fmt.Errorf("message %q: decode context: %w", w.ID, err)
		}
	}
	if w.Time != "" {
		t, err := time.Parse(time.RFC3339Nano, w.Time)
		if err != nil {
			return fmt.Errorf("message %q: decode time: %w", w.ID, err)
		}
		out.Time = t.UTC()
	}
	switch {
	case w.Payload != nil && w.PayloadBase64 != nil:
		return fmt.Errorf("message %q: decode: %w", w.ID, ErrPayloadTwice)
	case w.PayloadBase64 != nil:
		p, err := base64.StdEncoding.DecodeString(*w.PayloadBase64)
		if err != nil {
			return fmt.Errorf("message %q: decode payload_base64: %w", w.ID, err)
		}
		out.Payload = p
	case len(w.Payload) > 0 && w.Payload[0] == '"':
		var s string
		if err := json.Unmarshal(w.Payload, &s); err != nil {
			return fmt.Errorf("message %q: decode payload: %w", w.ID, err)
		}
		out.Payload = []byte(s)
	case w.Payload != nil:
		out.Payload = cloneBytes(w.Payload)
	}
	if w.Trace != nil {
		out.Trace = cloneBytes(w.Trace)
	}
	*m = out
	return nil
}

// ErrPayloadTwice is returned (wrapped) by UnmarshalJSON when both
// "payload" and "payload_base64" are present.
var ErrPayloadTwice = errors.New(`both "payload" and "payload_base64" present`)

package message

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var fixedTime = time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)

func TestNew(t *testing.T) {
	before := time.Now()
	m := New("text/plain", []byte("hi"), map[string]string{"k": "v"})
	_, err := uuid.Parse(m.ID)
	require.NoError(t, err)
	assert.Equal(t, time.UTC, m.Time.Location())
	assert.False(t, m.Time.Before(before.Truncate(time.Microsecond)))
	assert.Equal(t, "text/plain", m.ContentType)
	assert.Equal(t, []byte("hi"), m.Payload)
	assert.Equal(t, map[string]string{"k": "v"}, m.Meta)
	assert.Nil(t, m.Context)
	assert.Nil(t, m.Trace)
	assert.NotEqual(t, m.ID, New("", nil, nil).ID)
}

func TestNewJSONAndDecode(t *testing.T) {
	type order struct {
		ID    int      `json:"id"`
		Items []string `json:"items"`
	}
	m, err := NewJSON(order{ID: 7, Items: []string{"a", "b"}}, nil)
	require.NoError(t, err)
	assert.Equal(t, ContentTypeJSON, m.ContentType)
	assert.JSONEq(t, `{"id":7,"items":["a","b"]}`, string(m.Payload))

	var got order
	require.NoError(t, m.DecodeJSON(&got))
	assert.Equal(t, order{ID: 7, Items: []string{"a", "b"}}, got)

	_, err = NewJSON(make(chan int), nil)
	var ute *json.UnsupportedTypeError
	assert.ErrorAs(t, err, &ute)

	bad := &Message{ID: "x", Payload: []byte("{")}
	err = bad.DecodeJSON(&got)
	var se *json.SyntaxError
	assert.ErrorAs(t, err, &se)
	assert.Contains(t, err.Error(), `"x"`)
}

func TestClone(t *testing.T) {
	assert.Nil(t, (*Message)(nil).Clone())

	m := &Message{
		ID: "a", Time: fixedTime, ContentType: "application/json",
		Payload: []byte(`{"a":1}`),
		Meta:    map[string]string{"k": "v"},
		Context: map[string]any{"n": 1.0},
		Trace:   json.RawMessage(`[1]`),
	}
	c := m.Clone()
	assert.Equal(t, m, c)

	c.Payload[0] = 'X'
	c.Meta["k"] = "changed"
	c.Context["n"] = 2.0
	c.Trace[0] = 'X'
	assert.Equal(t, []byte(`{"a":1}`), m.Payload)
	assert.Equal(t, "v", m.Meta["k"])
	assert.Equal(t, 1.0, m.Context["n"])
	assert.Equal(t, json.RawMessage(`[1]`), m.Trace)

	empty := (&Message{Payload: []byte{}, Meta: map[string]string{}}).Clone()
	assert.NotNil(t, empty.Payload)
	assert.NotNil(t, empty.Meta)
	assert.Nil(t, empty.Context)
	assert.Nil(t, empty.Trace)
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                true,
		"application/json; charset=utf-8": true,
		"Application/JSON":                true,
		"text/json":                       true,
		"application/cloudevents+json":    true,
		"text/plain":                      false,
		"":                                false,
		"application/jsonx":               false,
		";;":                              false,
	} {
		assert.Equal(t, want, IsJSON(ct), ct)
	}
}

// payloadForm reports how data (a marshaled message) holds its payload:
// "value", "string", "base64" or "none".
func payloadForm(t *testing.T, data []byte) string {
	t.Helper()
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(data, &raw))
	if p, ok := raw["payload"]; ok {
		require.NotContains(t, raw, "payload_base64")
		if p[0] == '"' {
			return "string"
		}
		return "value"
	}
	if _, ok := raw["payload_base64"]; ok {
		return "base64"
	}
	return "none"
}

func TestMarshalPayloadForms(t *testing.T) {
	tests := []struct {
		name    string
		ct      string
		payload []byte
		form    string
	}{
		{"json object", "application/json", []byte(`{"a":[1,2.5e3,true,null]}`), "value"},
		{"json array, empty content type", "", []byte(`[1,"x"]`), "value"},
		{"json number", "application/json", []byte(`-12.5`), "value"},
		{"json null", "application/json", []byte(`null`), "value"},
		{"json with +json type", "application/cloudevents+json", []byte(`{}`), "value"},
		{"json top-level string", "application/json", []byte(`"hello"`), "string"},
		{"json with spaces", "application/json", []byte(`{ "a": 1 }`), "string"},
		{"json with newline", "application/json", []byte("{\"a\":1}\n"), "string"},
		{"json with html chars", "application/json", []byte(`{"a":"<b>&"}`), "string"},
		{"json with escaped html", "application/json", []byte(`{"a":"\u003cb\u003e"}`), "value"},
		{"json with unicode escapes", "application/json", []byte(`{"a":"\u00e9\ud83d\ude00"}`), "value"},
		{"json with line separator", "application/json", []byte("[\"\u2028\"]"), "string"},
		{"json under text type", "text/plain", []byte(`{"a":1}`), "string"},
		{"text", "text/plain", []byte("hello, wörld"), "string"},
		{"text looking like json string", "text/plain", []byte(`"quoted"`), "string"},
		{"invalid json", "application/json", []byte(`{"a":`), "string"},
		{"empty", "text/plain", []byte{}, "string"},
		{"nil", "text/plain", nil, "none"},
		{"binary", "application/octet-stream", []byte{0xff, 0x00, 0xfe, 'a'}, "base64"},
		{"invalid utf8 inside json string", "application/json", []byte("[\"\xff\"]"), "base64"},
		{"nul bytes are utf8", "", []byte{0, 0, 0}, "string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Message{
				ID: "id-1", Time: fixedTime, ContentType: tt.ct, Payload: tt.payload,
				Meta:    map[string]string{"file": "a.txt"},
				Context: map[string]any{"n": 1.5, "s": "x", "l": []any{"a", true}, "o": map[string]any{"k": nil}},
				Trace:   json.RawMessage(`[{"step":"a"}]`),
			}
			data, err := json.Marshal(m)
			require.NoError(t, err)
			assert.True(t, json.Valid(data))
			assert.Equal(t, tt.form, payloadForm(t, data), string(data))

			var got Message
			require.NoError(t, json.Unmarshal(data, &got))
			assert.Equal(t, m, &got)
			assert.Equal(t, tt.payload == nil, got.Payload == nil)

			again, err := json.Marshal(&got)
			require.NoError(t, err)
			assert.Equal(t, string(data), string(again), "re-encoding is stable")
		})
	}
}

func TestMarshalShape(t *testing.T) {
	m := &Message{
		ID: "id-1", Time: fixedTime, ContentType: "application/json",
		Payload: []byte(`{"order":42}`),
		Meta:    map[string]string{"http.path": "/orders"},
	}
	data, err := json.Marshal(m)
	require.NoError(t, err)
	assert.Equal(t, `{"id":"id-1","time":"2024-05-01T12:00:00.123456789Z","content_type":"application/json",`+
		`"payload":{"order":42},"meta":{"http.path":"/orders"}}`, string(data))

	bin := &Message{ID: "b", Time: fixedTime, Payload: []byte{0xff}}
	data, err = json.Marshal(bin)
	require.NoError(t, err)
	assert.Equal(t, `{"id":"b","time":"2024-05-01T12:00:00.123456789Z","content_type":"","payload_base64":"/w=="}`, string(data))
}

func TestRoundTripKeepsNilAndEmpty(t *testing.T) {
	tests := []*Message{
		{ID: "a", Time: fixedTime},
		{ID: "b", Time: fixedTime, Payload: []byte{}, Meta: map[string]string{}, Context: map[string]any{}},
		{ID: "c", Trace: json.RawMessage(`null`)},
		{ID: "d", Time: time.Date(2024, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))},
	}
	for _, m := range tests {
		t.Run(m.ID, func(t *testing.T) {
			data, err := json.Marshal(m)
			require.NoError(t, err)
			var got Message
			require.NoError(t, json.Unmarshal(data, &got))
			assert.Equal(t, m.Payload == nil, got.Payload == nil)
			assert.Equal(t, m.Meta == nil, got.Meta == nil)
			assert.Equal(t, m.Context == nil, got.Context == nil)
			assert.Equal(t, m.Trace, got.Trace)
			assert.True(t, m.Time.Equal(got.Time))
			assert.Equal(t, time.UTC, got.Time.Location())
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	_, err := json.Marshal(&Message{ID: "x", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)})
	assert.ErrorIs(t, err, ErrTime)

	_, err = (&Message{ID: "x", Trace: json.RawMessage(`{`)}).MarshalJSON()
	assert.ErrorIs(t, err, ErrInvalidTrace)

	_, err = (&Message{ID: "x", Context: map[string]any{"c": make(chan int)}}).MarshalJSON()
	var ute *json.UnsupportedTypeError
	assert.ErrorAs(t, err, &ute)
	assert.Contains(t, err.Error(), `message "x"`)

	data, err := json.Marshal((*Message)(nil))
	require.NoError(t, err)
	assert.Equal(t, "null", string(data))
}

func TestUnmarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		is   error
	}{
		{"not an object", `[1]`, nil},
		{"bad time", `{"id":"x","time":"yesterday"}`, nil},
		{"bad base64", `{"id":"x","payload_base64":"!!"}`, nil},
		{"both payloads", `{"id":"x","payload":"a","payload_base64":"YQ=="}`, ErrPayloadTwice},
		{"meta not strings", `{"id":"x","meta":{"a":1}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Message
			err := json.Unmarshal([]byte(tt.in), &m)
			require.Error(t, err)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
		})
	}
}

func TestUnmarshalForeignInput(t *testing.T) {
	// Documents written by other tools: extra fields, pretty-printed,
	// missing optional fields.
	in := `{
	  "id": "ext-1",
	  "time": "2024-05-01T14:00:00+02:00",
	  "content_type": "application/json",
	  "payload": {"a": 1},
	  "extra": true
	}`
	var m Message
	require.NoError(t, json.Unmarshal([]byte(in), &m))
	assert.Equal(t, "ext-1", m.ID)
	assert.Equal(t, time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), m.Time)
	assert.Equal(t, `{"a": 1}`, string(m.Payload))
	assert.Nil(t, m.Meta)
}

// roundTrip marshals m in every supported way and checks that each
// decodes to exactly the same payload.
func roundTrip(t *testing.T, m *Message) {
	t.Helper()
	direct, err := m.MarshalJSON()
	require.NoError(t, err)
	viaMarshal, err := json.Marshal(m)
	require.NoError(t, err)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(m))

	for name, data := range map[string][]byte{"MarshalJSON": direct, "json.Marshal": viaMarshal, "Encoder": buf.Bytes()} {
		if !json.Valid(data) {
			t.Fatalf("%s: invalid JSON %q", name, data)
		}
		var got Message
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("%s: unmarshal %q: %v", name, data, err)
		}
		if !bytes.Equal(got.Payload, m.Payload) || (got.Payload == nil) != (m.Payload == nil) {
			t.Fatalf("%s: payload %q (content type %q) came back as %q via %s", name, m.Payload, m.ContentType, got.Payload, data)
		}
		if got.ContentType != m.ContentType || got.ID != m.ID || !got.Time.Equal(m.Time) {
			t.Fatalf("%s: header fields changed: %+v", name, got)
		}
	}
}

func FuzzMessageRoundTrip(f *testing.F) {
	contentTypes := []string{"", "application/json", "text/plain", "application/octet-stream", "application/x+json"}
	seeds := []struct {
		ct      uint8
		payload []byte
	}{
		{0, nil},
		{0, []byte{}},
		{1, []byte(`{"a":1}`)},
		{1, []byte(`{ "a" : 1 }`)},
		{1, []byte(`"str"`)},
		{1, []byte(`"<&>"`)},
		{1, []byte(`{"h":"<b>"}`)},
		{1, []byte(`{"h":"\u003c"}`)},
		{1, []byte("[\"\u2028\u2029\"]")},
		{0, []byte(`12e-3`)},
		{0, []byte(`null`)},
		{1, []byte(" true")},
		{4, []byte(`[1,{"b":[]}]`)},
		{2, []byte(`{"a":1}`)},
		{2, []byte("plain text\n\twith\ttabs")},
		{3, []byte{0xff, 0xfe, 0x00}},
		{1, []byte("[\"\xff\"]")},
		{1, []byte("\xef\xbb\xbf{}")},
		{2, []byte(strings.Repeat("[", 20000))},
	}
	for _, s := range seeds {
		f.Add(s.ct, s.payload)
	}
	f.Fuzz(func(t *testing.T, ct uint8, payload []byte) {
		m := &Message{
			ID:          "fuzz",
			Time:        fixedTime,
			ContentType: contentTypes[int(ct)%len(contentTypes)],
			Payload:     payload,
		}
		roundTrip(t, m)
	})
}

func TestUnmarshalIntoNilPointerField(t *testing.T) {
	type envelope struct {
		M *Message `json:"m"`
	}
	data, err := json.Marshal(envelope{M: &Message{ID: "x", Time: fixedTime, Payload: []byte("<html>")}})
	require.NoError(t, err)
	var env envelope
	require.NoError(t, json.Unmarshal(data, &env))
	require.NotNil(t, env.M)
	assert.Equal(t, "<html>", string(env.M.Payload))

	var nilEnv envelope
	require.NoError(t, json.Unmarshal([]byte(`{"m":null}`), &nilEnv))
	assert.Nil(t, nilEnv.M)
}

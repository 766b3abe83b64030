// Package message defines the unit of work that flows through svcflow: a
// payload taken from a source (an HTTP request body, a dropped file, a cron
// tick, a NATS message), the facts the source knows about it, and, once a
// flow has run, the run's context and trace.
//
// A Message is created by a source with New or NewJSON, which assign a
// random UUID and the current UTC time. A channel hands the message to a
// store before it runs the flow, so the message survives a crash, and
// records the outcome (context and trace) afterwards.
//
// # JSON form
//
// Messages have a language-neutral JSON form, so that stores, HTTP APIs and
// tools written in other languages can read them:
//
//	{
//	  "id": "7f1c…",
//	  "time": "2024-05-01T12:00:00.123456789Z",
//	  "content_type": "application/json",
//	  "payload": {"order": 42},
//	  "meta": {"http.path": "/orders"},
//	  "context": {"total": 99.5},
//	  "trace": [ … ]
//	}
//
// The payload is written in one of three ways, chosen so that decoding gives
// back exactly the same bytes:
//
//   - as the JSON value itself ("payload": {"order": 42}) when the content
//     type is JSON (or empty) and the payload is a JSON object, array,
//     number, boolean or null already in the compact form that
//     encoding/json produces (no insignificant white space, '<', '>', '&',
//     U+2028 and U+2029 escaped inside strings);
//   - as a JSON string ("payload": "hello") when the payload is any other
//     valid UTF-8 text, including JSON that is not compact and JSON whose
//     top-level value is itself a string;
//   - as standard base64 in "payload_base64" when the payload is not valid
//     UTF-8.
//
// A decoder therefore reads a "payload" string as the payload's text and
// any other "payload" value as the payload's raw JSON bytes. A nil payload
// is omitted; an empty one is written as "". Meta and Context are omitted
// when nil, so nil and empty maps survive a round trip as they were.
//
// Re-indenting a message's JSON (for example with json.MarshalIndent or
// json.Indent) changes the white space inside an embedded JSON payload and
// so the payload bytes decoded from it; compact encoders (json.Marshal,
// json.Encoder) keep it exact.
//
// Context values go through JSON, so after a round trip objects are
// map[string]any and arrays []any, as usual for JSON, and numbers float64,
// except a number a float64 would not write back unchanged (an integer
// beyond 2^53 such as 12345678901234567891, a decimal with more digits
// than a float64 keeps): it is a json.Number, its text, so no digit is
// lost.
package message

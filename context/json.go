package context

import "github.com/svcflow/svcflow/internal/jsonenc"

// AppendJSON appends the JSON encoding of v to dst and returns the
// extended slice. The bytes are exactly what [encoding/json.Marshal]
// writes: map keys sorted, HTML characters escaped, the same number
// formats. The values a context usually holds (maps of string to any,
// slices of any, strings, bools, numbers, nil) are encoded directly and
// without allocating, so a caller that reuses dst encodes a context's
// [Context.View] without garbage; anything else goes through
// encoding/json.
//
// On error, which names the map key or slice index of the value that
// cannot be encoded (a NaN, a channel, ...), the contents of the returned
// slice are unspecified.
func AppendJSON(dst []byte, v any) ([]byte, error) { return jsonenc.Append(dst, v) }

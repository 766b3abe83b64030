package mllp

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// ErrNoMSH is returned (wrapped) by ParseHeader for a message that does
// not begin with an MSH segment.
var ErrNoMSH = errors.New("hl7: the message does not begin with an MSH segment")

// Header is what the MSH segment of an HL7 v2 message says. Fields are
// the raw text of each field (components keep their separators:
// Type "ADT^A01^ADT_A01").
type Header struct {
	FieldSep          byte   // MSH-1, usually '|'
	Encoding          string // MSH-2, usually `^~\&`: component, repetition, escape, subcomponent
	SendingApp        string // MSH-3
	SendingFacility   string // MSH-4
	ReceivingApp      string // MSH-5
	ReceivingFacility string // MSH-6
	Time              string // MSH-7
	Type              string // MSH-9, e.g. ADT^A01^ADT_A01
	ControlID         string // MSH-10
	ProcessingID      string // MSH-11, e.g. P
	Version           string // MSH-12, e.g. 2.5
}

// ComponentSep returns the component separator (the first encoding
// character, '^' when MSH-2 is empty).
func (h Header) ComponentSep() byte {
	if h.Encoding == "" {
		return '^'
	}
	return h.Encoding[0]
}

// MessageCode returns the first component of MSH-9 ("ADT").
func (h Header) MessageCode() string { return h.component(h.Type, 0) }

// TriggerEvent returns the second component of MSH-9 ("A01").
func (h Header) TriggerEvent() string { return h.component(h.Type, 1) }

// MessageType returns the message code and trigger event of MSH-9
// joined by the component separator ("ADT^A01"), or the code alone.
func (h Header) MessageType() string {
	code, event := h.MessageCode(), h.TriggerEvent()
	if event == "" {
		return code
	}
	return code + string(h.ComponentSep()) + event
}

func (h Header) component(field string, i int) string {
	parts := strings.Split(field, string(h.ComponentSep()))
	if i < len(parts) {
		return parts[i]
	}
	return ""
}

// Segments splits an HL7 message into its segments: they end with a
// carriage return; a line feed or CR LF is accepted too, and empty
// segments are dropped.
func Segments(msg []byte) [][]byte {
	var out [][]byte
	for len(msg) > 0 {
		i := bytes.IndexAny(msg, "\r\n")
		seg := msg
		if i >= 0 {
			seg, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		if len(seg) > 0 {
			out = append(out, seg)
		}
	}
	return out
}

// ParseHeader reads the MSH segment that begins msg: the field separator
// is the byte after "MSH", the encoding characters the text up to the
// next one.
func ParseHeader(msg []byte) (Header, error) {
	msg = bytes.TrimLeft(msg, "\r\n\t ")
	if len(msg) < 4 || string(msg[:3]) != "MSH" {
		return Header{}, ErrNoMSH
	}
	sep := msg[3]
	seg := msg
	if i := bytes.IndexAny(msg, "\r\n"); i >= 0 {
		seg = msg[:i]
	}
	if sep == '\r' || sep == '\n' || (sep >= '0' && sep <= '9') || (sep >= 'A' && sep <= 'Z') || (sep >= 'a' && sep <= 'z') || sep == ' ' {
		return Header{}, fmt.Errorf("%w: %q is not a field separator", ErrNoMSH, sep)
	}
	// fields[0] is "MSH", fields[1] MSH-2, fields[n-1] MSH-n.
	fields := strings.Split(string(seg), string(sep))
	get := func(n int) string {
		if n-1 < len(fields) {
			return fields[n-1]
		}
		return ""
	}
	h := Header{
		FieldSep:          sep,
		Encoding:          get(2),
		SendingApp:        get(3),
		SendingFacility:   get(4),
		ReceivingApp:      get(5),
		ReceivingFacility: get(6),
		Time:              get(7),
		Type:              get(9),
		ControlID:         get(10),
		ProcessingID:      get(11),
		Version:           get(12),
	}
	if len(h.Encoding) > 0 && strings.IndexByte(h.Encoding, sep) >= 0 {
		return Header{}, fmt.Errorf("%w: the encoding characters %q hold the field separator", ErrNoMSH, h.Encoding)
	}
	return h, nil
}

// ACK codes (MSA-1).
const (
	// AA: application accept: the message was processed.
	AA = "AA"
	// AE: application error: processing failed; the sender may send it again.
	AE = "AE"
	// AR: application reject: the message was refused (invalid, or
	// unwanted); sending it again gets the same answer.
	AR = "AR"
)

var ackSeq atomic.Uint64

// Ack returns the acknowledgement of a message whose header is h: an MSH
// with sender and receiver swapped, message type ACK with h's trigger
// event, a new control ID, h's processing ID and version, then MSA with
// code (AA, AE or AR), h's control ID and text (escaped), each segment
// ending with a carriage return. A zero Header (a message without MSH)
// gives an ACK with empty applications, version 2.5 and an empty MSA-2.
func Ack(h Header, code, text string) []byte {
	sep := h.FieldSep
	if sep == 0 {
		sep = '|'
	}
	enc := h.Encoding
	if enc == "" {
		enc = `^~\&`
	}
	h.Encoding = enc
	version := h.Version
	if version == "" {
		version = "2.5"
	}
	proc := h.ProcessingID
	if proc == "" {
		proc = "P"
	}
	typ := "ACK"
	if ev := h.TriggerEvent(); ev != "" {
		typ += string(h.ComponentSep()) + ev + string(h.ComponentSep()) + "ACK"
	}
	now := time.Now().UTC()
	id := fmt.Sprintf("ACK%s%d", now.Format("20060102150405"), ackSeq.Add(1))
	s := string(sep)
	var b strings.Builder
	b.WriteString("MSH" + s + enc)
	for _, f := range []string{h.ReceivingApp, h.ReceivingFacility, h.SendingApp, h.SendingFacility,
		now.Format("20060102150405"), "", typ, id, proc, version} {
		b.WriteString(s + f)
	}
	b.WriteString("\rMSA" + s + code + s + h.ControlID)
	if text != "" {
		b.WriteString(s + escape(text, sep, enc))
	}
	b.WriteString("\r")
	return []byte(b.String())
}

// escape writes text for an HL7 field: the separators and the escape
// character become \F\, \S\, \R\, \E\, \T\; line breaks spaces.
func escape(text string, sep byte, enc string) string {
	encs := []byte(enc + `^~\&`)[:4] // component, repetition, escape, subcomponent
	var b strings.Builder
	for i := 0; i < len(text); i++ {
		switch c := text[i]; c {
		case sep:
			b.WriteString(`\F\`)
		case encs[0]:
			b.WriteString(`\S\`)
		case encs[1]:
			b.WriteString(`\R\`)
		case encs[2]:
			b.WriteString(`\E\`)
		case encs[3]:
			b.WriteString(`\T\`)
		case '\r', '\n':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// AckInfo is what an acknowledgement says: its MSA segment and header.
type AckInfo struct {
	Code      string // MSA-1: AA, AE, AR (or CA, CE, CR)
	ControlID string // MSA-2: the control ID of the message acknowledged
	Text      string // MSA-3, as sent (escapes kept)
	Header    Header // the ACK's own MSH
	Raw       []byte // the whole ACK
}

// ParseAck reads an acknowledgement: its MSH and MSA segments.
func ParseAck(ack []byte) (*AckInfo, error) {
	h, err := ParseHeader(ack)
	if err != nil {
		return nil, err
	}
	for _, seg := range Segments(ack) {
		if len(seg) < 4 || string(seg[:3]) != "MSA" || seg[3] != h.FieldSep {
			continue
		}
		f := strings.Split(string(seg), string(h.FieldSep))
		a := &AckInfo{Header: h, Raw: ack}
		if len(f) > 1 {
			a.Code = f[1]
		}
		if len(f) > 2 {
			a.ControlID = f[2]
		}
		if len(f) > 3 {
			a.Text = f[3]
		}
		return a, nil
	}
	return nil, errors.New("hl7: the acknowledgement has no MSA segment")
}

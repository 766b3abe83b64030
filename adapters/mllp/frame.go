package mllp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MLLP framing: a message travels as StartBlock, the HL7 text, EndBlock,
// CarriageReturn.
const (
	StartBlock     byte = 0x0B
	EndBlock       byte = 0x1C
	CarriageReturn byte = 0x0D
)

// Frame returns msg framed for MLLP.
func Frame(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+3)
	out = append(out, StartBlock)
	out = append(out, msg...)
	return append(out, EndBlock, CarriageReturn)
}

// ErrTooLarge is returned (wrapped) when a frame's content, or the bytes
// outside frames in a row, exceed the maximum size.
var ErrTooLarge = errors.New("mllp: frame larger than the maximum size")

// FrameReader reads MLLP frames from a stream.
//
// Bytes outside a frame (before a StartBlock: line breaks or noise
// between frames) are discarded, at most max in a row. A StartBlock
// inside a frame starts the frame again: the bytes before it are
// discarded. A frame ends at EndBlock: the CarriageReturn that follows
// it is not waited for (a sender waiting for its ACK is answered at
// once) and is discarded with the bytes outside frames.
type FrameReader struct {
	r   *bufio.Reader
	max int
	// Started is called when a frame's StartBlock was read (for a
	// deadline on the rest of the frame); may be nil.
	Started func()
}

// NewFrameReader reads frames of at most max bytes of content from r.
func NewFrameReader(r io.Reader, max int) *FrameReader {
	return &FrameReader{r: bufio.NewReaderSize(r, 16<<10), max: max}
}

// Next returns the content of the next frame. It returns io.EOF at a
// clean end of the stream between frames, io.ErrUnexpectedEOF inside a
// frame, and an error wrapping ErrTooLarge with the frame's first bytes
// (up to max) when the content exceeds max: the rest of that frame is not
// read, so the stream cannot be read further.
func (fr *FrameReader) Next() ([]byte, error) {
	junk := 0
	for {
		b, err := fr.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b == StartBlock {
			break
		}
		junk++
		if junk > fr.max {
			return nil, fmt.Errorf("%w: %d bytes outside a frame", ErrTooLarge, junk)
		}
	}
	if fr.Started != nil {
		fr.Started()
	}
	var buf []byte
	for {
		chunk, err := fr.r.ReadSlice(EndBlock)
		if i := bytes.LastIndexByte(chunk, StartBlock); i >= 0 {
			buf, chunk = buf[:0], chunk[i+1:] // started again
		}
		ended := err == nil
		if ended {
			chunk = chunk[:len(chunk)-1]
		}
		if len(buf)+len(chunk) > fr.max {
			buf = append(buf, chunk[:fr.max-len(buf)]...)
			return buf, fmt.Errorf("%w (%d bytes)", ErrTooLarge, fr.max)
		}
		buf = append(buf, chunk...)
		if ended {
			break
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	if buf == nil {
		buf = []byte{}
	}
	return buf, nil
}

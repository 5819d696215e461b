package ipc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxFrame is the frame-size cap used when none is configured.
const DefaultMaxFrame = 64 << 20

// headerSize is the length prefix of every frame.
const headerSize = 4

// Errors returned by frame reads and writes. Any error from a Reader other
// than io.EOF means the stream can no longer be trusted.
var (
	// ErrFrameTooLarge: a frame's length is above the cap.
	ErrFrameTooLarge = errors.New("ipc: frame larger than the size cap")
	// ErrMalformed: a frame's body is not a well-formed message.
	ErrMalformed = errors.New("ipc: malformed frame")
)

// frameReader reads length-prefixed frames into a reused buffer.
type frameReader struct {
	r   *bufio.Reader
	max int
	hdr [headerSize]byte
	buf []byte
}

// next returns the body of the next frame. The slice is valid until the next
// call. A stream that ends between frames returns io.EOF; one that ends inside
// a frame returns io.ErrUnexpectedEOF.
func (f *frameReader) next() ([]byte, error) {
	if _, err := io.ReadFull(f.r, f.hdr[:]); err != nil {
		return nil, err // io.EOF only when no byte of the header came
	}
	n := binary.BigEndian.Uint32(f.hdr[:])
	if uint64(n) > uint64(f.max) {
		return nil, fmt.Errorf("%w: %d bytes, cap %d", ErrFrameTooLarge, n, f.max)
	}
	if cap(f.buf) < int(n) {
		f.buf = make([]byte, n)
	}
	// Drop a buffer that one huge frame grew, so that it is not held forever.
	if cap(f.buf) > 1<<20 && n < 64<<10 {
		f.buf = make([]byte, n, 64<<10)
	}
	f.buf = f.buf[:n]
	if _, err := io.ReadFull(f.r, f.buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return f.buf, nil
}

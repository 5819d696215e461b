package ipc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
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

// maxHeaderLen is the largest length a header can say. A variable, so that
// int(maxHeaderLen) compiles where int has 32 bits (frameCap never reaches it
// there).
var maxHeaderLen uint64 = math.MaxUint32

// frameCap turns a configured cap into the one in force: DefaultMaxFrame for
// 0 or less, and never more than a 4-byte length can say.
func frameCap(maxFrame int) int {
	if maxFrame <= 0 {
		return DefaultMaxFrame
	}
	if uint64(maxFrame) > maxHeaderLen { // only where int has 64 bits
		return int(maxHeaderLen)
	}
	return maxFrame
}

// Sizes of a frameReader's body buffer: the first allocation, and the
// capacity above which the buffer is dropped after a small frame, so that one
// huge frame does not pin its buffer forever.
const (
	minFrameBuf  = 4 << 10
	keepFrameBuf = 1 << 20
)

// frameReader reads length-prefixed frames into a reused buffer.
type frameReader struct {
	r   *bufio.Reader
	max int
	hdr [headerSize]byte
	buf []byte

	bigFrame func() // called on the header of a frame of bigSize bytes or more
	bigSize  int
}

// next returns the body of the next frame. The slice is valid until the next
// call. A stream that ends between frames returns io.EOF; one that ends inside
// a frame (header or body) returns io.ErrUnexpectedEOF.
//
// The length is checked against the cap before anything is allocated, and
// the buffer grows (by doubling) only as bytes of the body actually arrive: a
// header that claims 60 MB followed by nothing costs a few KB, not 60 MB.
func (f *frameReader) next() ([]byte, error) {
	if _, err := io.ReadFull(f.r, f.hdr[:]); err != nil {
		return nil, err // io.EOF only when no byte of the header came
	}
	size := binary.BigEndian.Uint32(f.hdr[:])
	if uint64(size) > uint64(f.max) {
		return nil, fmt.Errorf("%w: %d bytes, cap %d", ErrFrameTooLarge, size, f.max)
	}
	n := int(size) // fits: f.max is an int
	if f.bigFrame != nil && n >= f.bigSize {
		f.bigFrame()
	}
	if cap(f.buf) > keepFrameBuf && n <= keepFrameBuf/16 {
		f.buf = nil
	}
	if n <= cap(f.buf) {
		f.buf = f.buf[:n]
		if _, err := io.ReadFull(f.r, f.buf); err != nil {
			return nil, unexpected(err)
		}
		return f.buf, nil
	}
	b := f.buf[:0]
	for len(b) < n {
		if len(b) == cap(b) {
			c := min(max(2*cap(b), minFrameBuf), max(n, minFrameBuf))
			nb := make([]byte, len(b), c)
			copy(nb, b)
			b = nb
		}
		end := min(cap(b), n)
		m, err := io.ReadFull(f.r, b[len(b):end])
		b = b[:len(b)+m]
		if err != nil {
			f.buf = b[:0]
			return nil, unexpected(err)
		}
	}
	f.buf = b
	return b, nil
}

// unexpected maps the end of the stream inside a frame to io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

package ipc

import (
	"encoding/binary"
	"fmt"
)

// MaxDepth is how deeply arrays and maps may nest inside one value given to
// [Validate] (and so inside one frame, whose message array is the first level):
// MaxDepth nested containers are accepted, one more is refused, whether or not
// the innermost is empty.
const MaxDepth = 64

// Validate checks that b holds exactly one well-formed msgpack value: every
// length and element count fits in the bytes that follow it, nesting stays
// within MaxDepth, and nothing trails the value. It allocates nothing, so it
// can run on untrusted input before a decoder (which trusts lengths) sees it.
func Validate(b []byte) error {
	n, err := ValueLen(b)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("%w: %d trailing bytes after the value", ErrMalformed, len(b)-n)
	}
	return nil
}

// skipValue returns the length of the first msgpack value in b.
func skipValue(b []byte) (int, error) { return skipWithin(b, MaxDepth) }

// skipWithin is skipValue of a value that may open at most limit levels of
// containers: MaxDepth less those already open around it in its frame.
func skipWithin(b []byte, limit int) (int, error) {
	var stack [MaxDepth]int // values still to read at each open level
	depth := 0
	off := 0
	pending := 1
	for {
		for pending == 0 {
			if depth == 0 {
				return off, nil
			}
			depth--
			pending = stack[depth]
		}
		if off >= len(b) {
			return 0, fmt.Errorf("%w: truncated at byte %d", ErrMalformed, off)
		}
		pending--
		c := b[off]
		off++
		var (
			size      int  // payload bytes that follow the header
			count     int  // nested values that follow (array elements, map keys+values)
			container bool // an array or a map, even an empty one, opens a level
			err       error
		)
		switch {
		case c <= 0x7f || c >= 0xe0: // fixint
		case c <= 0x8f: // fixmap
			count, container = 2*int(c&0x0f), true
		case c <= 0x9f: // fixarray
			count, container = int(c&0x0f), true
		case c <= 0xbf: // fixstr
			size = int(c & 0x1f)
		default:
			switch c {
			case 0xc0, 0xc2, 0xc3: // nil, false, true
			case 0xc4, 0xd9: // bin8, str8
				size, off, err = readLen(b, off, 1)
			case 0xc5, 0xda: // bin16, str16
				size, off, err = readLen(b, off, 2)
			case 0xc6, 0xdb: // bin32, str32
				size, off, err = readLen(b, off, 4)
			case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, then a type byte
				size, off, err = readLen(b, off, 1<<(c-0xc7))
				size++
			case 0xca, 0xce, 0xd2: // float32, uint32, int32
				size = 4
			case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
				size = 8
			case 0xcc, 0xd0: // uint8, int8
				size = 1
			case 0xcd, 0xd1: // uint16, int16
				size = 2
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16, after a type byte
				size = 1 + 1<<(c-0xd4)
			case 0xdc: // array16
				count, off, err = readLen(b, off, 2)
				container = true
			case 0xdd: // array32
				count, off, err = readLen(b, off, 4)
				container = true
			case 0xde: // map16
				count, off, err = readLen(b, off, 2)
				count, container = 2*count, true
			case 0xdf: // map32
				count, off, err = readLen(b, off, 4)
				count, container = 2*count, true
			default: // 0xc1 is never used
				return 0, fmt.Errorf("%w: invalid code 0x%02x at byte %d", ErrMalformed, c, off-1)
			}
		}
		if err != nil {
			return 0, err
		}
		if size > len(b)-off {
			return 0, fmt.Errorf("%w: byte %d claims %d bytes, %d remain", ErrMalformed, off, size, len(b)-off)
		}
		off += size
		if container {
			// Every value takes at least one byte: a count beyond the bytes left
			// is a lie, whatever it claims.
			if count > len(b)-off {
				return 0, fmt.Errorf("%w: byte %d claims %d elements, %d bytes remain", ErrMalformed, off, count, len(b)-off)
			}
			if depth >= limit {
				return 0, fmt.Errorf("%w: nested deeper than %d", ErrMalformed, MaxDepth)
			}
			if count > 0 {
				stack[depth] = pending
				depth++
				pending = count
			}
		}
	}
}

func readLen(b []byte, off, width int) (int, int, error) {
	if len(b)-off < width {
		return 0, 0, fmt.Errorf("%w: truncated length at byte %d", ErrMalformed, off)
	}
	var n uint64
	switch width {
	case 1:
		n = uint64(b[off])
	case 2:
		n = uint64(binary.BigEndian.Uint16(b[off:]))
	case 4:
		n = uint64(binary.BigEndian.Uint32(b[off:]))
	}
	if n > uint64(len(b)) { // keeps the int conversion and later sums safe on any platform
		return 0, 0, fmt.Errorf("%w: byte %d claims length %d in a frame of %d bytes", ErrMalformed, off, n, len(b))
	}
	return int(n), off + width, nil
}

// ValueLen returns the length of the first msgpack value in b, checked as
// [Validate] checks a whole value. It lets a caller walk values written back
// to back, as the arguments of a chunk are.
func ValueLen(b []byte) (int, error) { return valueLenWithin(b, MaxDepth) }

// valueLenWithin is ValueLen of a value that may open at most limit levels
// of containers (see skipWithin).
func valueLenWithin(b []byte, limit int) (int, error) {
	if len(b) > 0 {
		// The common case, a small scalar, without skipValue's stack.
		switch c := b[0]; {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
			return 1, nil
		case c == 0xcc || c == 0xd0:
			if len(b) >= 2 {
				return 2, nil
			}
		case c == 0xcd || c == 0xd1:
			if len(b) >= 3 {
				return 3, nil
			}
		case c == 0xca || c == 0xce || c == 0xd2:
			if len(b) >= 5 {
				return 5, nil
			}
		case c == 0xcb || c == 0xcf || c == 0xd3:
			if len(b) >= 9 {
				return 9, nil
			}
		}
	}
	return skipWithin(b, limit)
}

// CountValues checks that b holds well-formed msgpack values back to back,
// nothing else, and returns how many.
func CountValues(b []byte) (int, error) {
	n := 0
	for off := 0; off < len(b); n++ {
		k, err := ValueLen(b[off:])
		if err != nil {
			return n, fmt.Errorf("value %d: %w", n, err)
		}
		off += k
	}
	return n, nil
}

package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// Bounds of a Reader's cache of task names (Task.Func), which saves one
// allocation per task; a peer that sends many names only fills it.
const (
	maxNames   = 256
	maxNameLen = 64
)

// cursor reads msgpack values from b, checking every bound and every type.
type cursor struct {
	b      []byte
	off    int
	names  *map[string]string
	shared bool // slices may point into b, and Items reuse their array
}

var errTruncated = errors.New("truncated")

// own copies the rest of the frame into a fresh array that the slices of
// the message can share, and reads on in the copy.
func (c *cursor) own() {
	if c.shared {
		return
	}
	rest := make([]byte, len(c.b)-c.off)
	copy(rest, c.b[c.off:])
	c.b, c.off = rest, 0
}

// head reads the code that starts the next value, and returns where it
// stands, for typeError; ok is false at the end of the frame.
func (c *cursor) head() (at int, b byte, ok bool) {
	at = c.off
	if at >= len(c.b) {
		return at, 0, false
	}
	c.off++
	return at, c.b[at], true
}

// truncated says that the frame ends inside what.
func truncated(what string) error { return fmt.Errorf("%s: %w", what, errTruncated) }

// take returns the next n bytes, capacity capped so that an append to one
// value can never write over the next.
func (c *cursor) take(n int) ([]byte, error) {
	if n < 0 || n > len(c.b)-c.off {
		return nil, errTruncated
	}
	p := c.b[c.off : c.off+n : c.off+n]
	c.off += n
	return p, nil
}

// uintN reads a big-endian unsigned integer of width bytes.
func (c *cursor) uintN(width int) (uint64, error) {
	p, err := c.take(width)
	if err != nil {
		return 0, err
	}
	switch width {
	case 1:
		return uint64(p[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(p)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(p)), nil
	default:
		return binary.BigEndian.Uint64(p), nil
	}
}

// size reads a length of width bytes and checks that at least perItem × the
// length bytes follow it.
func (c *cursor) size(width, perItem int) (int, error) {
	v, err := c.uintN(width)
	if err != nil {
		return 0, err
	}
	if v > uint64((len(c.b)-c.off)/perItem) {
		return 0, fmt.Errorf("length %d at byte %d is beyond the frame", v, c.off-width)
	}
	return int(v), nil
}

func (c *cursor) typeError(what string, at int, b byte) error {
	return fmt.Errorf("%s: unexpected code 0x%02x at byte %d", what, b, at)
}

// integer reads any msgpack integer: neg reports a negative value, whose
// two's complement is u.
func (c *cursor) integer(what string) (u uint64, neg bool, err error) {
	at, b, ok := c.head()
	if !ok {
		return 0, false, truncated(what)
	}
	switch {
	case b <= 0x7f:
		return uint64(b), false, nil
	case b >= 0xe0:
		return uint64(int64(int8(b))), true, nil
	}
	var width int
	signed := false
	switch b {
	case 0xcc, 0xcd, 0xce, 0xcf: // uint8, 16, 32, 64
		width = 1 << (b - 0xcc)
	case 0xd0, 0xd1, 0xd2, 0xd3: // int8, 16, 32, 64
		width, signed = 1<<(b-0xd0), true
	default:
		return 0, false, c.typeError(what+": want an integer", at, b)
	}
	v, err := c.uintN(width)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", what, err)
	}
	if signed {
		shift := 64 - 8*width
		s := int64(v<<shift) >> shift // sign-extend
		return uint64(s), s < 0, nil
	}
	return v, false, nil
}

func (c *cursor) uint(what string) (uint64, error) {
	u, neg, err := c.integer(what)
	if err == nil && neg {
		err = fmt.Errorf("%s: negative value %d", what, int64(u))
	}
	return u, err
}

func (c *cursor) int64(what string) (int64, error) {
	u, neg, err := c.integer(what)
	if err == nil && !neg && u > math.MaxInt64 {
		err = fmt.Errorf("%s: %d overflows int64", what, u)
	}
	return int64(u), err
}

func (c *cursor) int(what string) (int, error) {
	v, err := c.int64(what)
	if err == nil && int64(int(v)) != v {
		err = fmt.Errorf("%s: %d overflows int", what, v)
	}
	return int(v), err
}

func (c *cursor) bool(what string) (bool, error) {
	at, b, ok := c.head()
	switch {
	case !ok:
		return false, truncated(what)
	case b == 0xc2:
		return false, nil
	case b == 0xc3:
		return true, nil
	}
	return false, c.typeError(what+": want a bool", at, b)
}

// nil reports whether the next value is nil, and if so skips it.
func (c *cursor) nil() bool {
	if c.off < len(c.b) && c.b[c.off] == 0xc0 {
		c.off++
		return true
	}
	return false
}

// arrayLen reads an array header whose count fits in the bytes that follow.
func (c *cursor) arrayLen(what string) (n int, err error) {
	at, b, ok := c.head()
	switch {
	case !ok:
		err = errTruncated
	case b >= 0x90 && b <= 0x9f:
		n = int(b & 0x0f)
		if n > len(c.b)-c.off {
			err = errTruncated
		}
	case b == 0xdc:
		n, err = c.size(2, 1)
	case b == 0xdd:
		n, err = c.size(4, 1)
	default:
		return 0, c.typeError(what+": want an array", at, b)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return n, nil
}

// strBytes reads a str and returns its bytes, in place.
func (c *cursor) strBytes(what string) ([]byte, error) { return c.bytes(what, false) }

// binOrNil reads a bin, in place, or nil.
func (c *cursor) binOrNil(what string) ([]byte, error) { return c.bytes(what, true) }

// bytes reads a str or, with bin, a bin or nil, and returns its bytes in
// place (nil for nil): the two differ only in their codes.
func (c *cursor) bytes(what string, bin bool) (p []byte, err error) {
	at, b, ok := c.head()
	n := 0
	switch {
	case !ok:
		err = errTruncated
	case !bin && b >= 0xa0 && b <= 0xbf: // fixstr
		n = int(b & 0x1f)
	case !bin && b >= 0xd9 && b <= 0xdb: // str8, 16, 32
		n, err = c.size(1<<(b-0xd9), 1)
	case !bin:
		return nil, c.typeError(what+": want a string", at, b)
	case b == 0xc0:
		return nil, nil
	case b >= 0xc4 && b <= 0xc6: // bin8, 16, 32
		n, err = c.size(1<<(b-0xc4), 1)
	default:
		return nil, c.typeError(what+": want bin or nil", at, b)
	}
	if err == nil {
		p, err = c.take(n)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return p, nil
}

func (c *cursor) str(what string) (string, error) {
	p, err := c.strBytes(what)
	return string(p), err
}

// name reads a task name through the Reader's cache.
func (c *cursor) name(what string) (string, error) {
	p, err := c.strBytes(what)
	if err != nil || len(p) > maxNameLen {
		return string(p), err
	}
	if s, ok := (*c.names)[string(p)]; ok { // no allocation for the lookup
		return s, nil
	}
	s := string(p)
	if *c.names == nil {
		*c.names = make(map[string]string)
	}
	if len(*c.names) < maxNames {
		(*c.names)[s] = s
	}
	return s, nil
}

// raw returns the next value, whatever it is, in place.
func (c *cursor) raw(what string) (msgpack.RawMessage, error) {
	if c.off >= len(c.b) {
		return nil, truncated(what)
	}
	n, err := ValueLen(c.b[c.off:])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	p, err := c.take(n)
	return msgpack.RawMessage(p), err
}

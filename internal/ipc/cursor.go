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
//
// Its errors are sticky, as bufio.Scanner's are: the first read that fails
// records err, and from then on every read returns a zero value (0, false,
// nil, "", and true from nil) and looks at nothing, so it costs no
// allocation. A decoder reads a message field after field and checks err
// once at the end, and before it acts on a value it has read.
type cursor struct {
	b      []byte
	off    int
	err    error // the first failure; once set, nothing more is read
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

// fail records that reading what failed with err.
func (c *cursor) fail(what string, err error) { c.err = fmt.Errorf("%s: %w", what, err) }

// The readers below are the sticky ones: each returns a zero value when an
// earlier read failed, or when it fails itself and records why.

// integer reads any msgpack integer: neg reports a negative value, whose
// two's complement is u.
func (c *cursor) integer(what string) (u uint64, neg bool) {
	if c.err != nil {
		return 0, false
	}
	at, b, ok := c.head()
	switch {
	case !ok:
		c.fail(what, errTruncated)
		return 0, false
	case b <= 0x7f:
		return uint64(b), false
	case b >= 0xe0:
		return uint64(int64(int8(b))), true
	}
	var width int
	signed := false
	switch b {
	case 0xcc, 0xcd, 0xce, 0xcf: // uint8, 16, 32, 64
		width = 1 << (b - 0xcc)
	case 0xd0, 0xd1, 0xd2, 0xd3: // int8, 16, 32, 64
		width, signed = 1<<(b-0xd0), true
	default:
		c.err = c.typeError(what+": want an integer", at, b)
		return 0, false
	}
	v, err := c.uintN(width)
	if err != nil {
		c.fail(what, err)
		return 0, false
	}
	if signed {
		shift := 64 - 8*width
		s := int64(v<<shift) >> shift // sign-extend
		return uint64(s), s < 0
	}
	return v, false
}

func (c *cursor) uint(what string) uint64 {
	u, neg := c.integer(what)
	if neg {
		c.err, u = fmt.Errorf("%s: negative value %d", what, int64(u)), 0
	}
	return u
}

func (c *cursor) int64(what string) int64 {
	u, neg := c.integer(what)
	if !neg && u > math.MaxInt64 {
		c.err, u = fmt.Errorf("%s: %d overflows int64", what, u), 0
	}
	return int64(u)
}

func (c *cursor) int(what string) int {
	v := c.int64(what)
	if int64(int(v)) != v {
		c.err, v = fmt.Errorf("%s: %d overflows int", what, v), 0
	}
	return int(v)
}

func (c *cursor) bool(what string) bool {
	if c.err != nil {
		return false
	}
	at, b, ok := c.head()
	switch {
	case !ok:
		c.fail(what, errTruncated)
	case b == 0xc3:
		return true
	case b != 0xc2:
		c.err = c.typeError(what+": want a bool", at, b)
	}
	return false
}

// nil reports whether the next value is nil, and if so skips it. After an
// error it reports true: there is nothing more to read.
func (c *cursor) nil() bool {
	if c.err != nil {
		return true
	}
	if c.off < len(c.b) && c.b[c.off] == 0xc0 {
		c.off++
		return true
	}
	return false
}

// arrayLen reads an array header whose count fits in the bytes that follow.
func (c *cursor) arrayLen(what string) int {
	if c.err != nil {
		return 0
	}
	at, b, ok := c.head()
	var n int
	var err error
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
		c.err = c.typeError(what+": want an array", at, b)
		return 0
	}
	if err != nil {
		c.fail(what, err)
		return 0
	}
	return n
}

// fields reads the header of an array that must hold want fields; name is
// what the error calls an array of another length.
func (c *cursor) fields(what, name string, want int) {
	if n := c.arrayLen(what); n != want && c.err == nil {
		c.err = fmt.Errorf("%s with %d fields, want %d", name, n, want)
	}
}

// strBytes reads a str and returns its bytes, in place.
func (c *cursor) strBytes(what string) []byte { return c.bytes(what, false) }

// binOrNil reads a bin, in place, or nil.
func (c *cursor) binOrNil(what string) []byte { return c.bytes(what, true) }

// bytes reads a str or, with bin, a bin or nil, and returns its bytes in
// place (nil for nil): the two differ only in their codes.
func (c *cursor) bytes(what string, bin bool) []byte {
	if c.err != nil {
		return nil
	}
	at, b, ok := c.head()
	n := 0
	var err error
	switch {
	case !ok:
		err = errTruncated
	case !bin && b >= 0xa0 && b <= 0xbf: // fixstr
		n = int(b & 0x1f)
	case !bin && b >= 0xd9 && b <= 0xdb: // str8, 16, 32
		n, err = c.size(1<<(b-0xd9), 1)
	case !bin:
		c.err = c.typeError(what+": want a string", at, b)
		return nil
	case b == 0xc0:
		return nil
	case b >= 0xc4 && b <= 0xc6: // bin8, 16, 32
		n, err = c.size(1<<(b-0xc4), 1)
	default:
		c.err = c.typeError(what+": want bin or nil", at, b)
		return nil
	}
	var p []byte
	if err == nil {
		p, err = c.take(n)
	}
	if err != nil {
		c.fail(what, err)
	}
	return p
}

func (c *cursor) str(what string) string { return string(c.strBytes(what)) }

// name reads a task name through the Reader's cache.
func (c *cursor) name(what string) string {
	p := c.strBytes(what)
	if c.err != nil || len(p) > maxNameLen {
		return string(p)
	}
	if s, ok := (*c.names)[string(p)]; ok { // no allocation for the lookup
		return s
	}
	s := string(p)
	if *c.names == nil {
		*c.names = make(map[string]string)
	}
	if len(*c.names) < maxNames {
		(*c.names)[s] = s
	}
	return s
}

// raw returns the next value, whatever it is, in place: a value with open
// levels of containers around it in the frame (the message array is the
// first), which count against MaxDepth, as Validate of the whole frame
// counts them.
func (c *cursor) raw(what string, open int) msgpack.RawMessage {
	if c.err != nil {
		return nil
	}
	if c.off >= len(c.b) {
		c.fail(what, errTruncated)
		return nil
	}
	n, err := valueLenWithin(c.b[c.off:], MaxDepth-open)
	if err != nil {
		c.fail(what, err)
		return nil
	}
	p, err := c.take(n)
	if err != nil {
		c.err = err
	}
	return p
}

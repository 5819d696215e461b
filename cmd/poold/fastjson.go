package main

import (
	"encoding/binary"
	"math"
	"unicode/utf16"
	"unicode/utf8"
)

// The quick way from a task file's JSON to the msgpack that the workers
// read: values are converted as they are parsed, with no Go value in
// between. Decoding an entry into map[string]any and encoding its args
// again cost 12 µs of the command's 36 µs per echo task (a CPU profile of
// 100,000 tasks, 2026-12-02); this does the same in well under 1 µs.
//
// It takes only what it is sure to convert exactly as the exact way
// (encoding/json, then convert, then msgpack) would: anything else, wrong
// or merely unusual (a syntax error, an integer beyond 64 bits, a
// duplicate key, invalid UTF-8, a lone surrogate, deep nesting), makes it
// refuse, and the caller goes the exact way, which says what is wrong.

// maxFastDepth bounds the nesting the quick way takes; deeper values go
// the exact way.
const maxFastDepth = 32

// mpConv converts JSON values to msgpack, appending to out.
type mpConv struct {
	out     []byte
	keys    []span // the keys of the objects being converted, in out
	scratch []byte // a string being unescaped
	depth   int

	// items, when recordItems is set, gets the span in out of each element
	// of the outermost array (a map entry's argument values), relative to
	// the start of the array's elements until the array ends.
	items       []span
	recordItems bool
}

type span struct{ start, end int }

// Byte classes, looked up rather than compared: a table is one load and
// one branch a byte in the loops over strings and space.
const (
	clsPlain   = iota // a byte of a string that needs no second look
	clsQuote          // "
	clsEscape         // \
	clsControl        // below 0x20: not allowed in a string
	clsHigh           // 0x80 and up: part of a UTF-8 sequence
)

var byteClass = func() (t [256]byte) {
	for c := range 256 {
		switch {
		case c == '"':
			t[c] = clsQuote
		case c == '\\':
			t[c] = clsEscape
		case c < 0x20:
			t[c] = clsControl
		case c >= utf8.RuneSelf:
			t[c] = clsHigh
		}
	}
	return t
}()

var spaceTable = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

func isSpace(c byte) bool { return spaceTable[c] }

// skipSpace returns the offset of the first byte at or after i that is
// not JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && spaceTable[b[i]] {
		i++
	}
	return i
}

// value converts the value that starts at b[i] and returns the offset just
// after it, or -1 to refuse.
func (c *mpConv) value(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '{':
		return c.object(b, i)
	case '[':
		return c.array(b, i)
	case '"':
		return c.str(b, i)
	case 't':
		return c.literal(b, i, "true", 0xc3)
	case 'f':
		return c.literal(b, i, "false", 0xc2)
	case 'n':
		return c.literal(b, i, "null", 0xc0)
	default:
		return c.number(b, i)
	}
}

func (c *mpConv) literal(b []byte, i int, lit string, code byte) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	c.out = append(c.out, code)
	return i + len(lit)
}

func (c *mpConv) object(b []byte, i int) int {
	if c.depth++; c.depth > maxFastDepth {
		return -1
	}
	defer func() { c.depth-- }()
	hdr := len(c.out)
	c.out = append(c.out, 0)
	keys := len(c.keys)
	n := 0
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		c.fixHeader(hdr, 0, 0x80, 0xde, 0xdf)
		return i + 1
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return -1
		}
		ks := len(c.out)
		if i = c.str(b, i); i < 0 {
			return -1
		}
		c.keys = append(c.keys, span{ks, len(c.out)})
		if i = skipSpace(b, i); i >= len(b) || b[i] != ':' {
			return -1
		}
		if i = c.value(b, skipSpace(b, i+1)); i < 0 {
			return -1
		}
		n++
		if i = skipSpace(b, i); i >= len(b) {
			return -1
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if b[i] != '}' {
			return -1
		}
		break
	}
	// A repeated key: encoding/json keeps the last value, msgpack would
	// carry both. Rare enough to leave to the exact way.
	if c.duplicateKey(c.keys[keys:]) {
		return -1
	}
	c.keys = c.keys[:keys]
	c.fixHeader(hdr, n, 0x80, 0xde, 0xdf)
	return i + 1
}

// duplicateKey says whether two of the encoded keys are the same.
func (c *mpConv) duplicateKey(keys []span) bool {
	for i := 1; i < len(keys); i++ {
		ki := c.out[keys[i].start:keys[i].end]
		for _, k := range keys[:i] {
			if string(c.out[k.start:k.end]) == string(ki) {
				return true
			}
		}
		if i >= 64 {
			return true // quadratic from here: an object this wide goes the exact way
		}
	}
	return false
}

func (c *mpConv) array(b []byte, i int) int {
	if c.depth++; c.depth > maxFastDepth {
		return -1
	}
	defer func() { c.depth-- }()
	record := c.recordItems && c.depth == 1
	hdr := len(c.out)
	c.out = append(c.out, 0)
	n := 0
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		c.fixHeader(hdr, 0, 0x90, 0xdc, 0xdd)
		return i + 1
	}
	for {
		start := len(c.out)
		if i = c.value(b, i); i < 0 {
			return -1
		}
		if record {
			c.items = append(c.items, span{start - hdr - 1, len(c.out) - hdr - 1})
		}
		n++
		if i = skipSpace(b, i); i >= len(b) {
			return -1
		}
		if b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if b[i] != ']' {
			return -1
		}
		break
	}
	shift := c.fixHeader(hdr, n, 0x90, 0xdc, 0xdd)
	if record {
		for k := range c.items {
			c.items[k].start += hdr + shift
			c.items[k].end += hdr + shift
		}
	}
	return i + 1
}

// fixHeader writes the header of the map or array of n elements whose one
// reserved byte is at out[hdr], making room for a longer header when n
// needs one. It returns the header's length.
func (c *mpConv) fixHeader(hdr, n int, fix, code16, code32 byte) int {
	switch {
	case n <= 15:
		c.out[hdr] = fix | byte(n)
		return 1
	case n <= math.MaxUint16:
		c.out = append(c.out, 0, 0)
		copy(c.out[hdr+3:], c.out[hdr+1:len(c.out)-2])
		c.out[hdr] = code16
		binary.BigEndian.PutUint16(c.out[hdr+1:], uint16(n))
		return 3
	default:
		c.out = append(c.out, 0, 0, 0, 0)
		copy(c.out[hdr+5:], c.out[hdr+1:len(c.out)-4])
		c.out[hdr] = code32
		binary.BigEndian.PutUint32(c.out[hdr+1:], uint32(n))
		return 5
	}
}

// str converts the string at b[i] (its opening quote).
func (c *mpConv) str(b []byte, i int) int {
	content, next, escaped := unquote(c.scratch[:0], b, i)
	if next < 0 {
		return -1
	}
	if escaped {
		c.scratch = content[:0] // keep the grown buffer
	}
	c.appendStrHeader(len(content))
	c.out = append(c.out, content...)
	return next
}

func (c *mpConv) appendStrHeader(n int) {
	switch {
	case n <= 31:
		c.out = append(c.out, 0xa0|byte(n))
	case n <= math.MaxUint8:
		c.out = append(c.out, 0xd9, byte(n))
	case n <= math.MaxUint16:
		c.out = append(c.out, 0xda, byte(n>>8), byte(n))
	default:
		c.out = append(c.out, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// unquote reads the JSON string whose opening quote is at b[i] and returns
// its content and the offset after its closing quote (-1: refused). The
// content is a part of b when the string has no escapes, else (escaped) it
// is unescaped onto dst.
func unquote(dst, b []byte, i int) (content []byte, next int, escaped bool) {
	start := i + 1
	hasHigh := false
	j := start
scan:
	for ; j < len(b); j++ {
		switch byteClass[b[j]] {
		case clsPlain:
		case clsQuote:
			if hasHigh && !utf8.Valid(b[start:j]) {
				return nil, -1, false // encoding/json would put U+FFFD in
			}
			return b[start:j], j + 1, false
		case clsEscape:
			break scan
		case clsControl:
			return nil, -1, false
		case clsHigh:
			hasHigh = true
		}
	}
	if j >= len(b) {
		return nil, -1, false
	}
	if hasHigh && !utf8.Valid(b[start:j]) {
		return nil, -1, false
	}
	dst = append(dst, b[start:j]...)
	for j < len(b) {
		ch := b[j]
		switch {
		case ch == '"':
			return dst, j + 1, true
		case ch < 0x20:
			return nil, -1, false
		case ch != '\\':
			// A run of plain bytes.
			k := j
			for k < len(b) && b[k] != '"' && b[k] != '\\' && b[k] >= 0x20 {
				k++
			}
			if !utf8.Valid(b[j:k]) {
				return nil, -1, false
			}
			dst = append(dst, b[j:k]...)
			j = k
			continue
		}
		if j+1 >= len(b) {
			return nil, -1, false
		}
		switch b[j+1] {
		case '"', '\\', '/':
			dst = append(dst, b[j+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(b, j+2)
			if !ok {
				return nil, -1, false
			}
			j += 6
			if utf16.IsSurrogate(r) {
				// Only a valid pair: encoding/json turns a lone half
				// into U+FFFD.
				r2, ok := hex4(b, j+2)
				if !ok || j+1 >= len(b) || b[j] != '\\' || b[j+1] != 'u' {
					return nil, -1, false
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return nil, -1, false
				}
				j += 6
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return nil, -1, false
		}
		j += 2
	}
	return nil, -1, false
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, ch := range b[i : i+4] {
		switch {
		case '0' <= ch && ch <= '9':
			ch -= '0'
		case 'a' <= ch && ch <= 'f':
			ch = ch - 'a' + 10
		case 'A' <= ch && ch <= 'F':
			ch = ch - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(ch)
	}
	return r, true
}

package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/poold/poold"
)

// The --json lines, written by hand: encoding/json's reflection over
// jsonRecord, and a result decoded from msgpack into Go values to be
// encoded again, cost 5.4 µs of the command's 18 µs per echo task (a CPU
// profile of 100,000 tasks, 2026-12-02). The bytes are encoding/json's own
// (SetEscapeHTML(false)), which the tests check against it; what this does
// not take on (an error, a result with a msgpack type that JSON has no
// word for) goes the old way.

// appendRecord appends o's --json line, as json.Encoder writes
// newJSONRecord(o), newline included; false if it leaves that to the
// encoder.
func appendRecord(b []byte, o outcome, conv *mpJSON) ([]byte, bool) {
	res := o.Res
	if res.Err != nil {
		return b, false
	}
	b = append(b, `{"id":`...)
	b = appendJSONString(b, o.ID)
	b = append(b, `,"index":`...)
	b = strconv.AppendInt(b, int64(o.Index), 10)
	b = append(b, `,"func":`...)
	b = appendJSONString(b, res.Func)
	b = append(b, `,"ok":true,"result":`...)
	b = conv.appendResult(b, res.Value)
	b = append(b, `,"host":`...)
	b = appendJSONString(b, hostName(res.Host))
	b = append(b, `,"pid":`...)
	b = strconv.AppendInt(b, int64(res.PID), 10)
	b = append(b, `,"attempts":`...)
	b = strconv.AppendInt(b, int64(res.Attempts), 10)
	if !res.Start.IsZero() {
		b = append(b, `,"start":`...)
		b = conv.times.append(b, res.Start)
	}
	if !res.End.IsZero() {
		b = append(b, `,"end":`...)
		b = conv.times.append(b, res.End)
	}
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, duration(res))
	b = append(b, `,"cpu_ms":`...)
	if res.CPU >= 0 {
		b = appendMillis(b, res.CPU)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"max_rss_bytes":`...)
	if res.MaxRSS > 0 {
		b = strconv.AppendInt(b, res.MaxRSS, 10)
	} else {
		b = append(b, "null"...)
	}
	if len(res.Output) > 0 {
		b = append(b, `,"output":`...)
		b = appendJSONString(b, res.Output)
	}
	return append(b, "}\n"...), true
}

// timeCache writes times as RFC 3339 with nanoseconds, quoted, as
// t.Format(time.RFC3339Nano) does: the part up to the seconds and the zone
// are kept from the last time, which is mostly the same second. Two
// formats per result cost 0.5 µs before (2026-12-02).
type timeCache struct {
	sec    int64
	loc    *time.Location
	prefix []byte // "2006-01-02T15:04:05"
	zone   []byte // "Z07:00"
}

func (c *timeCache) append(b []byte, t time.Time) []byte {
	if sec, loc := t.Unix(), t.Location(); c.prefix == nil || sec != c.sec || loc != c.loc {
		whole := time.Unix(sec, 0).In(loc)
		c.sec, c.loc = sec, loc
		c.prefix = whole.AppendFormat(c.prefix[:0], "2006-01-02T15:04:05")
		c.zone = whole.AppendFormat(c.zone[:0], "Z07:00")
	}
	b = append(b, '"')
	b = append(b, c.prefix...)
	b = appendFraction(b, int64(t.Nanosecond()), 9)
	b = append(b, c.zone...)
	return append(b, '"')
}

// appendMillis writes d in milliseconds as encoding/json writes
// float64(d)/1e6. Below 2⁵² ns (52 days) that float's shortest decimal is
// d's own, with its six decimals (trailing zeros dropped): one float's
// spacing there is below 10⁻⁶, so no shorter decimal rounds to it.
func appendMillis(b []byte, d time.Duration) []byte {
	if d < 0 || d >= 1<<52 {
		return appendJSONFloat(b, float64(d)/float64(time.Millisecond), 64)
	}
	b = strconv.AppendInt(b, int64(d/time.Millisecond), 10)
	return appendFraction(b, int64(d%time.Millisecond), 6)
}

// appendFraction appends v, 0 ≤ v < 10^digits, as the decimal fraction
// .v of that many digits, its trailing zeros dropped; nothing when v is 0.
// digits is at most 9.
func appendFraction(b []byte, v int64, digits int) []byte {
	if v == 0 {
		return b
	}
	var frac [10]byte
	frac[0] = '.'
	for i := digits; i >= 1; i-- {
		frac[i] = byte('0' + v%10)
		v /= 10
	}
	n := digits + 1
	for frac[n-1] == '0' {
		n--
	}
	return append(b, frac[:n]...)
}

// appendJSONFloat is encoding/json's float encoding, for a finite f of
// bits 32 or 64.
func appendJSONFloat(b []byte, f float64, bits int) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONString is encoding/json's string encoding without HTML
// escaping: control characters, quotes and backslashes escaped, invalid
// UTF-8 as U+FFFD, U+2028 and U+2029 escaped.
func appendJSONString[S []byte | string](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		// A short string of the bytes to decode: no allocation.
		r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// mpJSON renders msgpack results as JSON, as resultJSON does through Go
// values, for the msgpack that JSON has a word for: nil, booleans,
// integers, finite floats, strings, arrays, and maps with string keys
// (their keys sorted, as encoding/json sorts a map's). Anything else
// (binary, extensions, other keys, NaN) goes the old way.
type mpJSON struct {
	pairs   []mpPair // the members of the maps being written
	scratch []byte
	times   timeCache // for appendRecord
}

type mpPair struct {
	key        []byte // the key, in the msgpack
	start, end int    // "key":value, in the output
}

// maxJSONDepth bounds the nesting the quick way writes.
const maxJSONDepth = 64

// appendResult appends the JSON of raw, as resultJSON gives it.
func (c *mpJSON) appendResult(b []byte, raw poold.Raw) []byte {
	if len(raw) == 0 {
		return append(b, "null"...)
	}
	start := len(b)
	out, n, ok := c.value(b, raw, 0, 0)
	if ok && n == len(raw) {
		return out
	}
	c.pairs = c.pairs[:0]
	return append(b[:start], slowResultJSON(raw)...)
}

// value appends the JSON of the msgpack value at raw[i] and returns the
// offset after it; false: not the quick way's.
func (c *mpJSON) value(out, raw []byte, i, depth int) ([]byte, int, bool) {
	if i >= len(raw) || depth > maxJSONDepth {
		return out, 0, false
	}
	code := raw[i]
	i++
	switch {
	case code <= 0x7f:
		return strconv.AppendInt(out, int64(code), 10), i, true
	case code >= 0xe0:
		return strconv.AppendInt(out, int64(int8(code)), 10), i, true
	case code <= 0x8f:
		return c.object(out, raw, i, int(code&0x0f), depth)
	case code <= 0x9f:
		return c.array(out, raw, i, int(code&0x0f), depth)
	case code <= 0xbf:
		return c.str(out, raw, i, int(code&0x1f))
	}
	switch code {
	case 0xc0:
		return append(out, "null"...), i, true
	case 0xc2:
		return append(out, "false"...), i, true
	case 0xc3:
		return append(out, "true"...), i, true
	case 0xca:
		if len(raw)-i < 4 {
			return out, 0, false
		}
		f := math.Float32frombits(binary.BigEndian.Uint32(raw[i:]))
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return out, 0, false
		}
		return appendJSONFloat(out, float64(f), 32), i + 4, true
	case 0xcb:
		if len(raw)-i < 8 {
			return out, 0, false
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(raw[i:]))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return out, 0, false
		}
		return appendJSONFloat(out, f, 64), i + 8, true
	case 0xcc, 0xcd, 0xce, 0xcf:
		size := 1 << (code - 0xcc)
		if len(raw)-i < size {
			return out, 0, false
		}
		return strconv.AppendUint(out, beUint(raw[i:i+size]), 10), i + size, true
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (code - 0xd0)
		if len(raw)-i < size {
			return out, 0, false
		}
		u := beUint(raw[i : i+size])
		shift := 64 - 8*size
		return strconv.AppendInt(out, int64(u<<shift)>>shift, 10), i + size, true
	case 0xd9, 0xda, 0xdb:
		n, next, ok := length(raw, i, 1<<(code-0xd9))
		if !ok {
			return out, 0, false
		}
		return c.str(out, raw, next, n)
	case 0xdc, 0xdd:
		n, next, ok := length(raw, i, 2<<(code-0xdc))
		if !ok {
			return out, 0, false
		}
		return c.array(out, raw, next, n, depth)
	case 0xde, 0xdf:
		n, next, ok := length(raw, i, 2<<(code-0xde))
		if !ok {
			return out, 0, false
		}
		return c.object(out, raw, next, n, depth)
	}
	return out, 0, false // binary, extensions, 0xc1
}

func beUint(b []byte) uint64 {
	var u uint64
	for _, x := range b {
		u = u<<8 | uint64(x)
	}
	return u
}

// length reads a size bytes long big-endian length at raw[i].
func length(raw []byte, i, size int) (int, int, bool) {
	if len(raw)-i < size {
		return 0, 0, false
	}
	n := beUint(raw[i : i+size])
	if n > uint64(len(raw)) {
		return 0, 0, false
	}
	return int(n), i + size, true
}

func (c *mpJSON) str(out, raw []byte, i, n int) ([]byte, int, bool) {
	if len(raw)-i < n {
		return out, 0, false
	}
	return appendJSONString(out, raw[i:i+n]), i + n, true
}

func (c *mpJSON) array(out, raw []byte, i, n, depth int) ([]byte, int, bool) {
	if n > len(raw)-i {
		return out, 0, false
	}
	out = append(out, '[')
	for k := range n {
		if k > 0 {
			out = append(out, ',')
		}
		var ok bool
		if out, i, ok = c.value(out, raw, i, depth+1); !ok {
			return out, 0, false
		}
	}
	return append(out, ']'), i, true
}

// object writes a map's members, then puts them in the order of their
// keys if they were not.
func (c *mpJSON) object(out, raw []byte, i, n, depth int) ([]byte, int, bool) {
	if 2*n > len(raw)-i {
		return out, 0, false
	}
	open := len(out)
	out = append(out, '{')
	base := len(c.pairs)
	sorted := true
	for k := range n {
		if k > 0 {
			out = append(out, ',')
		}
		if i >= len(raw) {
			return out, 0, false
		}
		var kn int
		var ok bool
		switch code := raw[i]; {
		case code >= 0xa0 && code <= 0xbf:
			kn, i, ok = int(code&0x1f), i+1, true
		case code >= 0xd9 && code <= 0xdb:
			kn, i, ok = length(raw, i+1, 1<<(code-0xd9))
		}
		if !ok || len(raw)-i < kn {
			return out, 0, false
		}
		key := raw[i : i+kn]
		if k > 0 && bytes.Compare(c.pairs[len(c.pairs)-1].key, key) >= 0 {
			sorted = false
		}
		start := len(out)
		out = appendJSONString(out, key)
		out = append(out, ':')
		if out, i, ok = c.value(out, raw, i+kn, depth+1); !ok {
			return out, 0, false
		}
		c.pairs = append(c.pairs, mpPair{key, start, len(out)})
	}
	pairs := c.pairs[base:]
	if !sorted {
		slices.SortFunc(pairs, func(a, b mpPair) int { return bytes.Compare(a.key, b.key) })
		for k := 1; k < len(pairs); k++ {
			if bytes.Equal(pairs[k-1].key, pairs[k].key) {
				return out, 0, false // a repeated key: the Go map keeps one
			}
		}
		c.scratch = append(c.scratch[:0], out[open:]...)
		out = append(out[:open], '{')
		for k, p := range pairs {
			if k > 0 {
				out = append(out, ',')
			}
			out = append(out, c.scratch[p.start-open:p.end-open]...)
		}
	}
	c.pairs = c.pairs[:base]
	return append(out, '}'), i, true
}

package main

import (
	"encoding/binary"
	"math"
	"strconv"
)

// Numbers, the quick way: checked as JSON writes them, converted as
// convert converts them.

// numberEnd checks the JSON number at b[i] and returns the offset after
// it (-1: not a number) and whether it is written as an integer (no
// fraction, no exponent).
func numberEnd(b []byte, i int) (end int, integer bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && '1' <= b[j] && b[j] <= '9':
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
	default:
		return -1, false
	}
	integer = true
	if j < len(b) && b[j] == '.' {
		integer = false
		j++
		k := j
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		if j == k {
			return -1, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		integer = false
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := j
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		if j == k {
			return -1, false
		}
	}
	return j, integer
}

// parseInteger reads a JSON integer's text: its magnitude and sign; ok is
// false beyond 64 bits.
func parseInteger(s []byte) (mag uint64, neg, ok bool) {
	if len(s) > 0 && s[0] == '-' {
		neg, s = true, s[1:]
	}
	for _, ch := range s {
		d := uint64(ch - '0')
		if mag > (math.MaxUint64-d)/10 {
			return 0, false, false
		}
		mag = mag*10 + d
	}
	if neg && mag > 1<<63 {
		return 0, false, false
	}
	return mag, neg, true
}

// number converts as convert does: an integer to int64 (uint64 above its
// range), any other number to float64.
func (c *mpConv) number(b []byte, i int) int {
	end, integer := numberEnd(b, i)
	if end < 0 {
		return -1
	}
	if integer {
		mag, neg, ok := parseInteger(b[i:end])
		if !ok {
			return -1 // the exact way says it does not fit in 64 bits
		}
		if neg {
			c.appendInt(-int64(mag)) // mag = 1<<63 wraps to math.MinInt64, as it should
		} else {
			c.appendUint(mag)
		}
		return end
	}
	f, err := strconv.ParseFloat(string(b[i:end]), 64)
	if err != nil || math.IsInf(f, 0) {
		return -1
	}
	c.out = append(c.out, 0xcb)
	c.out = binary.BigEndian.AppendUint64(c.out, math.Float64bits(f))
	return end
}

// appendUint and appendInt write integers as compactly as the pool's own
// msgpack encoder does (UseCompactInts).
func (c *mpConv) appendUint(n uint64) {
	switch {
	case n <= 0x7f:
		c.out = append(c.out, byte(n))
	case n <= math.MaxUint8:
		c.out = append(c.out, 0xcc, byte(n))
	case n <= math.MaxUint16:
		c.out = append(c.out, 0xcd, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		c.out = append(c.out, 0xce)
		c.out = binary.BigEndian.AppendUint32(c.out, uint32(n))
	default:
		c.out = append(c.out, 0xcf)
		c.out = binary.BigEndian.AppendUint64(c.out, n)
	}
}

func (c *mpConv) appendInt(n int64) {
	switch {
	case n >= 0:
		c.appendUint(uint64(n))
	case n >= -32:
		c.out = append(c.out, byte(n))
	case n >= math.MinInt8:
		c.out = append(c.out, 0xd0, byte(n))
	case n >= math.MinInt16:
		c.out = append(c.out, 0xd1, byte(n>>8), byte(n))
	case n >= math.MinInt32:
		c.out = append(c.out, 0xd2)
		c.out = binary.BigEndian.AppendUint32(c.out, uint32(n))
	default:
		c.out = append(c.out, 0xd3)
		c.out = binary.BigEndian.AppendUint64(c.out, uint64(n))
	}
}

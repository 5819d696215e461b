package tasks

import (
	"encoding/binary"
	"math"
)

// Fast paths for the scalar values that most tasks take and return (a map
// over a million ints should not pay for reflection twice per item). Each
// writes or reads exactly what msgpack's own encoder and decoder would; any
// other type, or an encoding they do not handle, goes the general way.

// appendScalar appends the msgpack encoding of v to dst, compactly as
// UseCompactInts does. ok is false for types it does not handle.
func appendScalar(dst []byte, v any) (out []byte, ok bool) {
	switch x := v.(type) {
	case nil:
		return append(dst, 0xc0), true
	case bool:
		if x {
			return append(dst, 0xc3), true
		}
		return append(dst, 0xc2), true
	case int:
		return appendInt(dst, int64(x)), true
	case int64:
		return appendInt(dst, x), true
	case int32:
		return appendInt(dst, int64(x)), true
	case float64:
		return binary.BigEndian.AppendUint64(append(dst, 0xcb), math.Float64bits(x)), true
	case string:
		return appendString(dst, x), true
	}
	return dst, false
}

// appendScalarAt is appendScalar for a pointer to the value: boxing a
// pointer costs no allocation, boxing an int64 does.
func appendScalarAt(dst []byte, p any) (out []byte, ok bool) {
	switch x := p.(type) {
	case *bool:
		return appendScalar(dst, *x)
	case *int:
		return appendInt(dst, int64(*x)), true
	case *int64:
		return appendInt(dst, *x), true
	case *int32:
		return appendInt(dst, int64(*x)), true
	case *float64:
		return binary.BigEndian.AppendUint64(append(dst, 0xcb), math.Float64bits(*x)), true
	case *string:
		return appendString(dst, *x), true
	}
	return dst, false
}

func appendInt(dst []byte, n int64) []byte {
	switch {
	case n >= 0 && n <= math.MaxInt8:
		return append(dst, byte(n))
	case n < 0 && n >= -32:
		return append(dst, byte(n))
	case n >= 0 && n <= math.MaxUint8:
		return append(dst, 0xcc, byte(n))
	case n >= 0 && n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(n))
	case n >= 0 && n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(n))
	case n >= 0:
		return binary.BigEndian.AppendUint64(append(dst, 0xcf), uint64(n))
	case n >= math.MinInt8:
		return append(dst, 0xd0, byte(n))
	case n >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(n))
	case n >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(n))
	}
}

func appendString(dst []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		dst = append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(n))
	}
	return append(dst, s...)
}

// decodeScalar decodes raw into v when v points at a scalar this file
// handles and raw holds exactly one value of a matching encoding. ok is
// false otherwise, and v is untouched.
func decodeScalar(raw []byte, v any) (ok bool) {
	switch p := v.(type) {
	case *int64:
		n, ok := readInt(raw)
		if ok {
			*p = n
		}
		return ok
	case *int:
		n, ok := readInt(raw)
		if ok && int64(int(n)) == n {
			*p = int(n)
			return true
		}
		return false
	case *float64:
		if len(raw) == 9 && raw[0] == 0xcb {
			*p = math.Float64frombits(binary.BigEndian.Uint64(raw[1:]))
			return true
		}
		return false
	case *string:
		s, ok := readString(raw)
		if ok {
			*p = s
		}
		return ok
	case *bool:
		if len(raw) == 1 && (raw[0] == 0xc2 || raw[0] == 0xc3) {
			*p = raw[0] == 0xc3
			return true
		}
		return false
	}
	return false
}

func readInt(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	c := b[0]
	switch {
	case len(b) == 1 && (c <= 0x7f || c >= 0xe0):
		return int64(int8(c)), true
	case c == 0xcc && len(b) == 2:
		return int64(b[1]), true
	case c == 0xcd && len(b) == 3:
		return int64(binary.BigEndian.Uint16(b[1:])), true
	case c == 0xce && len(b) == 5:
		return int64(binary.BigEndian.Uint32(b[1:])), true
	case c == 0xcf && len(b) == 9:
		u := binary.BigEndian.Uint64(b[1:])
		return int64(u), u <= math.MaxInt64
	case c == 0xd0 && len(b) == 2:
		return int64(int8(b[1])), true
	case c == 0xd1 && len(b) == 3:
		return int64(int16(binary.BigEndian.Uint16(b[1:]))), true
	case c == 0xd2 && len(b) == 5:
		return int64(int32(binary.BigEndian.Uint32(b[1:]))), true
	case c == 0xd3 && len(b) == 9:
		return int64(binary.BigEndian.Uint64(b[1:])), true
	}
	return 0, false
}

func readString(b []byte) (string, bool) {
	if len(b) == 0 {
		return "", false
	}
	var n, hdr int
	switch c := b[0]; {
	case c >= 0xa0 && c <= 0xbf:
		n, hdr = int(c&0x1f), 1
	case c == 0xd9 && len(b) >= 2:
		n, hdr = int(b[1]), 2
	case c == 0xda && len(b) >= 3:
		n, hdr = int(binary.BigEndian.Uint16(b[1:])), 3
	case c == 0xdb && len(b) >= 5:
		n, hdr = int(binary.BigEndian.Uint32(b[1:])), 5
	default:
		return "", false
	}
	if len(b) != hdr+n {
		return "", false
	}
	return string(b[hdr:]), true
}

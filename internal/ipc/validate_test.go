package ipc

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// validValues are encodings of every msgpack type, at the edges of each
// length form.
func validValues(t testing.TB) []msgpack.RawMessage {
	vals := []any{
		nil, true, false,
		0, 1, 127, 128, 255, 256, 65535, 65536, uint32(math.MaxUint32), uint64(math.MaxUint32) + 1, uint64(math.MaxUint64),
		-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, int64(math.MinInt32) - 1, int64(math.MinInt64),
		float32(1.5), 2.5, math.Inf(-1),
		"", "a", strings.Repeat("s", 31), strings.Repeat("s", 32), strings.Repeat("s", 255), strings.Repeat("s", 256),
		strings.Repeat("s", 65535), strings.Repeat("s", 65536),
		[]byte{}, []byte{1}, make([]byte, 255), make([]byte, 256), make([]byte, 65535), make([]byte, 65536),
		[]any{}, make([]any, 15), make([]any, 16), make([]any, 65535), make([]any, 65536),
		map[string]any{}, map[string]any{"a": 1, "b": []any{map[string]any{"c": nil}}},
		time.Unix(1, 0).UTC(), time.Unix(1<<35, 5).UTC(), time.Unix(1<<40, 1).UTC(), // ext -1 in 4, 8 and 12 bytes
	}
	bigMap := map[int]int{}
	for i := range 70000 {
		bigMap[i] = i
	}
	vals = append(vals, map[int]int{1: 2}, bigMap)
	var out []msgpack.RawMessage
	for _, v := range vals {
		out = append(out, mp(t, v))
	}
	// Ext forms the library does not pick for us: fixext 1, 2, 16; ext8, ext16, ext32.
	out = append(out,
		[]byte{0xd4, 0x01, 0xaa},
		[]byte{0xd5, 0x01, 0xaa, 0xbb},
		cat([]byte{0xd8, 0x01}, make([]byte, 16)),
		cat([]byte{0xc7, 0x03, 0x01}, []byte{1, 2, 3}),
		cat([]byte{0xc8, 0x01, 0x00, 0x01}, make([]byte, 256)),
		cat([]byte{0xc9, 0x00, 0x01, 0x00, 0x00, 0x01}, make([]byte, 65536)),
		[]byte{0xc7, 0x00, 0x05}, // ext8 of zero bytes
		[]byte{0xdc, 0x00, 0x00}, // array16 of zero elements
		[]byte{0xdf, 0x00, 0x00, 0x00, 0x00},
	)
	return out
}

func TestValidateAcceptsEveryType(t *testing.T) {
	for _, v := range validValues(t) {
		if err := Validate(v); err != nil {
			t.Errorf("% .20x: %v", []byte(v), err)
		}
		if n, err := skipValue(v); err != nil || n != len(v) {
			t.Errorf("% .20x: skipValue = %d, %v; want %d", []byte(v), n, err, len(v))
		}
		if err := Validate(cat(v, []byte{0x00})); !errors.Is(err, ErrMalformed) {
			t.Errorf("% .20x with a trailing byte: %v, want ErrMalformed", []byte(v), err)
		}
	}
}

// TestValidateRefusesEveryPrefix: msgpack is a prefix code, so no proper
// prefix of a value is a value.
func TestValidateRefusesEveryPrefix(t *testing.T) {
	for _, v := range validValues(t) {
		step := 1
		if len(v) > 1000 {
			step = len(v)/64 + 1 // the long ones: the cuts near both ends, and a sample between
		}
		for cut := 0; cut < len(v); cut++ {
			if cut > 16 && cut < len(v)-16 && cut%step != 0 {
				continue
			}
			if err := Validate(v[:cut]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("% .20x cut at %d of %d: %v, want ErrMalformed", []byte(v), cut, len(v), err)
			}
		}
	}
}

func TestValidateSingleBytes(t *testing.T) {
	for b := range 256 {
		c := byte(b)
		oneByte := c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3 || c == 0x80 || c == 0x90 || c == 0xa0
		err := Validate([]byte{c})
		if oneByte != (err == nil) {
			t.Errorf("Validate(%#02x) = %v", c, err)
		}
	}
}

func TestValidateDepth(t *testing.T) {
	for _, open := range []struct {
		name string
		b    []byte // a container of one element
	}{
		{"fixarray", []byte{0x91}},
		{"array16", []byte{0xdc, 0x00, 0x01}},
		{"array32", []byte{0xdd, 0x00, 0x00, 0x00, 0x01}},
		{"fixmap", []byte{0x81, 0x00}}, // key 0, then the value
		{"map32", []byte{0xdf, 0x00, 0x00, 0x00, 0x01, 0x00}},
	} {
		for _, inner := range []struct {
			name string
			b    []byte
		}{{"around nil", nil}, {"around an empty array", []byte{0x90}}} {
			// inner == nil: depth containers around a nil. Otherwise depth-1
			// containers around an empty one, which is a level too.
			at := func(depth int) []byte {
				if inner.b == nil {
					return append(bytes.Repeat(open.b, depth), 0xc0)
				}
				return append(bytes.Repeat(open.b, depth-1), inner.b...)
			}
			if err := Validate(at(MaxDepth)); err != nil {
				t.Errorf("%s %s, %d deep: %v", open.name, inner.name, MaxDepth, err)
			}
			err := Validate(at(MaxDepth + 1))
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "nested deeper") {
				t.Errorf("%s %s, %d deep: %v, want ErrMalformed for nesting", open.name, inner.name, MaxDepth+1, err)
			}
		}
	}
	// Deep but wide is fine: depth is about nesting, not about how many containers.
	wide := cat([]byte{0xdc, 0x10, 0x00}, bytes.Repeat([]byte{0x91, 0x91, 0xc0}, 0x1000))
	if err := Validate(wide); err != nil {
		t.Errorf("4096 shallow arrays: %v", err)
	}
}

func TestValidateHugeClaims(t *testing.T) {
	for _, b := range [][]byte{
		{0xdd, 0xff, 0xff, 0xff, 0xff, 0x00},
		{0xdd, 0x00, 0x98, 0x96, 0x80, 0x00},
		{0xdf, 0x7f, 0xff, 0xff, 0xff, 0x00, 0x00},
		{0xde, 0x00, 0x01, 0x00},       // one pair needs two values
		{0xc6, 0x80, 0x00, 0x00, 0x00}, // bin32 of 2 GiB
		{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'},
		{0xc9, 0xff, 0xff, 0xff, 0xff, 0x01},
		{0xd8, 0x01, 0x00}, // fixext 16 with one byte
		{0xc7},             // ext8 without its length
		{0xcf, 0x00},       // uint64 with one byte
	} {
		var err error
		allocs := testing.AllocsPerRun(10, func() { err = Validate(b) })
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("% x: %v, want ErrMalformed", b, err)
		}
		if allocs > 8 { // the error message only
			t.Errorf("% x: %v allocations", b, allocs)
		}
	}
}

func TestValidateAllocatesNothing(t *testing.T) {
	for _, v := range validValues(t) {
		if allocs := testing.AllocsPerRun(10, func() { _ = Validate(v) }); allocs != 0 {
			t.Errorf("% .20x: %v allocations", []byte(v), allocs)
		}
	}
}

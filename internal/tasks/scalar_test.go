package tasks

import (
	"bytes"
	"math"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// The fast paths must agree with msgpack's own encoder and decoder, byte for
// byte and value for value.
func TestScalarsMatchMsgpack(t *testing.T) {
	values := []any{nil, true, false, 0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1,
		math.MaxInt64, -1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64,
		int64(7), int32(-70000), 0.5, -1e300, math.Inf(1), "", "x", string(make([]byte, 31)), string(make([]byte, 32)),
		string(make([]byte, 300)), string(make([]byte, 70000))}
	for _, v := range values {
		fast, ok := appendScalar(nil, v)
		if !ok {
			t.Fatalf("%T %v: no fast path", v, v)
		}
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.UseCompactInts(true)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fast, buf.Bytes()) {
			t.Errorf("%T %v: fast % x, msgpack % x", v, v, fast, buf.Bytes())
		}
	}
	for _, n := range []int64{0, 1, 127, 128, -1, -33, 1 << 40, -1 << 40, math.MaxInt64, math.MinInt64} {
		raw, _ := msgpack.Marshal(n)
		var got int64
		if !decodeScalar(raw, &got) || got != n {
			t.Errorf("int64 %d: got %d", n, got)
		}
		var gi int
		if !decodeScalar(raw, &gi) || int64(gi) != n {
			t.Errorf("int %d: got %d", n, gi)
		}
	}
	for _, s := range []string{"", "abc", string(make([]byte, 40)), string(make([]byte, 300))} {
		raw, _ := msgpack.Marshal(s)
		var got string
		if !decodeScalar(raw, &got) || got != s {
			t.Errorf("string of %d: got %d", len(s), len(got))
		}
	}
	raw, _ := msgpack.Marshal(2.5)
	var f float64
	if !decodeScalar(raw, &f) || f != 2.5 {
		t.Errorf("float: %v", f)
	}
	// What the fast path leaves alone: a float for an int, trailing bytes,
	// a uint64 beyond int64, a struct.
	var n int64
	for _, raw := range [][]byte{{0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, {1, 2}, {0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		if decodeScalar(raw, &n) {
			t.Errorf("% x decoded as %d", raw, n)
		}
	}
	var st struct{ A int }
	if decodeScalar([]byte{0x80}, &st) {
		t.Error("a struct took the fast path")
	}
}

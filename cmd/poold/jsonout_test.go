package main

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/poold/poold"
	"github.com/poold/poold/internal/ipc"
)

// The --json lines written by hand against encoding/json's: the same
// bytes for every result.

func mp(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// resultValues are results of every msgpack type, and some that are not
// msgpack.
func resultValues(t testing.TB) [][]byte {
	strs := []string{"", "plain", `q"b\s/`, "\x00\x01\x1f\x7f", "\b\f\n\r\t", "<a>&amp;", "é ü 😀", "\u2028\u2029", "bad \xff\xfe utf-8", strings.Repeat("long ", 100)}
	vals := []any{nil, true, false, 0, 1, -1, 127, 128, -32, -33, 255, 256, -128, -129, 65535, 65536, -32768, -32769,
		int64(math.MaxInt32) + 1, int64(math.MinInt32) - 1, int64(math.MaxInt64), int64(math.MinInt64), uint64(math.MaxUint64),
		int8(-5), uint16(7), 0.5, math.Copysign(0, -1), 1e21, 1e20, 1e-6, 1e-7, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64,
		float32(0.1), float32(1e21), float32(1e-7), float32(-2.5), math.NaN(), math.Inf(1), float32(math.Inf(-1)),
		[]any{}, []any{1, "x", nil, []any{true}}, map[string]any{}, map[string]any{"b": 1, "a": []any{map[string]any{"z": 1, "y": 2}}},
		map[int]string{1: "a", 2: "b"}, map[any]any{true: 1}, []byte("bin"), time.Unix(1e9, 5).UTC(),
		map[string]any{"nan": math.NaN()}, []any{1, math.Inf(-1)}}
	for _, s := range strs {
		vals = append(vals, s, map[string]any{s: s, "k": s})
	}
	var out [][]byte
	for _, v := range vals {
		out = append(out, mp(t, v))
	}
	// Hand-made: keys out of order, a repeated key, a long map and array,
	// truncated and trailing bytes, an unused code.
	out = append(out,
		[]byte{0x82, 0xa1, 'b', 0x01, 0xa1, 'a', 0x02},
		[]byte{0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02},
		[]byte{0x82, 0xa1, 'a', 0x01},
		[]byte{0x01, 0x02},
		[]byte{0xc1},
		[]byte{0xd9, 0x05, 'a'},
		[]byte{0xcb, 0x01},
	)
	long := map[string]any{}
	arr := []any{}
	for i := range 70 {
		long[strings.Repeat("k", i%7)+string(rune('a'+i%26))+strings.Repeat("z", i/26)] = i
		arr = append(arr, i)
	}
	return append(out, mp(t, long), mp(t, arr), mp(t, map[string]any{"deep": deep(70)}))
}

func deep(n int) any {
	if n == 0 {
		return 1
	}
	return []any{deep(n - 1)}
}

func TestResultJSONAsBefore(t *testing.T) {
	for _, raw := range resultValues(t) {
		if got, want := resultJSON(raw), slowResultJSON(raw); !bytes.Equal(got, want) {
			t.Errorf("%x:\nnow    %s\nbefore %s", raw, got, want)
		}
	}
}

func FuzzResultJSON(f *testing.F) {
	for _, raw := range resultValues(f) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if ipc.Validate(raw) != nil {
			// The pool hands over only what validates; the old way
			// trusts the lengths in the rest (an array of 2³² elements).
			t.Skip()
		}
		if got, want := resultJSON(raw), slowResultJSON(raw); !bytes.Equal(got, want) {
			t.Errorf("%x:\nnow    %s\nbefore %s", raw, got, want)
		}
	})
}

func TestRecordAsBefore(t *testing.T) {
	start := time.Date(2026, 12, 2, 3, 4, 5, 6, time.UTC)
	var outcomes []outcome
	for i, v := range resultValues(t) {
		res := poold.Result[poold.Raw]{Value: v, Func: "echo", PID: 100 + i, Attempts: 1 + i%3, Start: start,
			End: start.Add(time.Duration(i) * 1234567 * time.Nanosecond), CPU: time.Duration(i) * time.Microsecond, MaxRSS: int64(i) << 20}
		switch i % 5 {
		case 1:
			res.Host, res.CPU, res.MaxRSS = "node-1", -1, 0
		case 2:
			res.Start, res.Output = time.Time{}, []byte("printed \"out\"\n\xff")
		case 3:
			res.End, res.Start = time.Time{}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))
		}
		outcomes = append(outcomes, outcome{ID: []string{"t1", `q"é`, "m[3]", "\u2028", "<&>"}[i%5], Index: i * 7, Res: res})
	}
	var conv mpJSON
	for _, o := range outcomes {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(newJSONRecord(o)); err != nil {
			t.Fatal(err)
		}
		got, ok := appendRecord(nil, o, &conv)
		if !ok || !bytes.Equal(got, want.Bytes()) {
			t.Errorf("now    %s\nbefore %s", got, want.Bytes())
		}
	}
}

// TestTimesAndMillis: the cached time format and the milliseconds written
// from integers are encoding/json's bytes.
func TestTimesAndMillis(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var c timeCache
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("x", -(3*3600 + 30*60)), time.FixedZone("y", 45*60)}
	if ny, err := time.LoadLocation("America/New_York"); err == nil {
		zones = append(zones, ny)
	}
	base := time.Date(2026, 3, 8, 6, 59, 58, 0, time.UTC) // a change of daylight saving time in New York
	for i := range 20000 {
		ts := base.Add(time.Duration(rng.Int64N(int64(4 * time.Second))))
		switch i % 7 {
		case 0:
			ts = ts.Truncate(time.Second)
		case 1:
			ts = time.Unix(rng.Int64N(1<<40)-1<<39, rng.Int64N(1e9))
		case 2:
			ts = ts.Truncate(time.Millisecond)
		}
		ts = ts.In(zones[i%len(zones)])
		want, _ := json.Marshal(ts.Format(time.RFC3339Nano))
		if got := c.append(nil, ts); !bytes.Equal(got, want) {
			t.Fatalf("%v: %s, want %s", ts, got, want)
		}
	}
	for i := range 200000 {
		var d time.Duration
		switch i % 4 {
		case 0:
			d = time.Duration(rng.Int64N(1 << 52))
		case 1:
			d = time.Duration(rng.Int64N(1e9))
		case 2:
			d = time.Duration(rng.Int64N(1000)) * time.Microsecond
		default:
			d = time.Duration(i)
		}
		want, _ := json.Marshal(float64(d) / float64(time.Millisecond))
		if got := appendMillis(nil, d); !bytes.Equal(got, want) {
			t.Fatalf("%d ns: %s, want %s", int64(d), got, want)
		}
	}
	for _, d := range []time.Duration{-1, 1<<52 - 1, 1 << 52, 1<<53 + 1, math.MaxInt64} {
		want, _ := json.Marshal(float64(d) / float64(time.Millisecond))
		if got := appendMillis(nil, d); !bytes.Equal(got, want) {
			t.Errorf("%d ns: %s, want %s", int64(d), got, want)
		}
	}
}

package ipc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vmihailenco/msgpack/v5"
)

// Frames come from processes we do not trust. Every test here plays a peer
// that is broken or hostile, and checks that Read refuses with the
// documented error, without allocating much more than the bytes it was given.

// readAllocBudget is what one Read of hostile input may allocate: a frame
// buffer (4 KiB at first), an error message, and a few words per byte.
func readAllocBudget(inputLen int) uint64 { return 16<<10 + 32*uint64(inputLen) }

// readOnce reads one frame from data and reports the error and the bytes
// allocated by the Read (the Reader itself is made beforehand).
func readOnce(data []byte, maxFrame int) (uint64, error) {
	r := NewReader(bytes.NewReader(data), maxFrame)
	var m Message
	var err error
	n := allocated(func() { err = r.Read(&m) })
	if err != nil && !isZero(&m) {
		return n, fmt.Errorf("message not left zero after %w", err)
	}
	return n, err
}

func isZero(m *Message) bool {
	return m.Kind == 0 && m.Hello.Tasks == nil && m.Task.Args == nil && m.Task.Func == "" && m.Result.Items == nil
}

func TestFrameTooLargeRefusedBeforeAllocating(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxFrame int
		size     uint32
	}{
		{"4GiB claim, default cap", 0, math.MaxUint32},
		{"one over the default cap", 0, DefaultMaxFrame + 1},
		{"one over a small cap", 1024, 1025},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := frame(nil)
			hdr[0], hdr[1], hdr[2], hdr[3] = byte(tc.size>>24), byte(tc.size>>16), byte(tc.size>>8), byte(tc.size)
			// The stream really holds the bytes the header claims (zeros,
			// made lazily), so only the cap can stop the read.
			src := &lazyReader{prefix: hdr, size: int64(headerSize) + int64(tc.size)}
			r := NewReader(src, tc.maxFrame)
			var m Message
			var err error
			n := allocated(func() { err = r.Read(&m) })
			if !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("got %v, want ErrFrameTooLarge", err)
			}
			if n > 16<<10 {
				t.Fatalf("refusing the frame allocated %d bytes", n)
			}
			if src.off > 64<<10 {
				t.Fatalf("read %d bytes of the refused body", src.off)
			}
		})
	}
	// Allocation counts, the other way to look at it.
	hdr := []byte{0xff, 0xff, 0xff, 0xff}
	allocs := testing.AllocsPerRun(20, func() {
		r := NewReader(bytes.NewReader(hdr), 0)
		var m Message
		if err := r.Read(&m); !errors.Is(err, ErrFrameTooLarge) {
			t.Fatal(err)
		}
	})
	if allocs > 16 { // the Reader, its bufio buffer, and the error message
		t.Fatalf("%v allocations to make a Reader and refuse a frame", allocs)
	}
}

// TestClaimedLengthThenSilence: a length under the cap, then the stream
// ends. The body buffer grows only with the bytes that really came.
func TestClaimedLengthThenSilence(t *testing.T) {
	for _, follow := range []int{0, 1, 1000, 100 << 10} {
		data := make([]byte, headerSize+follow)
		data[0] = 60 << 20 >> 24 // claims 60 MiB, below the 64 MiB cap
		n, err := readOnce(data, 0)
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("%d bytes after a 60 MiB claim: %v, want io.ErrUnexpectedEOF", follow, err)
		}
		if budget := readAllocBudget(len(data)); n > budget {
			t.Fatalf("%d bytes after a 60 MiB claim allocated %d bytes, budget %d", follow, n, budget)
		}
	}
}

// TestTruncatedStreams cuts a stream of every kind of frame at every byte:
// whole frames before the cut decode, then the reader says io.EOF at a frame
// boundary and io.ErrUnexpectedEOF anywhere else (header or body).
func TestTruncatedStreams(t *testing.T) {
	cases := roundTripCases(t)
	var boundaries []int
	var buf bytes.Buffer
	w := NewWriter(&buf, 0)
	for i := range cases {
		if cases[i].name == "task/chunk of 1000" || cases[i].name == "result/many items" {
			continue // big: every cut would take long
		}
		if err := writeMessage(w, &cases[i].msg); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		boundaries = append(boundaries, buf.Len())
	}
	data := buf.Bytes()
	for cut := 0; cut <= len(data); cut++ {
		whole, atBoundary := 0, cut == 0
		for _, b := range boundaries {
			if b <= cut {
				whole++
			}
			atBoundary = atBoundary || b == cut
		}
		for _, mk := range []func(io.Reader) io.Reader{
			func(r io.Reader) io.Reader { return r },
			iotest.HalfReader,
		} {
			r := NewReader(mk(bytes.NewReader(data[:cut])), 0)
			var m Message
			got := 0
			var err error
			for err = r.Read(&m); err == nil; err = r.Read(&m) {
				got++
			}
			want := io.ErrUnexpectedEOF
			if atBoundary {
				want = io.EOF
			}
			if got != whole || err != want {
				t.Fatalf("cut at %d: %d frames then %v, want %d then %v", cut, got, err, whole, want)
			}
		}
	}
}

// Bytes of hand-made frames.
var (
	taskHead   = []byte{0x96, 0x02, 0x01, 0xa1, 'f', 0x00, 0xc2} // [2, 1, "f", 0, false, ...
	resultHead = []byte{0x94, 0x03, 0x01, 0x00}                  // [3, 1, 0, ...
	okItemHead = []byte{0x96, 0xc3}                              // [true, ...
	fineTail   = []byte{0xc0, 0xc0, 0x00, 0x00}                  // ... err nil, output nil, start 0, end 0]
)

// nested returns depth nested arrays around one nil.
func nested(depth int) []byte {
	return append(bytes.Repeat([]byte{0x91}, depth), 0xc0)
}

func hostileBodies() []struct {
	name string
	body []byte
} {
	huge := []byte{0x80, 0x00, 0x00, 0x00} // 2 GiB as a 32-bit length
	tenM := []byte{0x00, 0x98, 0x96, 0x80} // 10,000,000
	item := func(ok, value, err, output, start, end []byte) []byte {
		return cat(resultHead, []byte{0x91, 0x96}, ok, value, err, output, start, end)
	}
	// cpuItem is a good item of seven fields but for its cpu, v.
	cpuItem := func(v ...byte) []byte {
		return cat(resultHead, []byte{0x91, 0x97}, okItemHead[1:], []byte{0xc0}, fineTail, v)
	}
	nilv := []byte{0xc0}
	zero := []byte{0x00}
	var fields []struct {
		name string
		body []byte
	}
	for _, tc := range newFieldHostiles() {
		fields = append(fields, struct {
			name string
			body []byte
		}{tc.name, tc.body})
	}
	return append([]struct {
		name string
		body []byte
	}{
		// Not msgpack, or not one value.
		{"empty body", nil},
		{"never-used code 0xc1", []byte{0xc1}},
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"text a task printed", []byte("hello from the task\n")},
		{"trailing byte", []byte{0x94, 0x01, 0x01, 0x01, 0x90, 0x00}},
		{"two messages in one frame", []byte{0x94, 0x01, 0x01, 0x01, 0x90, 0x94, 0x01, 0x01, 0x01, 0x90}},
		{"truncated str", cat(taskHead[:3], []byte{0xa5, 'a', 'b', 'c'})}, // enough bytes for the 6 fields claimed: the str is what is short

		// Lengths that claim more than the frame holds.
		{"array32 of 10M as the message", cat([]byte{0xdd}, tenM, []byte{0x05, 0x05})},
		{"array32 of 10M as task args", cat(taskHead, []byte{0xdd}, tenM, []byte{0x01})},
		{"array32 of 10M as task names", cat([]byte{0x94, 0x01, 0x01, 0x01, 0xdd}, tenM, []byte{0xa0})},
		{"array32 of 10M as result items", cat(resultHead, []byte{0xdd}, tenM, []byte{0x00})},
		{"array32 of 10M inside an arg", cat(taskHead, []byte{0x91, 0xdd}, tenM, []byte{0x01})},
		{"bin32 of 2 GiB as a value", item([]byte{0xc3}, cat([]byte{0xc6}, huge, []byte{1, 2, 3}), nilv, nilv, zero, zero)},
		{"bin32 of 2 GiB as output", item([]byte{0xc3}, nilv, nilv, cat([]byte{0xc6}, huge, []byte{1}), zero, zero)},
		{"str32 of 2 GiB as func", cat(taskHead[:3], []byte{0xdb}, huge, []byte{'f', 0x00, 0xc2, 0x91, 0x01})},
		{"str32 of 4 GiB as func", cat(taskHead[:3], []byte{0xdb, 0xff, 0xff, 0xff, 0xff}, []byte{'f', 0x00, 0xc2, 0x91, 0x01})},
		{"map32 of 4G entries as an arg", cat(taskHead, []byte{0x91, 0xdf, 0xff, 0xff, 0xff, 0xff, 0x01, 0x01})},
		{"ext32 of 2 GiB as an arg", cat(taskHead, []byte{0x91, 0xc9}, huge, []byte{0x01, 0x02})},
		{"str16 past the end", cat(taskHead[:3], []byte{0xda, 0x01, 0x00, 'f'})},
		{"items that cannot fit", cat(resultHead, []byte{0x9a}, bytes.Repeat([]byte{0x00}, 10))},

		// Nesting: the message is level 1, the args array level 2.
		{"arg nested past MaxDepth", cat(taskHead, []byte{0x91}, nested(MaxDepth-1))},
		{"empty array nested past MaxDepth", cat(taskHead, []byte{0x91}, bytes.Repeat([]byte{0x91}, MaxDepth-2), []byte{0x90})},
		{"value nested past MaxDepth", item([]byte{0xc3}, nested(MaxDepth), nilv, nilv, zero, zero)},

		// Wrong field counts.
		{"empty message", []byte{0x90}},
		{"hello with 3 fields", []byte{0x93, 0x01, 0x01, 0x01}},
		{"hello with 5 fields", []byte{0x95, 0x01, 0x01, 0x01, 0x90, 0x00}},
		{"task with 4 fields", []byte{0x94, 0x02, 0x01, 0xa1, 'f', 0x91, 0x01}},
		{"task with 5 fields (protocol 2, no eager)", []byte{0x95, 0x02, 0x01, 0xa1, 'f', 0x00, 0x91, 0x01}},
		{"task with 7 fields", cat([]byte{0x97}, taskHead[1:], []byte{0x91, 0x01, 0x00})},
		{"result with 2 fields", []byte{0x92, 0x03, 0x01}},
		{"result with 3 fields (protocol 2, no from)", []byte{0x93, 0x03, 0x01, 0x90}},
		{"result with 5 fields", []byte{0x95, 0x03, 0x01, 0x00, 0x90, 0x00}},
		{"result item with 5 fields", cat(resultHead, []byte{0x91, 0x95, 0xc3, 0xc0, 0xc0, 0xc0, 0x00})},
		{"result item with 9 fields", cat(resultHead, []byte{0x91, 0x99, 0xc3, 0xc0, 0xc0, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00})},
		{"result item with 8 fields, the last nil", cat(resultHead, []byte{0x91, 0x98, 0xc3, 0xc0, 0xc0, 0xc0, 0x00, 0x00, 0x00, 0xc0})},
		{"result item with 7 fields, the last nil", cat(resultHead, []byte{0x91, 0x97, 0xc3, 0xc0, 0xc0, 0xc0, 0x00, 0x00, 0xc0})},
		{"error with 2 fields", item([]byte{0xc2}, nilv, []byte{0x92, 0xa0, 0xa0}, nilv, zero, zero)},

		// Unknown kinds, and kinds that are not small non-negative integers.
		{"kind 0", []byte{0x91, 0x00}},
		{"kind 4 (retired cancel)", []byte{0x92, 0x04, 0x01}},
		{"kind 4 alone", []byte{0x91, 0x04}},
		{"kind 5 (retired shutdown)", []byte{0x91, 0x05}},
		{"kind 5 as int64", []byte{0x91, 0xd3, 0, 0, 0, 0, 0, 0, 0, 5}},
		{"kind 5 with a field", []byte{0x92, 0x05, 0x00}},
		{"kind 6 (cancel) without its id", []byte{0x91, 0x06}},
		{"kind 7", []byte{0x91, 0x07}},
		{"kind 255", []byte{0x91, 0xcc, 0xff}},
		{"kind 258 (uint16, 2 mod 256)", cat([]byte{0x96, 0xcd, 0x01, 0x02}, taskHead[2:], []byte{0x91, 0x01})},
		{"kind -254 (int16, 2 mod 256)", cat([]byte{0x96, 0xd1, 0xff, 0x02}, taskHead[2:], []byte{0x91, 0x01})},
		{"kind -1", []byte{0x91, 0xff}},
		{"kind nil", []byte{0x91, 0xc0}},
		{"kind as a string", []byte{0x91, 0xa1, '5'}},
		{"kind as a float", []byte{0x91, 0xca, 0x40, 0xa0, 0x00, 0x00}},
		{"kind true", []byte{0x91, 0xc3}},
		{"message as a map", []byte{0x81, 0x00, 0x05}},

		// Wrong types in fields.
		{"hello pid as a string", []byte{0x94, 0x01, 0xa1, '1', 0x01, 0x90}},
		{"hello pid above int64", []byte{0x94, 0x01, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x90}},
		{"hello version nil", []byte{0x94, 0x01, 0x01, 0xc0, 0x90}},
		{"hello names nil", []byte{0x94, 0x01, 0x01, 0x01, 0xc0}},
		{"hello name an int", []byte{0x94, 0x01, 0x01, 0x01, 0x91, 0x01}},
		{"hello name a bin", []byte{0x94, 0x01, 0x01, 0x01, 0x91, 0xc4, 0x01, 'a'}},
		{"task id nil", cat([]byte{0x96, 0x02, 0xc0}, taskHead[3:], []byte{0x91, 0x01})},
		{"task id -1", cat([]byte{0x96, 0x02, 0xff}, taskHead[3:], []byte{0x91, 0x01})},
		{"task id int64 min", cat([]byte{0x96, 0x02, 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}, taskHead[3:], []byte{0x91, 0x01})},
		{"task id a string", cat([]byte{0x96, 0x02, 0xa1, '1'}, taskHead[3:], []byte{0x91, 0x01})},
		{"task id a float", cat([]byte{0x96, 0x02, 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}, taskHead[3:], []byte{0x91, 0x01})},
		{"task func nil", []byte{0x96, 0x02, 0x01, 0xc0, 0x00, 0xc2, 0x91, 0x01}},
		{"task func a bin", []byte{0x96, 0x02, 0x01, 0xc4, 0x01, 'f', 0x00, 0xc2, 0x91, 0x01}},
		{"task func an int", []byte{0x96, 0x02, 0x01, 0x07, 0x00, 0xc2, 0x91, 0x01}},
		{"task timeout above int64", cat(taskHead[:5], []byte{0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0, 0xc2, 0x91, 0x01})},
		{"task timeout a float", cat(taskHead[:5], []byte{0xca, 0, 0, 0, 0, 0xc2, 0x91, 0x01})},
		{"task timeout nil", cat(taskHead[:5], []byte{0xc0, 0xc2, 0x91, 0x01})},
		{"task args nil", cat(taskHead, []byte{0xc0})},
		{"task args a map", cat(taskHead, []byte{0x81, 0x01, 0x01})},
		{"task args a string", cat(taskHead, []byte{0xa1, 'x'})},
		{"task without args", cat(taskHead, []byte{0x90})},
		{"result id negative", []byte{0x94, 0x03, 0xd0, 0x80, 0x00, 0x90}},
		{"result items nil", []byte{0x94, 0x03, 0x01, 0x00, 0xc0}},
		{"result item a map", cat(resultHead, []byte{0x91, 0x81, 0x00, 0x00})},
		{"result item nil", cat(resultHead, []byte{0x91, 0xc0})},
		{"ok nil", item(nilv, nilv, nilv, nilv, zero, zero)},
		{"ok an int", item([]byte{0x01}, nilv, nilv, nilv, zero, zero)},
		{"err a map", item([]byte{0xc2}, nilv, []byte{0x80}, nilv, zero, zero)},
		{"err a string", item([]byte{0xc2}, nilv, []byte{0xa1, 'e'}, nilv, zero, zero)},
		{"err fields ints", item([]byte{0xc2}, nilv, []byte{0x93, 0x01, 0x02, 0x03}, nilv, zero, zero)},
		{"err stack nil", item([]byte{0xc2}, nilv, []byte{0x93, 0xa0, 0xa0, 0xc0}, nilv, zero, zero)},
		{"output a string", item([]byte{0xc3}, nilv, nilv, []byte{0xa1, 'o'}, zero, zero)},
		{"output an int", item([]byte{0xc3}, nilv, nilv, zero, zero, zero)},
		{"start a float", item([]byte{0xc3}, nilv, nilv, nilv, []byte{0xca, 0, 0, 0, 0}, zero)},
		{"start nil", item([]byte{0xc3}, nilv, nilv, nilv, nilv, zero)},
		{"end above int64", item([]byte{0xc3}, nilv, nilv, nilv, zero, []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})},
		{"cpu above int64", cpuItem(0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0)},
		{"cpu a float", cpuItem(0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0)},
		{"cpu a string", cpuItem(0xa1, '1')},
		{"cpu false", cpuItem(0xc2)},
		{"cpu an empty array", cpuItem(0x90)},
		{"cpu truncated int64", cpuItem(0xd3, 0, 0, 0)},
		{"result id a string", []byte{0x94, 0x03, 0xa0, 0x00, 0x90}},
		{"result id nil", []byte{0x94, 0x03, 0xc0, 0x00, 0x90}},
		{"result id a negative fixint", []byte{0x94, 0x03, 0xe0, 0x00, 0x90}},
	}, fields...)
}

// newFieldHostiles are frames whose only fault is in a field of protocol 3
// (a task's eager, a result's from); what names the field in the error.
func newFieldHostiles() []struct {
	name string
	body []byte
	what string
} {
	eager := func(v ...byte) []byte { return cat(taskHead[:6], v, []byte{0x91, 0x01}) }
	from := func(v ...byte) []byte { return cat(resultHead[:3], v, []byte{0x90}) }
	fromItem := func(v ...byte) []byte {
		return cat(resultHead[:3], v, []byte{0x91}, okItemHead, []byte{0xc0}, fineTail)
	}
	return []struct {
		name string
		body []byte
		what string
	}{
		{"task eager nil", eager(0xc0), "task: eager:"},
		{"task eager 0", eager(0x00), "task: eager:"},
		{"task eager 1", eager(0x01), "task: eager:"},
		{"task eager a string", eager(0xa4, 't', 'r', 'u', 'e'), "task: eager:"},
		{"task eager an empty array", eager(0x90), "task: eager:"},
		{"result from -1", from(0xff), "result: from:"},
		{"result from -1 as int8", from(0xd0, 0xff), "result: from:"},
		{"result from int32 min", from(0xd2, 0x80, 0, 0, 0), "result: from:"},
		{"result from int64 min", from(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0), "result: from:"},
		{"result from max int32 + 1", from(0xce, 0x80, 0, 0, 0), "result: from:"},
		{"result from max int32 + 1 as int64", from(0xd3, 0, 0, 0, 0, 0x80, 0, 0, 0), "result: from:"},
		{"result from max uint32", from(0xce, 0xff, 0xff, 0xff, 0xff), "result: from:"},
		{"result from max uint32 + 1", from(0xcf, 0, 0, 0, 0x01, 0, 0, 0, 0), "result: from:"},
		{"result from max uint64", from(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), "result: from:"},
		{"result from max int32 + 1, with an item", fromItem(0xce, 0x80, 0, 0, 0), "result: from:"},
		{"result from -1, with an item", fromItem(0xff), "result: from:"},
		{"result from nil", from(0xc0), "result: from:"},
		{"result from false", from(0xc2), "result: from:"},
		{"result from a float", from(0xca, 0x3f, 0x80, 0, 0), "result: from:"},
		{"result from a float64", from(0xcb, 0, 0, 0, 0, 0, 0, 0, 0), "result: from:"},
		{"result from a string", from(0xa1, '0'), "result: from:"},
		{"result from a bin", from(0xc4, 0x01, 0x00), "result: from:"},
	}
}

func TestHostileFrames(t *testing.T) {
	for _, tc := range hostileBodies() {
		t.Run(tc.name, func(t *testing.T) {
			data := frame(tc.body)
			n, err := readOnce(data, 0)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("% x: got %v, want ErrMalformed", tc.body, err)
			}
			if budget := readAllocBudget(len(data)); n > budget {
				t.Fatalf("refusing a %d-byte frame allocated %d bytes, budget %d", len(data), n, budget)
			}
		})
	}
}

// TestHostileNewFields: a frame whose only fault is its eager or its from is
// refused for that field, not for another reason further on.
func TestHostileNewFields(t *testing.T) {
	for _, tc := range newFieldHostiles() {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readOnce(frame(tc.body), 0)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.what) {
				t.Fatalf("% x: got %v, want ErrMalformed for %q", tc.body, err, tc.what)
			}
		})
	}
}

// TestHostileNearMisses: frames one step away from hostile ones (the good
// frames they were made from, nesting at the limit), which decode.
func TestHostileNearMisses(t *testing.T) {
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"task", cat(taskHead, []byte{0x91, 0x01})},
		{"arg nested to MaxDepth", cat(taskHead, []byte{0x91}, nested(MaxDepth-2))},
		{"empty array nested to MaxDepth", cat(taskHead, []byte{0x91}, bytes.Repeat([]byte{0x91}, MaxDepth-3), []byte{0x90})},
		{"result item", cat(resultHead, []byte{0x91}, okItemHead, []byte{0xc0}, fineTail)},
		{"result with no items", cat(resultHead, []byte{0x90})},
		{"hello", []byte{0x94, 0x01, 0x01, 0x01, 0x90}},
		{"kind 2 as uint16", cat([]byte{0x96, 0xcd, 0x00, 0x02}, taskHead[2:], []byte{0x91, 0x01})},
		{"kind 3 as int64", []byte{0x94, 0xd3, 0, 0, 0, 0, 0, 0, 0, 3, 0x01, 0x00, 0x90}},
		{"result id max uint64", []byte{0x94, 0x03, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x90}},
		{"error as nil", cat(resultHead, []byte{0x91}, okItemHead, []byte{0xc0, 0xc0, 0xc0, 0x00, 0x00})},
		{"error with 4 strings and a nil detail", cat(resultHead, []byte{0x91, 0x96, 0xc2, 0xc0, 0x95, 0xa0, 0xa0, 0xa0, 0xa0, 0xc0, 0xc4, 0x00, 0x00, 0x00})},
		{"result item with cpu", cat(resultHead, []byte{0x91, 0x97}, okItemHead[1:], []byte{0xc0}, fineTail, []byte{0xcd, 0x01, 0x00})},
		{"result item with cpu -1", cat(resultHead, []byte{0x91, 0x97}, okItemHead[1:], []byte{0xc0}, fineTail, []byte{0xff})},
		{"result item with cpu max int64", cat(resultHead, []byte{0x91, 0x97}, okItemHead[1:], []byte{0xc0}, fineTail, []byte{0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := readOnce(frame(tc.body), 0); err != nil {
				t.Fatalf("% x: %v", tc.body, err)
			}
		})
	}
}

// TestNewFieldNearMisses: the frames of TestHostileNewFields one step back
// (a bool for eager; from at 0 and up to the largest int32, in any integer
// encoding), which decode to the value they carry.
func TestNewFieldNearMisses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  []byte
		eager bool // for a task
		from  int  // for a result
	}{
		{"task eager false", cat(taskHead, []byte{0x91, 0x01}), false, 0},
		{"task eager true", cat(taskHead[:6], []byte{0xc3, 0x91, 0x01}), true, 0},
		{"result from 0", cat(resultHead, []byte{0x90}), false, 0},
		{"result from 0 as int8", cat(resultHead[:3], []byte{0xd0, 0x00, 0x90}), false, 0},
		{"result from 0 as int64", cat(resultHead[:3], []byte{0xd3, 0, 0, 0, 0, 0, 0, 0, 0, 0x90}), false, 0},
		{"result from 127 as int8", cat(resultHead[:3], []byte{0xd0, 0x7f, 0x90}), false, 127},
		{"result from 300 as uint16", cat(resultHead[:3], []byte{0xcd, 0x01, 0x2c, 0x90}), false, 300},
		{"result from max int32", cat(resultHead[:3], []byte{0xce, 0x7f, 0xff, 0xff, 0xff, 0x90}), false, math.MaxInt32},
		{"result from max int32 as int32", cat(resultHead[:3], []byte{0xd2, 0x7f, 0xff, 0xff, 0xff, 0x90}), false, math.MaxInt32},
		{"result from max int32 as int64", cat(resultHead[:3], []byte{0xd3, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0x90}), false, math.MaxInt32},
		{"result from max int32 as uint64", cat(resultHead[:3], []byte{0xcf, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0x90}), false, math.MaxInt32},
		{"result from max int32, with an item", cat(resultHead[:3], []byte{0xce, 0x7f, 0xff, 0xff, 0xff, 0x91}, okItemHead, []byte{0xc0}, fineTail), false, math.MaxInt32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			if err := NewReader(bytes.NewReader(frame(tc.body)), 0).Read(&m); err != nil {
				t.Fatalf("% x: %v", tc.body, err)
			}
			switch m.Kind {
			case KindTask:
				if m.Task.Eager != tc.eager {
					t.Fatalf("% x: eager %v, want %v", tc.body, m.Task.Eager, tc.eager)
				}
			case KindResult:
				if m.Result.From != tc.from {
					t.Fatalf("% x: from %d, want %d", tc.body, m.Result.From, tc.from)
				}
			default:
				t.Fatalf("% x: decoded as %s", tc.body, describe(&m))
			}
		})
	}
}

// TestWriteTaskRefusesMalformedArgs: an argument that is not exactly one
// well-formed msgpack value is an error, and nothing is written.
func TestWriteTaskRefusesMalformedArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		arg  []byte
	}{
		{"code 0xc1", []byte{0xc1}},
		{"truncated str", []byte{0xa5, 'a'}},
		{"two values", []byte{0x01, 0x02}},
		{"short array", []byte{0x92, 0x01}},
		{"array32 of 4G", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}},
		{"bin32 of 2 GiB", []byte{0xc6, 0x80, 0x00, 0x00, 0x00, 0x00}},
		{"too deep", nested(MaxDepth + 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf, 0)
			err := w.WriteTask(&Task{ID: 9, Func: "f", Args: []msgpack.RawMessage{mp(t, 1), tc.arg}})
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			assertStreamIntact(t, w, &buf)
		})
	}
	t.Run("no args", func(t *testing.T) {
		var buf bytes.Buffer
		w := NewWriter(&buf, 0)
		for _, args := range [][]msgpack.RawMessage{nil, {}} {
			if err := w.WriteTask(&Task{ID: 9, Func: "f", Args: args}); !errors.Is(err, ErrMalformed) {
				t.Fatalf("task without args: %v, want ErrMalformed", err)
			}
		}
		assertStreamIntact(t, w, &buf)
	})
	froms := []int{-1, math.MinInt, math.MaxInt}
	if big := int64(math.MaxInt32) + 1; int64(int(big)) == big { // where int has 64 bits
		froms = append(froms, int(big))
	}
	for _, from := range froms {
		t.Run(fmt.Sprintf("result from %d", from), func(t *testing.T) {
			// The Reader would refuse the frame and give up on the stream.
			var buf bytes.Buffer
			w := NewWriter(&buf, 0)
			err := w.WriteResult(&Result{ID: 9, From: from, Items: []Item{{OK: true, Value: mp(t, 1)}}})
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			assertStreamIntact(t, w, &buf)
		})
	}
	t.Run("malformed value", func(t *testing.T) {
		var buf bytes.Buffer
		w := NewWriter(&buf, 0)
		err := w.WriteResult(&Result{ID: 9, Items: []Item{{OK: true, Value: mp(t, 1)}, {OK: true, Value: []byte{0x92}}}})
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("got %v, want ErrMalformed", err)
		}
		assertStreamIntact(t, w, &buf)
	})
}

// assertStreamIntact checks that nothing reached buf after a refused write,
// and that the next message goes through and decodes.
func assertStreamIntact(t *testing.T, w *Writer, buf *bytes.Buffer) {
	t.Helper()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatalf("a refused message wrote %d bytes", buf.Len())
	}
	want := &Result{ID: 10, Items: []Item{{OK: true, Value: msgpack.RawMessage{0x2a}, Output: []byte("after")}}}
	if err := w.WriteResult(want); err != nil {
		t.Fatalf("next message: %v", err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var m Message
	if err := NewReader(buf, 0).Read(&m); err != nil {
		t.Fatalf("the next frame does not decode: %v", err)
	}
	if m.Kind != KindResult || m.Result.ID != 10 || string(m.Result.Items[0].Output) != "after" {
		t.Fatalf("the next frame decodes as %s", describe(&m))
	}
}

// TestWriteAboveCap: a message above the cap is refused with
// ErrFrameTooLarge, nothing is written, and the stream goes on.
func TestWriteAboveCap(t *testing.T) {
	const maxFrame = 4096
	big := mp(t, strings.Repeat("v", maxFrame))
	small := mp(t, strings.Repeat("v", 100))
	for _, tc := range []struct {
		name  string
		write func(w *Writer) error
	}{
		{"result value", func(w *Writer) error {
			return w.WriteResult(&Result{ID: 1, Items: []Item{{OK: true, Value: big}}})
		}},
		{"result output", func(w *Writer) error {
			return w.WriteResult(&Result{ID: 1, Items: []Item{{OK: true, Output: bytes.Repeat([]byte{'o'}, maxFrame)}}})
		}},
		{"result error stack", func(w *Writer) error {
			return w.WriteResult(&Result{ID: 1, Items: []Item{{Err: &ErrorInfo{Kind: "panic", Stack: strings.Repeat("s", maxFrame)}}}})
		}},
		{"many small items", func(w *Writer) error {
			items := make([]Item, 50)
			for i := range items {
				items[i] = Item{OK: true, Value: small}
			}
			return w.WriteResult(&Result{ID: 1, Items: items})
		}},
		{"task args", func(w *Writer) error {
			return w.WriteTask(&Task{ID: 1, Func: "f", Args: []msgpack.RawMessage{small, big}})
		}},
		{"hello", func(w *Writer) error {
			return w.WriteHello(&Hello{PID: 1, Version: 1, Tasks: []string{strings.Repeat("t", maxFrame)}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf, maxFrame)
			if err := tc.write(w); !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("got %v, want ErrFrameTooLarge", err)
			}
			assertStreamIntact(t, w, &buf)
		})
	}
	t.Run("huge value is refused before it is copied", func(t *testing.T) {
		w := NewWriter(io.Discard, maxFrame)
		huge := make([]byte, 8<<20)
		huge[0] = 0xc0 // not even well formed past the first byte: never looked at
		var err error
		n := allocated(func() { err = w.WriteResult(&Result{ID: 1, Items: []Item{{OK: true, Value: huge}}}) })
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("got %v, want ErrFrameTooLarge", err)
		}
		if n > 64<<10 {
			t.Fatalf("refusing the value allocated %d bytes", n)
		}
	})
	t.Run("buffer is released after a huge frame", func(t *testing.T) {
		w := NewWriter(io.Discard, 64<<20)
		if err := w.WriteResult(&Result{ID: 1, Items: []Item{{OK: true, Output: make([]byte, 8<<20)}}}); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteHello(&Hello{PID: 1, Version: 1}); err != nil {
			t.Fatal(err)
		}
		if c := w.body.Cap(); c > keepFrameBuf {
			t.Fatalf("the writer keeps a %d-byte buffer after a small frame", c)
		}
	})
}

// TestReaderReleasesHugeBuffer: a small frame after a huge one does not
// leave the huge buffer pinned.
func TestReaderReleasesHugeBuffer(t *testing.T) {
	data := writeFrames(t, 0, func(w *Writer) error {
		w.WriteResult(&Result{ID: 1, Items: []Item{{OK: true, Output: make([]byte, 8<<20)}}})
		return w.WriteHello(&Hello{PID: 2, Version: 1})
	})
	r := NewReader(bytes.NewReader(data), 0)
	var m Message
	for range 2 {
		if err := r.Read(&m); err != nil {
			t.Fatal(err)
		}
	}
	if c := cap(r.fr.buf); c > keepFrameBuf {
		t.Fatalf("the reader keeps a %d-byte buffer after a small frame", c)
	}
}

// TestDecodeAllocationBound builds the frames that cost the most memory per
// byte to decode (many one-byte args, many minimal items, many empty names),
// about 1 MiB each, and checks the ratio that FuzzReader enforces.
func TestDecodeAllocationBound(t *testing.T) {
	const n = 1 << 20
	frames := map[string][]byte{
		"one-byte args":  writeFrames(t, 0, func(w *Writer) error { return w.WriteTask(&Task{ID: 1, Func: "f", Args: oneByteArgs(n)}) }),
		"minimal items":  writeFrames(t, 0, func(w *Writer) error { return w.WriteResult(&Result{ID: 1, Items: make([]Item, n/7)}) }),
		"empty names":    writeFrames(t, 0, func(w *Writer) error { return w.WriteHello(&Hello{Tasks: make([]string, n)}) }),
		"one-byte names": writeFrames(t, 0, func(w *Writer) error { return w.WriteHello(&Hello{Tasks: oneByteNames(n / 2)}) }),
		"output bytes":   writeFrames(t, 0, func(w *Writer) error { return w.WriteResult(&Result{ID: 1, Items: []Item{{Output: make([]byte, n)}}}) }),
	}
	for name, data := range frames {
		r := NewReader(bytes.NewReader(data), 0)
		var m Message
		var err error
		got := allocated(func() { err = r.Read(&m) })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %d bytes of frames, %d allocated, %.1f per byte", name, len(data), got, float64(got)/float64(len(data)))
		if limit := fuzzAllocLimit(len(data)); got > limit {
			t.Errorf("%s: %d bytes allocated for %d bytes of input, limit %d", name, got, len(data), limit)
		}
	}
}

func oneByteArgs(n int) []msgpack.RawMessage {
	args := make([]msgpack.RawMessage, n)
	for i := range args {
		args[i] = msgpack.RawMessage{0x00}
	}
	return args
}

func oneByteNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "x"
	}
	return names
}

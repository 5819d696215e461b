package ipc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// Run the fuzzers with, for example:
//
//	go test -run '^$' -fuzz '^FuzzReader$' -fuzztime 60s ./internal/ipc/
//	go test -run '^$' -fuzz '^FuzzValidate$' -fuzztime 60s ./internal/ipc/
//
// Plain `go test` runs the seeds below and the corpus in testdata/fuzz.

// fuzzAllocLimit is how many bytes decoding n bytes of input may allocate.
//
// The worst frames (TestDecodeAllocationBound measures them) cost:
// one-byte task arguments 24 bytes each for the slice header plus 1 for the
// copy; one-byte names 16 for the string header; minimal result items
// (7 bytes) 80 bytes each, about 11.5 per byte; plus the frame buffer,
// which grows by doubling to the frame's size (at most 2 bytes per byte).
// That is below 28 per byte. The constant covers the first frame buffer
// (4 KiB), error messages, and what the runtime and the fuzzing engine
// allocate meanwhile. The limit that matters most is the one the factor
// cannot hide: a header that claims up to the cap followed by a few bytes
// must cost a few KiB, not the claim.
func fuzzAllocLimit(n int) uint64 { return 32*uint64(n) + 256<<10 }

// fuzzSeeds are streams of real frames of every kind, and hostile ones.
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	var all bytes.Buffer
	w := NewWriter(&all, 0)
	for _, tc := range roundTripCases(t) {
		if tc.name == "task/chunk of 1000" || tc.name == "result/many items" {
			continue // big, and no different in shape from the small ones
		}
		seeds = append(seeds, writeFrames(t, 0, func(w *Writer) error { return writeMessage(w, &tc.msg) }))
		if err := writeMessage(w, &tc.msg); err != nil {
			t.Fatal(err)
		}
	}
	w.Flush()
	seeds = append(seeds, all.Bytes())
	seeds = append(seeds, writeFrames(t, 0, func(w *Writer) error {
		return w.WriteResult(&Result{ID: 3, Items: []Item{
			{OK: true, Value: mp(t, map[string]any{"k": []any{1, "x", 2.5, nil, true}}), Output: []byte("o\n"), Start: 1, End: 2, CPU: 70000},
			{Err: &ErrorInfo{Kind: "panic", Message: "m", Stack: "s"}, CPU: -1},
		}})
	}))
	for _, tc := range hostileBodies() {
		seeds = append(seeds, frame(tc.body))
	}
	hello := []byte{0x94, 0x01, 0x01, 0x01, 0x90} // [1, 1, 1, []]
	seeds = append(seeds,
		nil,
		[]byte{0x00},
		[]byte{0x00, 0x00, 0x00},
		[]byte{0x00, 0x00, 0x00, 0x00},
		[]byte{0xff, 0xff, 0xff, 0xff},                 // 4 GiB claim
		[]byte{0x03, 0xc0, 0x00, 0x00, 0x91},           // 60 MiB claim, below the cap, then one byte
		cat(frame(hello), []byte{0x00, 0x00, 0x01}),    // a frame, then a truncated header
		cat(frame(hello), frame(hello)[:headerSize+2]), // truncated body
		cat(frame(hello), frame([]byte{0x92, 0x04, 0x07}), frame([]byte{0x91, 0x05})), // retired kinds 4 and 5 after a good frame
	)
	return seeds
}

// FuzzReader feeds arbitrary bytes to Reader.Read in a loop. It must never
// panic, must end with one of the documented errors, and must not allocate
// much more than the input holds (fuzzAllocLimit). What it decodes must agree
// with the msgpack library on the kind and id of the frame, and must survive
// being written and read again unchanged.
func FuzzReader(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), 0)
		msgs := make([]Message, 0, len(data)/6+1) // the smallest frame is 6 bytes: the slice never grows
		var err error
		got := allocated(func() {
			for {
				var m Message
				if err = r.Read(&m); err != nil {
					return
				}
				msgs = append(msgs, m)
			}
		})
		if limit := fuzzAllocLimit(len(data)); got > limit {
			t.Fatalf("decoding %d bytes allocated %d bytes, limit %d", len(data), got, limit)
		}
		if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("undocumented error %T: %v", err, err)
		}

		rest := data
		for i := range msgs {
			// Cross-check with the msgpack library: the frame's kind and id,
			// and a task's eager or a result's from, read generically, are
			// what Read said.
			n := int(binary.BigEndian.Uint32(rest))
			body := rest[headerSize : headerSize+n]
			rest = rest[headerSize+n:]
			// Only the fields before the args or items: msgpack refuses to
			// decode unregistered ext types, which args and values may hold.
			dec := msgpack.NewDecoder(bytes.NewReader(body))
			fields, err := dec.DecodeArrayLen()
			if err != nil || fields < 1 {
				t.Fatalf("message %d decoded, but msgpack reads no message array: %d, %v", i, fields, err)
			}
			scalars := 2 // kind, id (or pid)
			switch msgs[i].Kind {
			case KindTask:
				scalars = 5 // kind, id, func, timeout, eager
			case KindResult:
				scalars = 3 // kind, id, from
			}
			if fields < scalars {
				t.Fatalf("message %d decoded as %v, but the frame has %d fields", i, msgs[i].Kind, fields)
			}
			v := make([]any, scalars)
			for j := range v {
				if v[j], err = dec.DecodeInterface(); err != nil {
					t.Fatalf("message %d decoded, but msgpack cannot read field %d: %v", i, j, err)
				}
			}
			if k, ok := nonNegative(v[0]); !ok || k != uint64(msgs[i].Kind) {
				t.Fatalf("message %d decoded as kind %v, but the frame says %#v", i, msgs[i].Kind, v[0])
			}
			var id uint64
			switch msgs[i].Kind {
			case KindTask:
				id = msgs[i].Task.ID
			case KindResult:
				id = msgs[i].Result.ID
			case KindCancel:
				id = msgs[i].Cancel.ID
			}
			if msgs[i].Kind != KindHello && msgs[i].Kind != KindSetup { // their second field is no id
				if got, ok := nonNegative(v[1]); !ok || got != id {
					t.Fatalf("message %d decoded with id %d, but the frame says %#v", i, id, v[1])
				}
			}
			switch msgs[i].Kind {
			case KindTask:
				if eager, ok := v[4].(bool); !ok || eager != msgs[i].Task.Eager {
					t.Fatalf("message %d decoded with eager %v, but the frame says %#v", i, msgs[i].Task.Eager, v[4])
				}
			case KindResult:
				from := msgs[i].Result.From
				if got, ok := nonNegative(v[2]); !ok || got != uint64(from) || from < 0 || from > math.MaxInt32 {
					t.Fatalf("message %d decoded with from %d, but the frame says %#v", i, from, v[2])
				}
			}

			var buf bytes.Buffer
			w := NewWriter(&buf, 0)
			if err := writeMessage(w, &msgs[i]); err != nil {
				t.Fatalf("message %d decoded but cannot be written again: %v\n%s", i, err, describe(&msgs[i]))
			}
			w.Flush()
			var again Message
			if err := NewReader(&buf, 0).Read(&again); err != nil {
				t.Fatalf("message %d written again does not decode: %v", i, err)
			}
			if !reflect.DeepEqual(again, msgs[i]) {
				t.Fatalf("message %d changed on a second round trip:\n%s\n%s", i, describe(&msgs[i]), describe(&again))
			}
		}
	})
}

// nonNegative returns the value of a msgpack integer decoded generically,
// if it is one and not negative.
func nonNegative(v any) (uint64, bool) {
	switch n := v.(type) {
	case uint8:
		return uint64(n), true
	case uint16:
		return uint64(n), true
	case uint32:
		return uint64(n), true
	case uint64:
		return n, true
	case int8:
		return uint64(n), n >= 0
	case int16:
		return uint64(n), n >= 0
	case int32:
		return uint64(n), n >= 0
	case int64:
		return uint64(n), n >= 0
	}
	return 0, false
}

// FuzzValidate checks Validate against the msgpack library: what Validate
// accepts, the library skips as exactly one value; what the library skips as
// exactly one value, Validate accepts unless it nests deeper than MaxDepth.
// Validate never panics and allocates nothing on success.
func FuzzValidate(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		if len(seed) > headerSize {
			f.Add(seed[headerSize:])
		}
	}
	for _, v := range validValues(f) {
		f.Add([]byte(v))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var err error
		allocs := testing.AllocsPerRun(1, func() { err = Validate(data) })
		if err == nil && allocs != 0 {
			t.Fatalf("Validate allocated %v times", allocs)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Validate error does not wrap ErrMalformed: %v", err)
		}

		br := bytes.NewReader(data)
		skipErr := msgpack.NewDecoder(br).Skip()
		oneValue := skipErr == nil && br.Len() == 0
		switch {
		case err == nil && !oneValue:
			t.Fatalf("Validate accepts % x, msgpack does not (%v, %d bytes left)", data, skipErr, br.Len())
		case err != nil && oneValue && !strings.Contains(err.Error(), "nested deeper"):
			t.Fatalf("msgpack accepts % x, Validate does not: %v", data, err)
		}
	})
}

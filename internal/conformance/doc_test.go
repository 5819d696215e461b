package conformance

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/poold/poold/internal/ipc"
)

// docFrames reads the annotated frames of docs/protocol.md: each block that
// starts with a line "frame: NAME", whose lines hold hex bytes separated by
// single spaces, then two spaces or more and what they are.
func docFrames(t *testing.T) map[string][]byte {
	t.Helper()
	f, err := os.Open("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	frames := map[string][]byte{}
	var name string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "frame: "):
			name = strings.TrimPrefix(line, "frame: ")
			if _, dup := frames[name]; dup {
				t.Fatalf("line %d: frame %q twice", n, name)
			}
			frames[name] = nil
		case name != "" && strings.HasPrefix(line, "```"):
			name = ""
		case name != "":
			code, _, _ := strings.Cut(strings.TrimLeft(line, " "), "  ")
			for tok := range strings.FieldsSeq(code) {
				b, err := hex.DecodeString(tok)
				if err != nil || len(b) != 1 {
					t.Fatalf("line %d: %q is not a byte in hex: %q", n, tok, line)
				}
				frames[name] = append(frames[name], b[0])
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return frames
}

func writeMessage(t *testing.T, m *ipc.Message) []byte {
	t.Helper()
	var b bytes.Buffer
	w := ipc.NewWriter(&b, 0)
	var err error
	switch m.Kind {
	case ipc.KindHello:
		err = w.WriteHello(&m.Hello)
	case ipc.KindSetup:
		err = w.WriteSetup(&m.Setup)
	case ipc.KindTask:
		err = w.WriteTask(&m.Task)
	case ipc.KindResult:
		err = w.WriteResult(&m.Result)
	default:
		t.Fatalf("no writer for %s", m.Kind)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDocFrames: the annotated frames of docs/protocol.md §13 are what
// ipc.Writer writes for the messages the text describes, byte for byte,
// and ipc.Reader reads them back as those messages.
func TestDocFrames(t *testing.T) {
	hello := ipc.Hello{PID: 4242, Version: ipc.ProtocolVersion, Tasks: []string{"echo", "square"}, Program: "example 1.0", Host: "node1", CPUs: 8}
	ready := hello
	hello.Setup = true
	arg, err := msgpack.Marshal(map[string]any{"x": 7})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ipc.Message{
		"hello-setup": {Kind: ipc.KindHello, Hello: hello},
		"setup":       {Kind: ipc.KindSetup, Setup: ipc.Setup{MaxFrame: ipc.DefaultMaxFrame, MaxOutput: 4 << 20, LogLevel: "info", MemoryInterval: 50_000_000}},
		"hello-ready": {Kind: ipc.KindHello, Hello: ready},
		"task":        {Kind: ipc.KindTask, Task: ipc.Task{ID: 1, Func: "square", Args: []msgpack.RawMessage{arg}}},
		"result": {Kind: ipc.KindResult, Result: ipc.Result{ID: 1, Items: []ipc.Item{{OK: true, Value: msgpack.RawMessage{49},
			Start: 1764650000123456789, End: 1764650000123470000, CPU: 12000, MaxRSS: 13 << 20}}}},
		"result-error": {Kind: ipc.KindResult, Result: ipc.Result{ID: 2, From: 3, Items: []ipc.Item{{
			Value: msgpack.RawMessage{0xc0}, Err: &ipc.ErrorInfo{Kind: "error", Message: "boom", Type: "ValueError"}, Start: 1, End: 2, CPU: -1}}}},
	}
	frames := docFrames(t)
	for name := range frames {
		if _, ok := want[name]; !ok {
			t.Errorf("docs/protocol.md has a frame %q that this test does not know", name)
		}
	}
	for name, m := range want {
		doc, ok := frames[name]
		if !ok {
			t.Errorf("docs/protocol.md lacks the frame %q", name)
			continue
		}
		if written := writeMessage(t, &m); !bytes.Equal(doc, written) {
			t.Errorf("frame %q: the doc has\n% x\nipc.Writer writes\n% x", name, doc, written)
		}
		var got ipc.Message
		if err := ipc.NewReader(bytes.NewReader(doc), 0).Read(&got); err != nil {
			t.Errorf("frame %q: ipc.Reader: %v", name, err)
			continue
		}
		if m.Kind == ipc.KindResult && m.Result.Items[0].Value == nil {
			m.Result.Items[0].Value = msgpack.RawMessage{0xc0}
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("frame %q reads as\n%+v\nwant\n%+v", name, got, m)
		}
	}
}

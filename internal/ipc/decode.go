package ipc

import (
	"bufio"
	"fmt"
	"io"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// fieldCount is the length of each kind's message array, the kind included;
// 0 for a kind that does not exist.
// A Hello may have more (see Hello): 4 is its least.
var fieldCount = [...]int{KindHello: 4, KindTask: 6, KindResult: 4, KindCancel: 2, KindSetup: 9}

// minItemSize is the smallest encoding of a result item: a fixarray header
// and six one-byte values (the seventh, cpu, may be left out).
const minItemSize = 7

// Reader decodes frames from a stream. It reuses its frame buffer; every
// slice and string in a decoded Message is freshly allocated (or shared with
// an earlier message and never written), so the message may outlive the next
// Read. The arguments of one Task, and the values and outputs of one Result,
// share one backing array (each slice's capacity ends where it ends). A
// Reader is not safe for concurrent use.
//
// The decoder is strict: each field must have the msgpack type that Writer
// gives it (an integer that fits, a str, a bin or nil, ...), with any of
// msgpack's integer encodings accepted, so another msgpack encoder can speak
// the protocol.
type Reader struct {
	fr    frameReader
	names map[string]string
}

// NewReader returns a Reader on r that refuses frames above maxFrame bytes
// (DefaultMaxFrame when maxFrame <= 0).
func NewReader(r io.Reader, maxFrame int) *Reader {
	return &Reader{fr: frameReader{r: bufio.NewReaderSize(r, 64<<10), max: frameCap(maxFrame)}}
}

// Read decodes the next frame into m, which it clears first. It returns
// io.EOF at a clean end of stream; any other error (ErrFrameTooLarge,
// ErrMalformed, io.ErrUnexpectedEOF, ...) means the stream is broken. On an
// error m is left zero.
func (r *Reader) Read(m *Message) error {
	*m = Message{}
	body, err := r.fr.next()
	if err == nil {
		err = r.decode(body, m)
	}
	if err != nil {
		*m = Message{}
	}
	return err
}

// ReadShared is Read without copies, for a caller that is done with each
// message before it reads the next: the message's slices point into the
// Reader's frame buffer, and a Result's Items reuse the array of the Items
// m held before. Both are valid only until the next read.
func (r *Reader) ReadShared(m *Message) error {
	items := m.Result.Items[:0]
	*m = Message{}
	m.Result.Items = items
	body, err := r.fr.next()
	if err == nil {
		err = r.decodeWith(body, m, true)
	}
	if err != nil {
		*m = Message{}
	}
	return err
}

// OnBigFrame makes the Reader call fn when it has read the header of a frame
// of at least size bytes, before it reads the body: a large frame takes a
// while to arrive, and the sender is done with it as it starts to send it.
func (r *Reader) OnBigFrame(size int, fn func()) { r.fr.bigFrame, r.fr.bigSize = fn, size }

// Buffered reports whether bytes of a next frame are already buffered.
func (r *Reader) Buffered() bool { return r.fr.r.Buffered() > 0 }

func (r *Reader) decode(body []byte, m *Message) error { return r.decodeWith(body, m, false) }

func (r *Reader) decodeWith(body []byte, m *Message, shared bool) error {
	// The cursor checks every length against the bytes left before it
	// takes them, and each raw value (an argument, a result, an error's
	// detail: the only nesting a frame holds) goes through ValueLen, which
	// bounds its lengths and depth. A Validate of the whole frame first
	// walked every byte once more: 20 % of the parent's CPU in a Map of
	// trivial items (165 ns of ~800 per item).
	c := cursor{b: body, names: &r.names, shared: shared}
	n := c.arrayLen("message")
	if c.err != nil {
		return fmt.Errorf("%w: not a message array: %v", ErrMalformed, c.err)
	}
	if n < 1 {
		return fmt.Errorf("%w: empty message array", ErrMalformed)
	}
	k := c.uint("message kind")
	if c.err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, c.err)
	}
	if k >= uint64(len(fieldCount)) || fieldCount[k] == 0 {
		return fmt.Errorf("%w: unknown message kind %d", ErrMalformed, k)
	}
	kind := Kind(k)
	if want := fieldCount[k]; n != want && (kind != KindHello || n < want) {
		return fmt.Errorf("%w: %s message with %d fields, want %d", ErrMalformed, kind, n, want)
	}
	switch kind {
	case KindHello:
		c.hello(&m.Hello, n-1)
	case KindTask:
		c.task(&m.Task)
	case KindResult:
		c.result(&m.Result)
	case KindCancel:
		m.Cancel.ID = c.uint("id")
	case KindSetup:
		c.setup(&m.Setup)
	}
	if c.err == nil && c.off != len(c.b) {
		c.err = fmt.Errorf("%d bytes after the message", len(c.b)-c.off)
	}
	if c.err != nil {
		return fmt.Errorf("%w: %s: %v", ErrMalformed, kind, c.err)
	}
	m.Kind = kind
	return nil
}

// The readers of each kind read field after field and leave the errors to
// the cursor, which keeps the first (see cursor). They look at c.err only
// where they act on what they read: before an error of their own, before
// allocating for a count (a count is 0 after an error), and to say which
// item failed; decodeWith checks it at the end.

// hello reads a Hello of fields fields (3 at least): those after the task
// names are optional, and those after the ones this version knows are
// skipped.
func (c *cursor) hello(h *Hello, fields int) {
	h.PID = c.int("pid")
	h.Version = c.int("version")
	// n is at most the bytes left (each name takes one at least), and 0
	// after an error.
	if n := c.arrayLen("task names"); n > 0 {
		h.Tasks = make([]string, n)
	}
	for i := range h.Tasks {
		h.Tasks[i] = c.str("task name")
	}
	for f := 4; f <= fields && c.err == nil; f++ {
		switch f {
		case 4:
			h.Program = c.str("program")
		case 5:
			h.Host = c.str("host")
		case 6:
			h.CPUs = c.int("cpus")
		case 7:
			h.Setup = c.bool("setup")
		default:
			c.raw("a later version's field", 1)
		}
	}
}

func (c *cursor) setup(s *Setup) {
	s.MaxFrame = c.int("max frame")
	s.MaxOutput = c.int("max output")
	s.LogLevel = c.str("log level")
	s.Initializer = c.str("initializer")
	if !c.nil() {
		c.own()
		s.InitializerArgs = c.raw("initializer arguments", 1)
	}
	s.Procs = c.int("procs")
	s.MaxMemory = c.int64("max memory")
	s.MemoryInterval = c.int64("memory interval")
}

func (c *cursor) task(t *Task) {
	t.ID = c.uint("id")
	t.Func = c.name("func")
	t.Timeout = c.int64("timeout")
	t.Eager = c.bool("eager")
	n := c.arrayLen("args")
	if c.err != nil {
		return
	}
	if n < 1 {
		c.err = fmt.Errorf("task %d has no arguments", t.ID)
		return
	}
	// n is at most the bytes left (each value takes one at least), so the
	// slice costs at most 24 bytes for each byte of the frame.
	c.own()
	t.Args = make([]msgpack.RawMessage, n)
	for i := range t.Args {
		t.Args[i] = c.raw("argument", 2)
	}
}

func (c *cursor) result(res *Result) {
	res.ID = c.uint("id")
	if from := c.uint("from"); from > math.MaxInt32 {
		c.fail("from", fmt.Errorf("%d is not an argument's index", from))
	} else {
		res.From = int(from)
	}
	n := c.arrayLen("items")
	if c.err != nil || n == 0 {
		return
	}
	if n > (len(c.b)-c.off)/minItemSize {
		c.err = fmt.Errorf("%d items claimed in %d bytes", n, len(c.b)-c.off)
		return
	}
	c.own()
	if c.shared && cap(res.Items) >= n && (n >= cap(res.Items)/16 || cap(res.Items) <= 1<<12) {
		res.Items = res.Items[:n]
		clear(res.Items)
	} else {
		res.Items = make([]Item, n)
	}
	for i := range res.Items {
		if c.item(&res.Items[i]); c.err != nil {
			c.err = fmt.Errorf("item %d: %w", i, c.err)
			return
		}
	}
}

func (c *cursor) item(it *Item) {
	n := c.arrayLen("item")
	if (n < 6 || n > 8) && c.err == nil {
		c.err = fmt.Errorf("result item with %d fields, want 6 to 8", n)
	}
	it.OK = c.bool("ok")
	it.Value = c.raw("value", 3)
	if !c.nil() {
		c.fields("error", "error", 5)
		e := new(ErrorInfo)
		e.Kind = c.str("error kind")
		e.Message = c.str("error message")
		e.Stack = c.str("error stack")
		e.Type = c.str("error type")
		if e.Detail = c.raw("error detail", 4); len(e.Detail) == 1 && e.Detail[0] == 0xc0 {
			e.Detail = nil // msgpack nil: nothing
		}
		it.Err = e
	}
	it.Output = c.binOrNil("output")
	it.Start = c.int64("start")
	it.End = c.int64("end")
	it.CPU = -1 // without cpu: not measured
	if n >= 7 {
		it.CPU = c.int64("cpu")
	}
	if n == 8 {
		it.MaxRSS = c.int64("max_rss")
	}
}

// SetMaxFrame changes the cap on the frames read from now on (DefaultMaxFrame
// when maxFrame <= 0): a worker learns its parent's cap from a Setup that it
// read under the default one.
func (r *Reader) SetMaxFrame(maxFrame int) { r.fr.max = frameCap(maxFrame) }

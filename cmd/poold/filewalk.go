package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// A JSON task file is walked as a stream: the walker reads it a piece at a
// time and hands over one entry at a time, so that checking or running a
// file of any length holds one entry of it, not the file. It says what is
// wrong with the file's structure as decoding it whole with encoding/json
// did (the same messages at the same lines and columns; the tests hold the
// two side by side), and leaves each entry's own syntax to encoding/json,
// given that entry's bytes alone.

// walkChunk is how much the walker reads at a time.
const walkChunk = 256 << 10

// walkProblem is what is wrong with a file as a whole: it is the only
// problem reported, as when the file did not decode.
type walkProblem struct{ msg string }

func (p *walkProblem) Error() string { return p.msg }

// rawEntry is one entry of a task list as the walker found it.
type rawEntry struct {
	List int    // which list: 0 for a top-level array, n for the value of the n-th "tasks" key
	Pos  int    // 0-based position in its list
	Line int    // where it starts
	Data []byte // an object entry's bytes, not yet checked; valid until the handler returns
	// Value is any other entry (not an object, so wrong), decoded; Data is
	// then nil.
	Value any
	// Parsed: the walker's fast parser took Data (an entry that is right
	// and plain), and holds it until the handler returns.
	Parsed bool
	w      *walker
}

// value is the entry as encoding/json decodes it (numbers as json.Number):
// Value, or Data decoded; a syntax error in Data comes as a walkProblem
// with its line and column.
func (r *rawEntry) value() (any, error) {
	if r.Data == nil {
		return r.Value, nil
	}
	v, _, err := r.w.decode(r.Data)
	return v, err
}

// walkResult is what a walk found besides the entries.
type walkResult struct {
	inObject   bool   // the file is an object {"tasks": [...]}
	tasksKeys  int    // how many "tasks" keys it has; the last one counts, as in a Go map
	tasksType  string // the type of the last "tasks" value, as jsonType says it ("an array")
	hasUnknown bool
	unknown    string // the first other key, in sorted order
}

// walker reads a JSON task file from r.
type walker struct {
	r    io.Reader
	buf  []byte
	pos  int // the next byte to look at, in buf
	end  int // the end of what was read, in buf
	eof  bool
	err  error // a read error, which ends the input
	base int64 // the offset in the file of buf[0]
	line int   // the line of buf[pos], from 1
	// Columns are counted only when a message needs one: colRunes is the
	// number of characters from the start of the current line to colMark,
	// a file offset at or before pos, whose bytes are still in buf.
	// Counting them at every entry cost a quarter of the first pass.
	colMark  int64
	colRunes int
	re       rawEntry // handed to onEntry, entry after entry
	// fast, if set, parses object entries as it finds them: most need no
	// other look at their bytes (bracketExtent was 8 % of the command's CPU
	// time on echo tasks).
	fast *fastParser
}

func newWalker(r io.Reader) *walker {
	return &walker{r: r, buf: make([]byte, walkChunk), line: 1}
}

// fill makes n bytes from pos available, unless the input ends first:
// false then. It may move the bytes in buf (pos with them).
func (w *walker) fill(n int) bool {
	for w.end-w.pos < n && !w.eof {
		if w.pos > 0 {
			if mark := int(w.colMark - w.base); mark < w.pos {
				w.colRunes += utf8.RuneCount(w.buf[mark:w.pos])
				w.colMark = w.base + int64(w.pos)
			}
			w.base += int64(w.pos)
			if len(w.buf) > 16*walkChunk && w.end-w.pos < walkChunk {
				// Do not keep a huge entry's buffer for the small ones.
				w.buf = append(make([]byte, 0, 2*walkChunk), w.buf[w.pos:w.end]...)[:2*walkChunk]
			} else {
				copy(w.buf, w.buf[w.pos:w.end])
			}
			w.end -= w.pos
			w.pos = 0
		}
		if len(w.buf)-w.end < walkChunk/2 {
			grown := make([]byte, 2*len(w.buf))
			copy(grown, w.buf[:w.end])
			w.buf = grown
		}
		k, err := w.r.Read(w.buf[w.end:])
		w.end += k
		switch {
		case errors.Is(err, io.EOF):
			w.eof = true
		case err != nil:
			w.eof, w.err = true, err
		}
	}
	return w.end-w.pos >= n
}

// advance moves past n bytes, counting lines.
func (w *walker) advance(n int) {
	b := w.buf[w.pos : w.pos+n]
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		w.line++
		b = b[i+1:]
		w.colMark, w.colRunes = w.base+int64(w.pos+n-len(b)), 0
	}
	w.pos += n
}

// where names the line and column of the byte n bytes after pos, as
// position does.
func (w *walker) where(n int) string {
	b := w.buf[w.pos : w.pos+n]
	line, col := w.line, 0
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		line += bytes.Count(b, []byte("\n"))
		col = utf8.RuneCount(b[i+1:])
	} else {
		col = w.colRunes + utf8.RuneCount(w.buf[w.colMark-w.base:w.pos+n])
	}
	return fmt.Sprintf("line %d, column %d", line, col+1)
}

// skipSpace moves to the next byte that is not JSON white space and
// returns it; false at the end of the input.
func (w *walker) skipSpace() (byte, bool) {
	for {
		i := w.pos
		for i < w.end && isSpace(w.buf[i]) {
			i++
		}
		w.advance(i - w.pos)
		if w.pos < w.end {
			return w.buf[w.pos], true
		}
		if !w.fill(1) {
			return 0, false
		}
	}
}

// problemf is a problem with the file at n bytes after pos.
func (w *walker) problemf(n int, format string, a ...any) error {
	return &walkProblem{w.where(n) + ": " + fmt.Sprintf(format, a...)}
}

// ended is the problem of an input that ends too soon, or the read error
// that ended it.
func (w *walker) ended() error {
	if w.err != nil {
		return w.err
	}
	return &walkProblem{w.where(w.end-w.pos) + ": unexpected end of the file (an unclosed array, object or string?)"}
}

// unexpected is the syntax error of byte c at pos, which is not what
// should come after the context.
func (w *walker) unexpected(c byte, context string) error {
	return w.problemf(0, "invalid character %s %s", quoteChar(c), context)
}

// quoteChar is encoding/json's: how its messages show a byte.
func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	s := strconv.Quote(string(c))
	return "'" + s[1:len(s)-1] + "'"
}

const wantTaskList = `want a JSON array of tasks or an object {"tasks": [...]}`

// walk reads the whole file and calls onEntry for each entry of each task
// list, in order. It stops at the first error: what is wrong with the
// file's structure or syntax (a *walkProblem), a read error, or onEntry's.
// The problems that only the whole file shows (an unknown top-level key, no
// "tasks") are for the caller to judge, from what walk returns.
func (w *walker) walk(onEntry func(*rawEntry) error) (walkResult, error) {
	var res walkResult
	c, ok := w.skipSpace()
	if !ok {
		if w.err != nil {
			return res, w.err
		}
		return res, &walkProblem{"the file is empty; " + wantTaskList}
	}
	var top any
	switch c {
	case '[':
		w.advance(1)
		if err := w.list(0, onEntry); err != nil {
			return res, err
		}
	case '{':
		res.inObject = true
		w.advance(1)
		if err := w.object(&res, onEntry); err != nil {
			return res, err
		}
	default:
		v, err := w.value()
		if err != nil {
			return res, err
		}
		top = v
	}
	if _, ok := w.skipSpace(); ok {
		return res, w.problemf(0, "unexpected data after the task list")
	}
	if w.err != nil {
		return res, w.err
	}
	if c != '[' && c != '{' {
		return res, &walkProblem{fmt.Sprintf("the file holds %s; %s", jsonType(top), wantTaskList)}
	}
	return res, nil
}

// list walks a task list, just after its "[".
func (w *walker) list(list int, onEntry func(*rawEntry) error) error {
	c, ok := w.skipSpace()
	if !ok {
		return w.ended()
	}
	if c == ']' {
		w.advance(1)
		return nil
	}
	for pos := 0; ; pos++ {
		if err := w.entry(list, pos, c, onEntry); err != nil {
			return err
		}
		next, more, err := w.separator(']', "after array element")
		if !more {
			return err
		}
		c = next
	}
}

// separator reads what follows a value in an array or an object, up to
// the next value: a ',' (more is true; c is the next value's first byte),
// or close, which ends it (more and err are false and nil), or anything
// else, an error said to come in place (after array element, ...).
func (w *walker) separator(close byte, place string) (c byte, more bool, err error) {
	c, ok := w.skipSpace()
	if !ok {
		return 0, false, w.ended()
	}
	switch c {
	case ',':
		w.advance(1)
		if c, ok = w.skipSpace(); !ok {
			return 0, false, w.ended()
		}
		return c, true, nil
	case close:
		w.advance(1)
		return 0, false, nil
	}
	return 0, false, w.unexpected(c, place)
}

// entry hands over the entry at pos, whose first byte is c.
func (w *walker) entry(list, pos int, c byte, onEntry func(*rawEntry) error) error {
	r := &w.re
	*r = rawEntry{List: list, Pos: pos, Line: w.line, w: w}
	if c == '{' {
		n := -1
		if w.fast != nil {
			// What was read may end inside the entry: then the fast parser
			// refuses, and has its second chance in the handler.
			if n = w.fast.parseAt(w.buf[w.pos:w.end]); n >= 0 {
				r.Parsed = true
			}
		}
		if n < 0 {
			n = w.bracketExtent()
		}
		r.Data = w.buf[w.pos : w.pos+n]
		if err := onEntry(r); err != nil {
			return err
		}
		w.advance(n)
		return nil
	}
	v, err := w.value()
	if err != nil {
		return err
	}
	r.Value = v
	return onEntry(r)
}

// object walks the top-level object, just after its "{".
func (w *walker) object(res *walkResult, onEntry func(*rawEntry) error) error {
	c, ok := w.skipSpace()
	if !ok {
		return w.ended()
	}
	if c == '}' {
		w.advance(1)
		return nil
	}
	for {
		if c != '"' {
			return w.unexpected(c, "looking for beginning of object key string")
		}
		v, err := w.value()
		if err != nil {
			return err
		}
		key := v.(string)
		if c, ok = w.skipSpace(); !ok {
			return w.ended()
		}
		if c != ':' {
			return w.unexpected(c, "after object key")
		}
		w.advance(1)
		if c, ok = w.skipSpace(); !ok {
			return w.ended()
		}
		switch {
		case key == "tasks" && c == '[':
			res.tasksKeys++
			res.tasksType = "an array"
			w.advance(1)
			if err := w.list(res.tasksKeys, onEntry); err != nil {
				return err
			}
		default:
			v, err := w.value()
			if err != nil {
				return err
			}
			if key == "tasks" {
				res.tasksKeys++
				res.tasksType = jsonType(v)
			} else if !res.hasUnknown || key < res.unknown {
				res.hasUnknown, res.unknown = true, key
			}
		}
		next, more, err := w.separator('}', "after object key:value pair")
		if !more {
			return err
		}
		c = next
	}
}

// value decodes the value at pos and moves past it.
func (w *walker) value() (any, error) {
	var n int
	switch w.buf[w.pos] {
	case '{', '[':
		n = w.bracketExtent()
	default:
		n = w.scalarExtent()
	}
	v, used, err := w.decode(w.buf[w.pos : w.pos+n])
	if err != nil {
		return nil, err
	}
	w.advance(used)
	return v, nil
}

// decode decodes the value at the start of data, data being at pos, and
// returns it with the bytes it took.
func (w *walker) decode(data []byte) (any, int, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep integers exact; conversion decides int64 or float64
	var v any
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
			// The value runs to the end of the input: the extents stop
			// only there or after a whole value.
			return nil, 0, w.ended()
		case errors.As(err, &se):
			// Offset counts the bytes read, the offending one included.
			return nil, 0, w.problemf(max(0, min(int(se.Offset)-1, len(data))), "%s", se.Error())
		default:
			return nil, 0, &walkProblem{err.Error()}
		}
	}
	return v, int(dec.InputOffset()), nil
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A streamed task file is JSON Lines: one entry per line, read lazily, so
// that a file of any length runs in bounded memory. It cannot be checked
// whole before it runs: a line that is wrong becomes an entry whose one
// result fails with kind bad_task (Entry.Bad), and the run goes on.

// maxLineLen bounds a line of a streamed task file; a longer line is a
// bad_task result, not a crash. A variable, so that tests can lower it.
var maxLineLen = 64 << 20

// isStream says whether the task file is read as JSON Lines: with --jsonl,
// or when its name ends in .jsonl.
func isStream(cfg *config) bool {
	return cfg.jsonl || strings.HasSuffix(cfg.taskFile, ".jsonl")
}

// lineReader reads lines of any length without holding more than max bytes
// of one: the bytes of a longer line are skipped.
type lineReader struct {
	r   *bufio.Reader
	buf []byte
	max int
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next line without its end ("\n"), valid until the next
// call. tooLong says that the line was longer than the limit: its bytes are
// not returned. At the end of the input, err is io.EOF and there is no line;
// a last line without "\n" is returned first, as any other. Another err is
// a read error, which ends the input.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	if cap(lr.buf) > 1<<20 {
		lr.buf = nil // do not keep a huge line's buffer for the small ones after it
	}
	lr.buf = lr.buf[:0]
	read := 0
	for {
		frag, err := lr.r.ReadSlice('\n')
		read += len(frag)
		if !tooLong {
			lr.buf = append(lr.buf, frag...)
			// The limit leaves room for the "\n" at the end.
			if len(lr.buf) > lr.max+1 {
				tooLong, lr.buf = true, lr.buf[:0]
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil && (read == 0 || !errors.Is(err, io.EOF)):
			return nil, false, err
		}
		// A line: it ended with "\n", or the input ended after it.
		if tooLong {
			return nil, true, nil
		}
		line = bytes.TrimSuffix(lr.buf, []byte("\n"))
		if len(line) > lr.max {
			return nil, true, nil
		}
		return line, false, nil
	}
}

// isBlank says whether a line holds only JSON white space.
func isBlank(line []byte) bool { return skipSpace(line, 0) == len(line) }

// parseLine parses line lineNo (1-based) of a streamed task file, the
// file's entry pos (0-based, counting the entries, not the blank lines). It
// never fails: an entry that is wrong comes back with Bad saying what is
// wrong and where. known is as for ParseTaskFile.
func parseLine(pos, lineNo int, line []byte, known []string) *Entry {
	return (&fastParser{known: known}).line(pos, lineNo, line)
}

// line is parseLine with p's buffers: the quick way first (fastentry.go),
// the exact way for what it refuses.
func (p *fastParser) line(pos, lineNo int, line []byte) *Entry {
	if p.parse(line) {
		return p.entry(pos, lineNo)
	}
	known := p.known
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return badEntry(pos, lineNo, nil, lineSyntaxMessage(lineNo, line, err))
	}
	if rest := skipSpace(line, int(dec.InputOffset())); rest < len(line) {
		return badEntry(pos, lineNo, nil, fmt.Sprintf("line %d, column %d: unexpected data after the entry (one entry per line)",
			lineNo, column(line, rest)))
	}
	ep := &parser{known: known, bare: true}
	e, ok := ep.entry(pos, lineNo, raw)
	if ok {
		return e
	}
	msg := fmt.Sprintf("line %d: %s", lineNo, strings.Join(ep.problems, "; "))
	if ep.funcProblem && len(known) > 0 {
		msg += "; known task names: " + strings.Join(known, ", ")
	}
	return badEntry(pos, lineNo, e, msg)
}

// badEntry is an entry that will not run: its result fails with kind
// bad_task and message msg. e is what could be parsed of it, if anything:
// its id and task name, when they are right, still name the result.
func badEntry(pos, lineNo int, e *Entry, msg string) *Entry {
	b := &Entry{Pos: pos, Line: lineNo, ID: strconv.Itoa(pos), Func: "?", Bad: msg}
	if e != nil {
		if e.ID != "" {
			b.ID = e.ID
		}
		if e.Func != "" {
			b.Func = e.Func
		}
	}
	return b
}

// lineSyntaxMessage says what is wrong with a line that is not JSON.
func lineSyntaxMessage(lineNo int, line []byte, err error) string {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("line %d: unexpected end of the line (an entry is one JSON object on one line)", lineNo)
	case errors.As(err, &se):
		// Offset counts the bytes read, the offending one included.
		return fmt.Sprintf("line %d, column %d: %v", lineNo, column(line, int(se.Offset)-1), se)
	default:
		return fmt.Sprintf("line %d: %v", lineNo, err)
	}
}

// column is the 1-based column, in characters, of the byte at offset off of
// a line.
func column(line []byte, off int) int {
	return utf8.RuneCount(line[:max(0, min(off, len(line)))]) + 1
}

// openLines opens name ("-": stdin) to be read line by line, and reads
// it once, so that an input that cannot be read is an error before
// anything starts; what says what it is, for the message. The name it
// returns is the one to show ("stdin" for "-").
func openLines(name string, stdin io.Reader, what string) (*lineReader, string, io.Closer, error) {
	var r io.Reader = stdin
	var closer io.Closer
	if name == "-" {
		name = "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, "", nil, fmt.Errorf("reading %s: %w", what, err)
		}
		r, closer = f, f
	}
	lr := newLineReader(r, maxLineLen)
	if _, err := lr.r.Peek(1); err != nil && !errors.Is(err, io.EOF) {
		if closer != nil {
			closer.Close()
		}
		return nil, "", nil, fmt.Errorf("reading %s: %w", what, err)
	}
	return lr, name, closer, nil
}

// lineSource is a source of one entry per line of lr, made by entry from
// the line (tooLong: it was cut at the limit); entry returns nil to skip a
// line. closer, if not nil, is closed when the reading is done.
func lineSource(lr *lineReader, closer io.Closer, entry func(lineNo int, line []byte, tooLong bool) *Entry) *source {
	return newSource(false, func(s *sender) error {
		if closer != nil {
			defer closer.Close()
		}
		for lineNo := 1; ; lineNo++ {
			// Nothing to read without waiting: what is parsed goes to the
			// runner first, so that a pipe written slowly runs as it comes.
			if lr.r.Buffered() == 0 && !s.flush() {
				return nil
			}
			line, tooLong, err := lr.next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
			if e := entry(lineNo, line, tooLong); e != nil && !s.send(e) {
				return nil
			}
		}
	})
}

// streamSource reads a JSON Lines task file lazily from lr, and closes
// closer (if not nil) when it is done with it. control, if not nil, may
// take a line as a control line (poold serve's) rather than a task: it
// returns the entry that stands for it, or nil for a task line.
func streamSource(lr *lineReader, closer io.Closer, known []string, control func(lineNo int, line []byte) *Entry) *source {
	pos, first := 0, 0
	fast := &fastParser{known: known}
	return lineSource(lr, closer, func(lineNo int, line []byte, tooLong bool) *Entry {
		var e *Entry
		switch {
		case tooLong:
			e = badEntry(pos, lineNo, nil, fmt.Sprintf("line %d: the line is longer than the limit of %s", lineNo, sizeString(lr.max)))
		case isBlank(line):
			return nil
		default:
			if control != nil {
				if c := control(lineNo, line); c != nil {
					return c // not a task: no position of its own
				}
			}
			e = fast.line(pos, lineNo, line)
		}
		e.First = first
		first += e.Count()
		pos++
		return e
	})
}

// sizeString writes a byte count in MiB when it is a whole number of them.
func sizeString(n int) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

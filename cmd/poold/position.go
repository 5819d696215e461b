package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// syntaxMessage turns a decoding error into a message with a line and
// column.
func syntaxMessage(data []byte, err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF) && skipSpace(data, 0) == len(data):
		return `the file is empty; want a JSON array of tasks or an object {"tasks": [...]}`
	case errors.Is(err, io.ErrUnexpectedEOF):
		return position(data, len(data)) + ": unexpected end of the file (an unclosed array, object or string?)"
	case errors.As(err, &se):
		// Offset counts the bytes read, the offending one included.
		return position(data, int(se.Offset)-1) + ": " + se.Error()
	case errors.As(err, &te):
		return position(data, int(te.Offset)-1) + ": " + te.Error()
	default:
		return err.Error()
	}
}

// position names the line and column (1-based, in characters) of the byte
// at offset off.
func position(data []byte, off int) string {
	off = max(0, min(off, len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return fmt.Sprintf("line %d, column %d", line, col)
}

// skipSpace returns the offset of the first byte at or after off that is
// not JSON white space.
func skipSpace(data []byte, off int) int {
	for off < len(data) && strings.IndexByte(" \t\r\n", data[off]) >= 0 {
		off++
	}
	return off
}

// entryLines finds the line on which each entry of the task list starts.
// data is valid JSON by now; a failure here only costs line numbers.
func entryLines(data []byte, inObject bool) []int {
	dec := json.NewDecoder(bytes.NewReader(data))
	if inObject {
		if !seekTasks(dec) {
			return nil
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('[') {
		return nil
	}
	var lines []int
	line, counted := 1, 0 // newlines are counted once, in step with the entries
	for dec.More() {
		// InputOffset is just past the previous value; the entry starts
		// after the white space and the comma that follow it.
		off := int(dec.InputOffset())
		for off < len(data) && strings.IndexByte(" \t\r\n,", data[off]) >= 0 {
			off++
		}
		line += bytes.Count(data[counted:off], []byte("\n"))
		counted = off
		lines = append(lines, line)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return lines
		}
	}
	return lines
}

// seekTasks moves dec to the value of the top-level object's "tasks" key.
func seekTasks(dec *json.Decoder) bool {
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return false
		}
		if key == "tasks" {
			return true
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}

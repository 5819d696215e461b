package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// refParseTaskFile is how a task file was parsed and checked before the
// walker: decoded whole with encoding/json. The tests hold ParseTaskFile and
// the streamed check to it, message for message. known lists the task names
// the workers will know; nil skips that check (for a --worker-cmd whose
// tasks this program cannot know in advance). name is the file's name in
// messages.
func refParseTaskFile(name string, data []byte, known []string) (*TaskFile, error) {
	fail := func(format string, a ...any) error {
		return &FileError{Name: name, Problems: []string{fmt.Sprintf(format, a...)}}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep integers exact; conversion decides int64 or float64
	var top any
	if err := dec.Decode(&top); err != nil {
		return nil, fail("%s", syntaxMessage(data, err))
	}
	if rest := skipSpace(data, int(dec.InputOffset())); rest < len(data) {
		return nil, fail("%s: unexpected data after the task list", position(data, rest))
	}

	list, inObject, err := taskList(top)
	if err != nil {
		return nil, fail("%s", err)
	}
	lines := entryLines(data, inObject)
	p := &parser{known: known}
	tf := &TaskFile{Entries: []*Entry{}}
	var all []*Entry // with the faulty ones, whose ids still count
	for i, raw := range list {
		line := 0
		if i < len(lines) {
			line = lines[i]
		}
		e, ok := p.entry(i, line, raw)
		if e != nil {
			all = append(all, e)
		}
		if !ok {
			continue
		}
		tf.add(e)
	}
	p.checkIDs(all)
	if len(p.problems) > 0 {
		fe := &FileError{Name: name, Problems: p.problems}
		if p.funcProblem {
			fe.Known = known
		}
		return nil, fe
	}
	return tf, nil
}

// taskList finds the list of entries: the top-level array, or the "tasks"
// array of a top-level object.
func taskList(top any) (list []any, inObject bool, err error) {
	const want = `want a JSON array of tasks or an object {"tasks": [...]}`
	switch v := top.(type) {
	case []any:
		return v, false, nil
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if k != "tasks" {
				return nil, true, fmt.Errorf("unknown key %q in the top-level object; %s", k, want)
			}
		}
		tasks, ok := v["tasks"]
		if !ok {
			return nil, true, fmt.Errorf(`no "tasks" key in the top-level object; %s`, want)
		}
		list, ok := tasks.([]any)
		if !ok {
			return nil, true, fmt.Errorf(`"tasks" is %s; want an array of tasks`, jsonType(tasks))
		}
		return list, true, nil
	default:
		return nil, false, fmt.Errorf("the file holds %s; %s", jsonType(top), want)
	}
}

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

// entryLines finds the line on which each entry of the task list starts.
// data is valid JSON by now; a failure here only costs line numbers.
func entryLines(data []byte, inObject bool) []int {
	dec := json.NewDecoder(bytes.NewReader(data))
	if inObject {
		// The last "tasks" key counts, as in the decoded map. (Before the
		// walker this was the first: the lines were wrong for a file with
		// two; the walker gets them right.)
		n := 0
		for seekTasks(json.NewDecoder(bytes.NewReader(data)), n) {
			n++
		}
		if n == 0 || !seekTasks(dec, n-1) {
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

// seekTasks moves dec to the value of the top-level object's "tasks" key,
// after skip others.
func seekTasks(dec *json.Decoder, skip int) bool {
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return false
		}
		if key == "tasks" {
			if skip == 0 {
				return true
			}
			skip--
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}

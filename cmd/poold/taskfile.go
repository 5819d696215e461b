package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Entry is one entry of a task file: a single task, or a map entry that
// applies one function to each value of a list.
type Entry struct {
	Pos   int    // 0-based position in the file's task list
	Line  int    // the line where the entry starts, for messages
	ID    string // as given, or Pos in decimal
	Func  string
	IsMap bool

	Args    any   // a task's arguments; nil when none were given
	MapArgs []any // a map entry's argument values, one task each

	Timeout    time.Duration // 0: the pool's default
	Retries    int           // meaningful when HasRetries
	HasRetries bool
	ChunkSize  int // a map entry's chunk size; 0: the pool's default

	First int // the output index of the entry's first result

	// Bad, when not empty, says what is wrong with an entry of a streamed
	// (JSON Lines) file: it is not run, and its one result fails with kind
	// bad_task and this message. A checked file has no bad entries.
	Bad string
}

// Count is the number of results the entry produces.
func (e *Entry) Count() int {
	if e.IsMap {
		return len(e.MapArgs)
	}
	return 1
}

// ResultID is the id of the entry's i-th result: the entry's own id for a
// task, ID[i] for the items of a map entry.
func (e *Entry) ResultID(i int) string {
	if !e.IsMap {
		return e.ID
	}
	return e.ID + "[" + strconv.Itoa(i) + "]"
}

// TaskFile is a parsed and checked task file.
type TaskFile struct {
	Entries []*Entry
	Results int // the number of results all entries produce together
}

// FileError lists everything wrong with a task file, so that one run shows
// the user every problem rather than one per attempt.
type FileError struct {
	Name     string
	Problems []string
	Known    []string // the known task names, when a func was missing or unknown
}

// maxProblems bounds the report: a file that is wrong everywhere (the wrong
// file, say) should not flood the terminal.
const maxProblems = 20

func (e *FileError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i == maxProblems {
			fmt.Fprintf(&b, "%s: ... and %d more problems\n", e.Name, len(e.Problems)-maxProblems)
			break
		}
		fmt.Fprintf(&b, "%s: %s\n", e.Name, p)
	}
	if len(e.Known) > 0 {
		fmt.Fprintf(&b, "known task names: %s\n", strings.Join(e.Known, ", "))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// Keys of task-file objects.
var (
	taskKeys = []string{"id", "func", "args", "timeout", "retries"}
	mapKeys  = []string{"id", "map", "args", "chunksize", "timeout", "retries"}
)

// ParseTaskFile parses and checks a task file. known lists the task names
// the workers will know; nil skips that check (for a --worker-cmd whose
// tasks this program cannot know in advance). name is the file's name in
// messages.
func ParseTaskFile(name string, data []byte, known []string) (*TaskFile, error) {
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
	tf := &TaskFile{}
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
		e.First = tf.Results
		tf.Results += e.Count()
		tf.Entries = append(tf.Entries, e)
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

// parser checks entries one by one and collects the problems.
type parser struct {
	known       []string
	problems    []string
	funcProblem bool // a func was missing or unknown: list the known names
	bare        bool // problems without the entry's name (a JSON Lines entry says its line once)
}

func (p *parser) addf(where, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if !p.bare {
		msg = where + ": " + msg
	}
	p.problems = append(p.problems, msg)
}

// entry checks one entry and returns it, with ok false if it has problems
// (recorded in p). e is nil when the entry is not even an object.
func (p *parser) entry(pos, line int, raw any) (e *Entry, ok bool) {
	where := entryName(pos, "", line)
	obj, isObj := raw.(map[string]any)
	if !isObj {
		p.addf(where, "want an object, got %s", jsonType(raw))
		return nil, false
	}
	e = &Entry{Pos: pos, Line: line, ID: strconv.Itoa(pos)}
	before := len(p.problems)
	if v, ok := obj["id"]; ok {
		if s, ok := v.(string); ok && s != "" {
			e.ID = s
			where = entryName(pos, s, line)
		} else {
			p.addf(where, `"id" must be a non-empty string, got %s`, describe(v))
		}
	}
	fn, hasFunc := obj["func"]
	mfn, hasMap := obj["map"]
	switch {
	case hasFunc && hasMap:
		p.addf(where, `has both "func" and "map"; a task has "func", a map entry has "map"`)
		return e, false
	case hasMap:
		e.IsMap = true
		e.Func = p.funcName(where, "map", mfn)
	case hasFunc:
		e.Func = p.funcName(where, "func", fn)
	default:
		p.funcProblem = true
		p.addf(where, `missing "func" (the task to run), or "map" for a map entry`)
	}
	p.unknownKeys(where, e.IsMap, obj)
	p.args(where, e, obj)
	p.options(where, e, obj)
	return e, len(p.problems) == before
}

func (p *parser) funcName(where, key string, v any) string {
	s, ok := v.(string)
	switch {
	case !ok || s == "":
		p.funcProblem = true
		p.addf(where, "%q must be a task name, got %s", key, describe(v))
	case p.known != nil && !slices.Contains(p.known, s):
		p.funcProblem = true
		p.addf(where, "unknown task %q", s)
	}
	return s
}

func (p *parser) unknownKeys(where string, isMap bool, obj map[string]any) {
	allowed, kind := taskKeys, "a task"
	if isMap {
		allowed, kind = mapKeys, "a map entry"
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if slices.Contains(allowed, k) {
			continue
		}
		hint := ""
		if k == "chunksize" {
			hint = ` ("chunksize" is for map entries, which have "map" instead of "func")`
		}
		p.addf(where, "unknown key %q%s; %s has %s", k, hint, kind, strings.Join(allowed, ", "))
	}
}

func (p *parser) args(where string, e *Entry, obj map[string]any) {
	v, ok := obj["args"]
	if e.IsMap {
		list, isList := v.([]any)
		if !isList {
			if !ok {
				p.addf(where, `a map entry needs "args": an array of argument values, one task each`)
			} else {
				p.addf(where, `a map entry's "args" must be an array of argument values, got %s`, jsonType(v))
			}
			return
		}
		for i := range list {
			c, err := convert(list[i])
			if err != nil {
				p.addf(where, "args[%d]: %v", i, err)
				return
			}
			list[i] = c
		}
		e.MapArgs = list
		return
	}
	c, err := convert(v)
	if err != nil {
		p.addf(where, "args: %v", err)
		return
	}
	e.Args = c
}

func (p *parser) options(where string, e *Entry, obj map[string]any) {
	if v, ok := obj["timeout"]; ok {
		s, isString := v.(string)
		d, err := time.ParseDuration(s)
		switch {
		case !isString:
			p.addf(where, `"timeout" must be a duration string such as "500ms" or "2m", got %s`, describe(v))
		case err != nil:
			p.addf(where, `"timeout": %q is not a duration such as "500ms" or "2m"`, s)
		case d <= 0:
			p.addf(where, `"timeout" must be positive, got %q`, s)
		default:
			e.Timeout = d
		}
	}
	if v, ok := obj["retries"]; ok {
		if n, ok := intValue(v); ok && n >= 0 {
			e.Retries, e.HasRetries = n, true
		} else {
			p.addf(where, `"retries" must be an integer of at least 0, got %s`, describe(v))
		}
	}
	if v, ok := obj["chunksize"]; ok && e.IsMap {
		if n, ok := intValue(v); ok && n >= 1 {
			e.ChunkSize = n
		} else {
			p.addf(where, `"chunksize" must be an integer of at least 1, got %s`, describe(v))
		}
	}
}

// checkIDs refuses two results with the same id, including the generated
// ids of map items, since ids are how a reader matches results to tasks.
func (p *parser) checkIDs(entries []*Entry) {
	seen := make(map[string]*Entry)
	for _, e := range entries {
		for i := range e.Count() {
			id := e.ResultID(i)
			if prev, dup := seen[id]; dup {
				p.addf(entryName(e.Pos, e.ID, e.Line), "duplicate id %q, also used by entry %d", id, prev.Pos)
				break
			}
			seen[id] = e
		}
	}
}

func entryName(pos int, id string, line int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "entry %d (", pos)
	if id != "" {
		fmt.Fprintf(&b, "id %q, ", id)
	}
	fmt.Fprintf(&b, "line %d)", line)
	return b.String()
}

// convert turns a value decoded with UseNumber into what msgpack encodes
// naturally: integers as int64 (uint64 above its range), other numbers as
// float64, objects as map[string]any, arrays as []any.
func convert(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		return number(v)
	case []any:
		for i := range v {
			c, err := convert(v[i])
			if err != nil {
				return nil, err
			}
			v[i] = c
		}
		return v, nil
	case map[string]any:
		for k, x := range v {
			c, err := convert(x)
			if err != nil {
				return nil, err
			}
			v[k] = c
		}
		return v, nil
	default:
		return v, nil
	}
}

func number(n json.Number) (any, error) {
	if i, err := n.Int64(); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return u, nil
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) {
		return nil, fmt.Errorf("number %s is out of range", n)
	}
	return f, nil
}

// intValue reads a JSON integer that fits in an int.
func intValue(v any) (int, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(string(n))
	return i, err == nil
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number, int64, uint64, float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// describe names v's type, and v itself when it is short, so that a message
// shows what the user wrote.
func describe(v any) string {
	switch v := v.(type) {
	case json.Number:
		return "the number " + string(v)
	case string:
		return fmt.Sprintf("the string %q", v)
	case bool:
		return fmt.Sprintf("%v", v)
	}
	return jsonType(v)
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

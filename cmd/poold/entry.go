package main

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/poold/poold"
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

	Timeout    time.Duration // meaningful when HasTimeout; 0: no limit
	HasTimeout bool          // else the pool's default (--timeout)
	Retries    int           // meaningful when HasRetries
	HasRetries bool
	RetryOn    []poold.Kind // meaningful when HasRetryOn; empty: retry none
	HasRetryOn bool
	AtMostOnce bool // run each task at most once (poold.AtMostOnce)
	ChunkSize  int  // a map entry's chunk size; 0: the pool's default

	First int // the output index of the entry's first result

	// Bad, when not empty, says what is wrong with an entry of a streamed
	// (JSON Lines) file: it is not run, and its one result fails with kind
	// bad_task and this message. A checked file has no bad entries.
	Bad string

	// Control, when set, makes the line a control line of poold serve, not
	// an entry (Bad then says what is wrong with it).
	Control *controlLine

	flight flight // the entry in the pool, once the runner submits it
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

// Keys of task-file objects.
var (
	taskKeys = []string{"id", "func", "args", "timeout", "retries", "retry_on", "at_most_once"}
	mapKeys  = []string{"id", "map", "args", "chunksize", "timeout", "retries", "retry_on", "at_most_once"}
)

// parser checks entries one by one and collects the problems.
type parser struct {
	known       []string
	problems    []string
	funcProblem bool // a func was missing or unknown: list the known names
	bare        bool // problems without the entry's name (a JSON Lines entry says its line once)
	limit       int  // keep at most this many problems, and count the others; 0: no limit
	omitted     int  // the problems counted and not kept
}

// count is how many problems were found, kept or not.
func (p *parser) count() int { return len(p.problems) + p.omitted }

func (p *parser) addf(where, format string, a ...any) {
	if p.limit > 0 && len(p.problems) >= p.limit {
		p.omitted++
		return
	}
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
	before := p.count()
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
	return e, p.count() == before
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
			c, err := convertAt(list[i], "args["+strconv.Itoa(i)+"]")
			if err != nil {
				p.addf(where, "%v", err)
				return
			}
			list[i] = c
		}
		e.MapArgs = list
		return
	}
	c, err := convert(v)
	if err != nil {
		p.addf(where, "%v", err)
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
		case d < 0:
			p.addf(where, `"timeout" must not be negative, got %q ("0" means no limit)`, s)
		default:
			e.Timeout, e.HasTimeout = d, true
		}
	}
	if v, ok := obj["retries"]; ok {
		if n, ok := intValue(v); ok && n >= 0 {
			e.Retries, e.HasRetries = n, true
		} else {
			p.addf(where, `"retries" must be an integer of at least 0, got %s`, describe(v))
		}
	}
	if v, ok := obj["retry_on"]; ok {
		p.retryOn(where, e, v)
	}
	if v, ok := obj["at_most_once"]; ok {
		if b, ok := v.(bool); ok {
			e.AtMostOnce = b
		} else {
			p.addf(where, `"at_most_once" must be true or false, got %s`, describe(v))
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

// retryOn reads "retry_on": an array of kinds, checked as --retry-on's.
// Without known task names (a --worker-cmd), a worker's own kinds are
// allowed too.
func (p *parser) retryOn(where string, e *Entry, v any) {
	list, ok := v.([]any)
	if !ok {
		p.addf(where, `"retry_on" must be an array of failure kinds such as ["exit_status", "timeout"], got %s`, describe(v))
		return
	}
	kinds := make([]poold.Kind, 0, len(list))
	for i, x := range list {
		k, ok := x.(string)
		if !ok {
			p.addf(where, `"retry_on"[%d] must be a kind name, got %s`, i, describe(x))
			return
		}
		if err := checkRetryKind(k, p.known == nil); err != nil {
			p.addf(where, `"retry_on": %v`, err)
			return
		}
		kinds = append(kinds, poold.Kind(k))
	}
	e.RetryOn, e.HasRetryOn = kinds, true
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

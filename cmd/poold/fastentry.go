package main

import (
	"slices"
	"strconv"
	"time"

	"github.com/poold/poold"
)

// fastParser reads an entry the quick way (see fastjson.go): an entry that
// is right and plain comes out as the exact parser would make it, with its
// arguments already in msgpack; for any other it refuses, and the caller
// asks the exact parser (parser.entry), which says what is wrong. One
// fastParser serves one goroutine: it reuses its buffers from entry to
// entry.
type fastParser struct {
	known []string // as for ParseTaskFile: nil takes any task name
	conv  mpConv
	fe    fastEntry
}

// fastEntry is an entry as the fast parser read it. Its slices point into
// the parser's buffers or the entry's bytes: valid until the next parse.
type fastEntry struct {
	id         []byte // nil: no "id", the default
	fn         []byte
	isMap      bool
	args       span // a task's arguments in conv.out; empty: none (absent or null)
	hasArgs    bool // "args" was given (a map entry needs it)
	argsArray  bool // and was an array
	timeout    time.Duration
	hasTimeout bool
	retries    int
	hasRetries bool
	retryOn    []poold.Kind
	hasRetryOn bool
	atMostOnce bool
	chunk      int // 0: not given
}

// Bits for the keys an entry has: each may appear once.
const (
	keyID = 1 << iota
	keyFunc
	keyMap
	keyArgs
	keyTimeout
	keyRetries
	keyRetryOn
	keyAtMostOnce
	keyChunksize
)

// parse reads the entry data (one JSON value, space around it allowed);
// false: refused.
func (p *fastParser) parse(data []byte) bool {
	end := p.parseAt(data)
	return end >= 0 && skipSpace(data, end) == len(data)
}

// parseAt reads the entry that starts data (space before it allowed) and
// returns the offset just after it; -1: refused, or data ends first.
func (p *fastParser) parseAt(data []byte) int {
	fe := &p.fe
	*fe = fastEntry{retryOn: fe.retryOn[:0]}
	c := &p.conv
	c.out, c.items, c.keys, c.depth = c.out[:0], c.items[:0], c.keys[:0], 0
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return -1
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return -1 // no "func"
	}
	seen := 0
	for {
		if i >= len(data) || data[i] != '"' {
			return -1
		}
		key, next, escaped := unquote(nil, data, i)
		if next < 0 || escaped {
			return -1
		}
		bit := entryKeyBit(key)
		if bit == 0 || seen&bit != 0 {
			return -1 // unknown, or repeated: the exact way decides
		}
		seen |= bit
		if i = skipSpace(data, next); i >= len(data) || data[i] != ':' {
			return -1
		}
		if i = p.field(bit, data, skipSpace(data, i+1)); i < 0 {
			return -1
		}
		if i = skipSpace(data, i); i >= len(data) {
			return -1
		}
		if data[i] == ',' {
			i = skipSpace(data, i+1)
			continue
		}
		if data[i] != '}' {
			return -1
		}
		break
	}
	switch {
	case seen&keyFunc != 0 && seen&keyMap != 0, seen&(keyFunc|keyMap) == 0:
		return -1
	case fe.isMap && !fe.argsArray:
		return -1
	case !fe.isMap && seen&keyChunksize != 0:
		return -1
	}
	return i + 1
}

func entryKeyBit(k []byte) int {
	switch string(k) {
	case "id":
		return keyID
	case "func":
		return keyFunc
	case "map":
		return keyMap
	case "args":
		return keyArgs
	case "timeout":
		return keyTimeout
	case "retries":
		return keyRetries
	case "retry_on":
		return keyRetryOn
	case "at_most_once":
		return keyAtMostOnce
	case "chunksize":
		return keyChunksize
	}
	return 0
}

// field reads the value of key bit at data[i] and returns the offset after
// it; -1: refused.
func (p *fastParser) field(bit int, data []byte, i int) int {
	fe := &p.fe
	switch bit {
	case keyID:
		s, next := p.nonEmptyString(data, i)
		fe.id = s
		return next
	case keyFunc, keyMap:
		s, next := p.nonEmptyString(data, i)
		if next < 0 || (p.known != nil && !containsBytes(p.known, s)) {
			return -1
		}
		fe.fn, fe.isMap = s, bit == keyMap
		return next
	case keyArgs:
		c := &p.conv
		fe.hasArgs = true
		if i < len(data) && data[i] == 'n' {
			return c.literal(data, i, "null", 0xc0) // no arguments; the bytes are not used
		}
		fe.argsArray = i < len(data) && data[i] == '['
		c.recordItems = fe.argsArray
		start := len(c.out)
		next := c.value(data, i)
		c.recordItems = false
		fe.args = span{start, len(c.out)}
		return next
	case keyTimeout:
		if i >= len(data) || data[i] != '"' {
			return -1
		}
		s, next, _ := unquote(nil, data, i)
		if next < 0 {
			return -1
		}
		d, err := time.ParseDuration(string(s))
		if err != nil || d < 0 {
			return -1
		}
		fe.timeout, fe.hasTimeout = d, true
		return next
	case keyRetries:
		n, next := intAt(data, i)
		if next < 0 || n < 0 {
			return -1
		}
		fe.retries, fe.hasRetries = n, true
		return next
	case keyChunksize:
		n, next := intAt(data, i)
		if next < 0 || n < 1 {
			return -1
		}
		fe.chunk = n
		return next
	case keyAtMostOnce:
		switch {
		case len(data)-i >= 4 && string(data[i:i+4]) == "true":
			fe.atMostOnce = true
			return i + 4
		case len(data)-i >= 5 && string(data[i:i+5]) == "false":
			return i + 5
		}
		return -1
	case keyRetryOn:
		return p.retryOn(data, i)
	}
	return -1
}

// nonEmptyString reads a string that must not be empty.
func (p *fastParser) nonEmptyString(data []byte, i int) ([]byte, int) {
	if i >= len(data) || data[i] != '"' {
		return nil, -1
	}
	s, next, _ := unquote(nil, data, i)
	if next < 0 || len(s) == 0 {
		return nil, -1
	}
	return s, next
}

// intAt reads a JSON integer that fits in an int, as intValue does.
func intAt(data []byte, i int) (int, int) {
	end, integer := numberEnd(data, i)
	if end < 0 || !integer {
		return 0, -1
	}
	n, err := strconv.Atoi(string(data[i:end]))
	if err != nil {
		return 0, -1
	}
	return n, end
}

func (p *fastParser) retryOn(data []byte, i int) int {
	fe := &p.fe
	if i >= len(data) || data[i] != '[' {
		return -1
	}
	fe.hasRetryOn = true
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return i + 1
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return -1
		}
		s, next, _ := unquote(nil, data, i)
		if next < 0 {
			return -1
		}
		k, ok := retryKind(s, p.known == nil)
		if !ok {
			return -1
		}
		fe.retryOn = append(fe.retryOn, k)
		if i = skipSpace(data, next); i >= len(data) {
			return -1
		}
		if data[i] == ',' {
			i = skipSpace(data, i+1)
			continue
		}
		if data[i] != ']' {
			return -1
		}
		return i + 1
	}
}

// retryKind is checkRetryKind for the quick way: the kind, without an
// allocation for the usual ones.
func retryKind(s []byte, custom bool) (poold.Kind, bool) {
	for _, k := range retryableKinds {
		if string(k) == string(s) {
			return k, true
		}
	}
	if !custom || checkRetryKind(string(s), custom) != nil {
		return "", false
	}
	return poold.Kind(s), true
}

func containsBytes(list []string, s []byte) bool {
	for _, x := range list {
		if x == string(s) {
			return true
		}
	}
	return false
}

// count is the number of results of the entry just parsed.
func (p *fastParser) count() int {
	if p.fe.isMap {
		return len(p.conv.items)
	}
	return 1
}

// funcName is the task name of the entry just parsed: one of the known
// names (no allocation) when there are.
func (p *fastParser) funcName() string {
	if i := slices.IndexFunc(p.known, func(k string) bool { return k == string(p.fe.fn) }); i >= 0 {
		return p.known[i]
	}
	return string(p.fe.fn)
}

// entry makes the entry just parsed, the file's entry pos, starting on
// line line.
func (p *fastParser) entry(pos, line int) *Entry {
	fe := &p.fe
	e := &Entry{
		Pos: pos, Line: line, Func: p.funcName(), IsMap: fe.isMap,
		Timeout: fe.timeout, HasTimeout: fe.hasTimeout, Retries: fe.retries, HasRetries: fe.hasRetries,
		AtMostOnce: fe.atMostOnce, ChunkSize: fe.chunk,
	}
	if fe.id != nil {
		e.ID = string(fe.id)
	} else {
		e.ID = strconv.Itoa(pos)
	}
	if fe.hasRetryOn {
		e.RetryOn, e.HasRetryOn = slices.Clone(fe.retryOn), true
		if e.RetryOn == nil {
			e.RetryOn = []poold.Kind{}
		}
	}
	out := p.conv.out
	switch {
	case fe.isMap:
		// One allocation holds every item's arguments.
		all := out[fe.args.start:fe.args.end:fe.args.end]
		all = append([]byte(nil), all...)
		e.MapArgs = make([]any, len(p.conv.items))
		for k, it := range p.conv.items {
			s, end := it.start-fe.args.start, it.end-fe.args.start
			e.MapArgs[k] = rawOrNil(all[s:end:end])
		}
	case fe.args.end > fe.args.start && out[fe.args.start] != 0xc0:
		e.Args = poold.Raw(append([]byte(nil), out[fe.args.start:fe.args.end]...))
	}
	return e
}

// rawOrNil is a map item's argument: nil for JSON null, as the exact way
// has it.
func rawOrNil(b []byte) any {
	if len(b) == 1 && b[0] == 0xc0 {
		return nil
	}
	return poold.Raw(b)
}

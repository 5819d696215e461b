package main

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"strconv"
)

// checker checks the entries of a task file as the walker hands them over,
// and keeps what the run needs up front (the TaskFile's counts), not the
// entries, unless asked to (keep).
type checker struct {
	name  string
	known []string
	keep  bool // keep the entries, for ParseTaskFile

	fast fastParser
	slow parser // the exact way: its problems are the file's
	tf   TaskFile
	list int // the task list being checked: see rawEntry.List

	ids   idSet
	twice map[uint64]bool // hashes of ids seen twice: a duplicate id, or (about never) two ids with one hash
	idBuf []byte
}

func newChecker(name string, known []string, keep bool) *checker {
	c := &checker{name: name, known: known, keep: keep}
	c.fast.known = known
	c.reset(0)
	return c
}

// reset starts over on task list list: a later "tasks" key replaces the
// earlier ones, as it did in a decoded Go map.
func (c *checker) reset(list int) {
	c.list = list
	c.slow = parser{known: c.known, limit: maxProblems}
	c.tf = TaskFile{}
	c.ids = newIDSet()
	c.twice = nil
}

// entry checks one entry.
func (c *checker) entry(r *rawEntry) error {
	if r.List != c.list {
		c.reset(r.List)
	}
	if r.Parsed || (r.Data != nil && c.fast.parse(r.Data)) {
		fe := &c.fast.fe
		n := c.fast.count()
		if c.keep {
			c.tf.add(c.fast.entry(r.Pos, r.Line))
		} else {
			idLen := len(fe.id)
			if fe.id == nil {
				idLen = digits(r.Pos)
			}
			c.tf.note(idLen, len(fe.fn), fe.isMap, n, fe.hasRetries && fe.retries > 0)
		}
		c.addIDs(fe.id, r.Pos, fe.isMap, n)
		return nil
	}
	raw, err := r.value()
	if err != nil {
		return err
	}
	e, ok := c.slow.entry(r.Pos, r.Line, raw)
	if e != nil { // the ids of a faulty entry count too
		c.addIDs([]byte(e.ID), e.Pos, e.IsMap, e.Count())
	}
	switch {
	case ok && c.keep:
		c.tf.add(e)
	case ok:
		c.tf.count(e)
	}
	return nil
}

// digits is the length of n in decimal.
func digits(n int) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// addIDs adds the ids of an entry's n results to the set; id nil is the
// default, the entry's position.
func (c *checker) addIDs(id []byte, pos int, isMap bool, n int) {
	if id == nil {
		id = strconv.AppendInt(c.idBuf[:0], int64(pos), 10)
	}
	if !isMap {
		c.addID(id)
		return
	}
	base := len(id)
	buf := append(c.idBuf[:0], id...)
	for i := range n {
		buf = append(buf[:base], '[')
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, ']')
		c.addID(buf)
	}
	c.idBuf = buf
}

func (c *checker) addID(id []byte) {
	h := c.ids.hash(id)
	if c.ids.add(h) {
		if c.twice == nil {
			c.twice = make(map[uint64]bool)
		}
		c.twice[h] = true
	}
}

// finish turns the walk's end into the checked file or what is wrong with
// it. reread, if ids may repeat, reads the file again from the start, for
// the exact check of those ids.
func (c *checker) finish(res walkResult, walkErr error, reread func() (io.Reader, error)) (*TaskFile, error) {
	fail := func(format string, a ...any) error {
		return &FileError{Name: c.name, Problems: []string{fmt.Sprintf(format, a...)}}
	}
	var wp *walkProblem
	switch {
	case errors.As(walkErr, &wp):
		return nil, fail("%s", wp.msg)
	case walkErr != nil:
		return nil, fmt.Errorf("reading the task file: %w", walkErr)
	}
	if res.inObject {
		switch {
		case res.hasUnknown:
			return nil, fail("unknown key %q in the top-level object; %s", res.unknown, wantTaskList)
		case res.tasksKeys == 0:
			return nil, fail(`no "tasks" key in the top-level object; %s`, wantTaskList)
		case res.tasksType != "an array":
			return nil, fail(`"tasks" is %s; want an array of tasks`, res.tasksType)
		case c.list != res.tasksKeys:
			c.reset(res.tasksKeys) // the last list is empty
		}
	}
	if len(c.twice) > 0 {
		r, err := reread()
		if err != nil {
			return nil, fmt.Errorf("reading the task file: %w", err)
		}
		if err := c.checkIDs(r); err != nil {
			return nil, err
		}
	}
	if len(c.slow.problems) > 0 {
		fe := &FileError{Name: c.name, Problems: c.slow.problems, Omitted: c.slow.omitted}
		if c.slow.funcProblem {
			fe.Known = c.known
		}
		return nil, fe
	}
	c.tf.list = c.list
	tf := c.tf
	return &tf, nil
}

// checkIDs is parser.checkIDs for the ids whose hashes came twice, the
// only ones that can repeat: it reads the file again for them and reports
// each entry that repeats an id, as parser.checkIDs does.
func (c *checker) checkIDs(r io.Reader) error {
	seen := make(map[string]int) // id → the position of the entry that has it
	fast := fastParser{known: c.known}
	_, err := newWalker(r).walk(func(r *rawEntry) error {
		if r.List != c.list {
			return nil
		}
		var id string
		var isMap bool
		var n int
		if r.Data != nil && fast.parse(r.Data) {
			id, isMap, n = string(fast.fe.id), fast.fe.isMap, fast.count()
			if fast.fe.id == nil {
				id = strconv.Itoa(r.Pos)
			}
		} else {
			raw, err := r.value()
			if err != nil {
				return err
			}
			p := parser{known: c.known}
			e, _ := p.entry(r.Pos, r.Line, raw)
			if e == nil {
				return nil
			}
			id, isMap, n = e.ID, e.IsMap, e.Count()
		}
		e := &Entry{ID: id, IsMap: isMap, Pos: r.Pos}
		for i := range n {
			rid := id
			if isMap {
				rid = e.ResultID(i)
			}
			if !c.twice[c.ids.hash([]byte(rid))] {
				continue
			}
			if prev, dup := seen[rid]; dup {
				c.slow.addf(entryName(r.Pos, id, r.Line), "duplicate id %q, also used by entry %d", rid, prev)
				break
			}
			seen[rid] = r.Pos
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the task file again: %w", err)
	}
	return nil
}

// idSet is a set of 64-bit hashes of ids: open addressing, 8 bytes a slot,
// in 256 tables by the hash's top byte, each at most three quarters full
// and grown on its own, so that growing never holds two copies of the
// whole set. A million ids take about 14 MiB here, against about 60 MiB
// as a map[string]bool of the ids themselves; a hash seen twice is checked
// exactly (checker.checkIDs), so a collision costs a second reading, never
// a false error. Two of a million ids share a hash with a probability of
// about 3·10⁻⁸.
type idSet struct {
	seed  maphash.Seed
	parts []idTable
}

type idTable struct {
	slots []uint64 // 0: empty
	n     int
}

func newIDSet() idSet { return idSet{seed: maphash.MakeSeed(), parts: make([]idTable, 256)} }

func (s *idSet) hash(id []byte) uint64 {
	h := maphash.Bytes(s.seed, id)
	if h == 0 {
		h = 1 // 0 marks an empty slot
	}
	return h
}

// add adds h; true if it was there already.
func (s *idSet) add(h uint64) bool { return s.parts[h>>56].add(h) }

func (t *idTable) add(h uint64) bool {
	if 4*(t.n+1) > 3*len(t.slots) {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch t.slots[i] {
		case 0:
			t.slots[i] = h
			t.n++
			return false
		case h:
			return true
		}
	}
}

func (t *idTable) grow() {
	old := t.slots
	t.slots = make([]uint64, max(16, 2*len(old)))
	t.n = 0
	for _, h := range old {
		if h != 0 {
			t.add(h)
		}
	}
}

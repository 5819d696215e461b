package main

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// TaskFile is a checked task file: what the run needs to know before it
// starts. A file that is streamed keeps none of its entries: they are read
// again as the run goes.
type TaskFile struct {
	Entries []*Entry // the entries, when they are held in memory (ParseTaskFile, poold run's list); nil when streamed
	Results int      // the number of results all entries produce together

	IDWidth   int  // the longest result id, for the text columns
	FuncWidth int  // the longest task name
	Retries   bool // an entry asks for retries

	list int // the task list that counts: see rawEntry.List
}

// add counts e, the next entry, and keeps it.
func (tf *TaskFile) add(e *Entry) {
	tf.count(e)
	tf.Entries = append(tf.Entries, e)
}

// count counts e, the next entry, without keeping it.
func (tf *TaskFile) count(e *Entry) {
	e.First = tf.Results
	tf.note(len(e.ID), len(e.Func), e.IsMap, e.Count(), e.HasRetries && e.Retries > 0)
}

// note counts an entry of n results whose id is idLen bytes long.
func (tf *TaskFile) note(idLen, funcLen int, isMap bool, n int, retries bool) {
	if isMap && n > 0 {
		idLen += len("[]") + len(strconv.Itoa(n-1)) // the last item's id is the longest
	}
	if n > 0 {
		tf.IDWidth = max(tf.IDWidth, idLen)
	}
	tf.FuncWidth = max(tf.FuncWidth, funcLen)
	tf.Retries = tf.Retries || retries
	tf.Results += n
}

// newTaskFile is the TaskFile of entries held in memory.
func newTaskFile(entries []*Entry) *TaskFile {
	tf := &TaskFile{}
	for _, e := range entries {
		tf.add(e)
	}
	return tf
}

// FileError lists everything wrong with a task file, so that one run shows
// the user every problem rather than one per attempt.
type FileError struct {
	Name     string
	Problems []string // the first of them, at most maxProblems
	Omitted  int      // how many more there were
	Known    []string // the known task names, when a func was missing or unknown
}

// maxProblems bounds the report: a file that is wrong everywhere (the wrong
// file, say) should not flood the terminal, nor fill the memory.
const maxProblems = 20

func (e *FileError) Error() string {
	var b strings.Builder
	more := e.Omitted
	for i, p := range e.Problems {
		if i == maxProblems {
			more += len(e.Problems) - maxProblems
			break
		}
		fmt.Fprintf(&b, "%s: %s\n", e.Name, p)
	}
	if more > 0 {
		fmt.Fprintf(&b, "%s: ... and %d more problems\n", e.Name, more)
	}
	if len(e.Known) > 0 {
		fmt.Fprintf(&b, "known task names: %s\n", strings.Join(e.Known, ", "))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// ParseTaskFile parses and checks a task file held in memory, and keeps its
// entries. known lists the task names the workers will know; nil skips that
// check (for a --worker-cmd whose tasks this program cannot know in
// advance). name is the file's name in messages.
func ParseTaskFile(name string, data []byte, known []string) (*TaskFile, error) {
	c := newChecker(name, known, true)
	w := newWalker(bytes.NewReader(data))
	w.fast = &c.fast
	res, err := w.walk(c.entry)
	tf, err := c.finish(res, err, func() (io.Reader, error) { return bytes.NewReader(data), nil })
	if err != nil {
		return nil, err
	}
	if tf.Entries == nil {
		tf.Entries = []*Entry{}
	}
	return tf, nil
}

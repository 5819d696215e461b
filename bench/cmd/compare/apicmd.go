package main

// The poold command's job done through the Go API, as a program of its own
// (workload 9): the harness re-executed as the child "apicmd" reads a task
// file of echo tasks, submits each with ApplyAsync on a pool of 2, and
// prints one JSON line per result on stdout, as `poold --json` does.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/poold/poold"
)

// apiFileEnv names the task file of an apicmd child.
const apiFileEnv = "POOLD_BENCH_FILE"

// echoEntry is one entry of the task files of workload 9.
type echoEntry struct {
	ID   string   `json:"id"`
	Func string   `json:"func"`
	Args echoArgs `json:"args"`
}

// echoArgs are the arguments of the built-in task echo, as a Go program
// that knows its tasks would type them.
type echoArgs struct {
	Value int64 `json:"value"`
}

// echoLine is what the child prints per result.
type echoLine struct {
	ID     string `json:"id"`
	OK     bool   `json:"ok"`
	Result int64  `json:"result"`
	PID    int    `json:"pid"`
}

// writeEchoFile writes n entries {"id":"tN","func":"echo","args":{"value":N}}
// to path: a JSON array, an entry a line, or with lines JSON Lines.
func writeEchoFile(path string, n int, lines bool) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if !lines {
		w.WriteString("[\n")
	}
	for i := range n {
		w.WriteString(`{"id":"t` + strconv.Itoa(i) + `","func":"echo","args":{"value":` + strconv.Itoa(i) + `}}`)
		if !lines && i < n-1 {
			w.WriteByte(',')
		}
		w.WriteByte('\n')
	}
	if !lines {
		w.WriteString("]\n")
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// apiChild is the child's side: the task file named by apiFileEnv, a JSON
// array or (name ending in .jsonl) JSON Lines, read as a Go program would
// (a JSON array whole, JSON Lines a line at a time, each task submitted as
// it is read), results gathered in the file's order; on stderr at the end
// {"tasks": n, "ok": n}.
func apiChild() int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "apicmd child:", err)
		return 1
	}
	name := os.Getenv(apiFileEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := poold.New(ctx, poold.WithWorkers(2))
	if err != nil {
		return fail(err)
	}
	defer p.Terminate()
	type pending struct {
		id   string
		want int64
		a    *poold.AsyncResult[poold.Raw]
	}
	var todo []pending
	submit := func(e echoEntry) error {
		if e.Func != "echo" {
			return fmt.Errorf("only echo tasks, not %q", e.Func)
		}
		a, err := p.ApplyAsync(e.Func, e.Args)
		todo = append(todo, pending{e.ID, e.Args.Value, a})
		return err
	}
	f, err := os.Open(name)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	if strings.HasSuffix(name, ".jsonl") {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var e echoEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				return fail(fmt.Errorf("%s: %v", filepath.Base(name), err))
			}
			if err := submit(e); err != nil {
				return fail(err)
			}
		}
		if err := sc.Err(); err != nil {
			return fail(err)
		}
	} else {
		b, err := io.ReadAll(f)
		if err != nil {
			return fail(err)
		}
		var es []echoEntry
		if err := json.Unmarshal(b, &es); err != nil {
			return fail(fmt.Errorf("%s: %v", filepath.Base(name), err))
		}
		for _, e := range es {
			if err := submit(e); err != nil {
				return fail(err)
			}
		}
	}
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	enc := json.NewEncoder(w)
	ok := 0
	for _, t := range todo {
		r, err := t.a.Get(ctx)
		if err != nil {
			return fail(fmt.Errorf("task %s: %w", t.id, err))
		}
		var v int64
		if err := r.Value.Decode(&v); err != nil {
			return fail(fmt.Errorf("task %s: %w", t.id, err))
		}
		if v == t.want {
			ok++
		}
		if err := enc.Encode(echoLine{ID: t.id, OK: true, Result: v, PID: r.PID}); err != nil {
			return fail(err)
		}
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	fmt.Fprintf(os.Stderr, "{\"tasks\": %d, \"ok\": %d}\n", len(todo), ok)
	return 0
}

// tasksOK checks the {"tasks": n, "ok": n} line a run of the apicmd child
// or of cmd_pool.py ends its stderr with, or the summary line of `poold
// --json` ({"summary": {"tasks": n, "ok": n, ...}}): n tasks, all ok.
func tasksOK(who, stderr string, n int) error {
	var rep struct {
		Tasks   *int `json:"tasks"`
		OK      int  `json:"ok"`
		Summary *struct {
			Tasks int `json:"tasks"`
			OK    int `json:"ok"`
		} `json:"summary"`
	}
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		l = strings.TrimSpace(l)
		if !strings.HasPrefix(l, "{") || json.Unmarshal([]byte(l), &rep) != nil {
			continue
		}
		if rep.Summary != nil {
			rep.Tasks, rep.OK = &rep.Summary.Tasks, rep.Summary.OK
		}
	}
	switch {
	case rep.Tasks == nil:
		return fmt.Errorf("%s: no count of its tasks on stderr: %s", who, lastLine(stderr))
	case *rep.Tasks != n || rep.OK != n:
		return fmt.Errorf("%s: %d tasks, %d ok; want %d", who, *rep.Tasks, rep.OK, n)
	}
	return nil
}

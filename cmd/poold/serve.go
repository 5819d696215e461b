package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// `poold serve`: poold as a co-process. Tasks come as JSON Lines on
// standard input, one task-file entry a line; results go to standard
// output as --json lines as they finish, for as long as stdin stays open.
// A line may instead be a control line:
//
//	{"control": "cancel", "id": "ID"}   cancel the task (or map entry) ID in flight
//	{"control": "stats"}                print the counters so far
//
// each answered by one line on stdout that has "control" too. A bad line
// is a bad_task result, never the end of the server; EOF drains what runs
// and exits 0; SIGTERM terminates, as it does the command.

// controlLine is a parsed control line.
type controlLine struct {
	Op string // "cancel" or "stats"
	ID string // cancel's task id
}

// controlReply is the line that answers a control line.
type controlReply struct {
	Control   string      `json:"control"`
	ID        string      `json:"id,omitempty"`
	Cancelled *bool       `json:"cancelled,omitempty"` // cancel: whether a task of that id was in flight
	Stats     *serveStats `json:"stats,omitempty"`
	Error     string      `json:"error,omitempty"`
}

// serveStats are the counters of a server so far.
type serveStats struct {
	Received       int `json:"received"` // task lines read (bad ones included), control lines not
	OK             int `json:"ok"`
	Failed         int `json:"failed"`
	InFlight       int `json:"in_flight"` // results submitted and not yet printed
	Workers        int `json:"workers"`
	WorkersStarted int `json:"workers_started"`
	WorkersLost    int `json:"workers_lost"`
}

const serveUsage = `usage: poold serve [flags]

Runs poold as a co-process: reads tasks as JSON Lines on standard input (the
task-file entry format, one a line, each with an "id"), and writes each
result to standard output as a --json line as it finishes, for as long as
standard input stays open. A line may instead be a control line, answered
by one line with "control" in it:

  {"control": "cancel", "id": "ID"}   cancel the task ID in flight (its result: kind canceled)
  {"control": "stats"}                the counters so far

A line that is wrong is a result of kind bad_task, and the server goes on.
At the end of standard input it finishes what runs and exits 0; SIGTERM or
SIGINT terminates what runs (143, 130). Every flag of poold works (-n,
--mode, --timeout, --retries, --worker-cmd, --ssh, ...); --window bounds
the tasks in flight (default 64 × -n), and so the server's memory.
`

// serveCommand is `poold serve [flags]`.
func serveCommand(start time.Time, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fmt.Fprint(stdout, serveUsage)
			fmt.Fprint(stdout, "\nFlags: those of poold (poold -h).\n")
			return exitOK
		}
	}
	cfg, err := parseFlags(append(append([]string(nil), args...), "--", "-"), io.Discard)
	if err != nil && strings.Contains(err.Error(), "one task file expected") {
		err = usagef("serve reads its tasks from standard input: it takes no task file")
	}
	if code, done := preamble(cfg, err, "poold serve -h", stdout, stderr); done {
		return code
	}
	cfg.serve, cfg.json, cfg.jsonl = true, true, true
	j := openServe(cfg, stdin)
	return checkAndExecute(cfg, j, start, stdout, stderr)
}

// openServe is openStream for a server: standard input, control lines
// recognised. Not through openLines: its first read, which makes an input
// that cannot be read an error before anything starts, would wait for the
// client's first line, and until then the limits would go unchecked and
// SIGTERM would kill poold instead of ending it (143). An unreadable stdin
// is then a read error, status 1.
func openServe(cfg *config, stdin io.Reader) *job {
	src := streamSource(newLineReader(stdin, maxLineLen), nil, knownNames(cfg), controlEntry)
	return &job{src: src, stream: "stdin", window: streamWindow(cfg)}
}

// controlEntry is the entry of a control line, nil for any other line.
func controlEntry(lineNo int, line []byte) *Entry {
	if c, isControl, msg := parseControl(line); isControl {
		return &Entry{Pos: -1, Line: lineNo, Control: c, Bad: msg}
	}
	return nil
}

// parseControl reads line as a control line, if it is one: an object with
// a "control" key. msg says what is wrong with a control line that is.
func parseControl(line []byte) (c *controlLine, isControl bool, msg string) {
	if !bytes.Contains(line, []byte(`"control"`)) {
		return nil, false, "" // the common case, without a second parse
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(line, &fields) != nil {
		return nil, false, ""
	}
	op, ok := fields["control"]
	if !ok {
		return nil, false, "" // "control" was in a value: a task
	}
	c = &controlLine{}
	if json.Unmarshal(op, &c.Op) != nil || (c.Op != "cancel" && c.Op != "stats") {
		return c, true, fmt.Sprintf(`"control" must be "cancel" or "stats", not %s`, op)
	}
	for k, v := range fields {
		switch {
		case k == "control":
		case k == "id" && c.Op == "cancel":
			if json.Unmarshal(v, &c.ID) != nil || c.ID == "" {
				return c, true, fmt.Sprintf(`"id" must be a non-empty string, not %s`, v)
			}
		default:
			return c, true, fmt.Sprintf("a %s control line has no field %q", c.Op, k)
		}
	}
	if c.Op == "cancel" && c.ID == "" {
		return c, true, `a cancel control line needs the "id" of the task to cancel`
	}
	return c, true, ""
}

// control answers a control line on the results' output.
func (r *runner) control(e *Entry) {
	c := e.Control
	reply := controlReply{Control: c.Op, ID: c.ID}
	switch {
	case e.Bad != "":
		reply.Error = fmt.Sprintf("line %d: %s", e.Line, e.Bad)
	case c.Op == "cancel":
		found := false
		for _, f := range r.flights {
			if f.e.ID != c.ID {
				continue
			}
			found = true
			if f.apply != nil {
				f.apply.Cancel()
			} else {
				f.m.Cancel()
			}
		}
		reply.Cancelled = &found
	case c.Op == "stats":
		s := &serveStats{Received: r.received, OK: r.ok, Failed: r.failed, InFlight: r.pending, Workers: r.cfg.workers}
		if r.pool != nil {
			st := r.pool.Stats()
			s.WorkersStarted, s.WorkersLost = st.WorkersStarted, st.WorkersLost
		}
		reply.Stats = s
	}
	b, _ := json.Marshal(reply)
	r.out.Write(append(b, '\n'))
}

// servedOK is a server's exit status for a run that read its input to the
// end: its tasks' failures are results, not the server's.
func servedOK(cfg *config, readErr error) bool { return cfg.serve && readErr == nil }

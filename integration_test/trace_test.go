package integration_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// traceEvent is one event of a --trace file, its fields as decoded.
type traceEvent struct {
	Name string          `json:"name"`
	Cat  string          `json:"cat"`
	Ph   string          `json:"ph"`
	S    string          `json:"s"`
	TS   *float64        `json:"ts"`
	Dur  *float64        `json:"dur"`
	PID  *float64        `json:"pid"`
	TID  *float64        `json:"tid"`
	Args map[string]any  `json:"args"`
	Raw  json.RawMessage `json:"-"`
}

// loadTrace reads a trace file leniently, as Perfetto does: a missing
// closing "]}" is added, a trailing comma dropped. strict: the file must
// be closed.
func loadTrace(t *testing.T, path string, strict bool) []traceEvent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const opening = `{"displayTimeUnit":"ms","traceEvents":[` + "\n"
	if !bytes.HasPrefix(b, []byte(opening)) {
		t.Fatalf("trace starts %q, want %q", b[:min(len(b), 60)], opening)
	}
	s := strings.TrimSpace(string(b))
	if !strings.HasSuffix(s, "]}") {
		if strict {
			t.Fatalf("trace not closed: ends %q", s[max(0, len(s)-80):])
		}
		// A kill may cut the last line short (a buffer flushed when full):
		// drop it unless it is a whole event.
		if i := strings.LastIndex(s, "\n"); i > 0 && !json.Valid([]byte(strings.TrimSuffix(s[i+1:], ","))) {
			s = s[:i]
		}
		s = strings.TrimSuffix(strings.TrimSpace(s), ",") + "]}"
	}
	var doc struct {
		DisplayTimeUnit string            `json:"displayTimeUnit"`
		TraceEvents     []json.RawMessage `json:"traceEvents"`
	}
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatalf("trace does not parse: %v", err)
	}
	if doc.DisplayTimeUnit != "ms" {
		t.Errorf("displayTimeUnit %q", doc.DisplayTimeUnit)
	}
	evs := make([]traceEvent, len(doc.TraceEvents))
	for i, raw := range doc.TraceEvents {
		if err := json.Unmarshal(raw, &evs[i]); err != nil {
			t.Fatalf("event %s: %v", raw, err)
		}
		evs[i].Raw = raw
	}
	return evs
}

// is32 reports whether v is an integer that fits in 32 bits.
func is32(v *float64) bool {
	return v != nil && *v == math.Trunc(*v) && *v >= 0 && *v <= math.MaxInt32
}

// checkTraceEvents checks the fields of every event, that no two task
// runs overlap on one track, and that every track is named; it returns the
// task runs by name.
func checkTraceEvents(t *testing.T, evs []traceEvent) (runs map[string][]traceEvent, deaths []traceEvent) {
	t.Helper()
	runs = map[string][]traceEvent{}
	type track struct{ pid, tid float64 }
	named := map[track]bool{}
	byTrack := map[track][]traceEvent{}
	for _, e := range evs {
		if e.Name == "" || !is32(e.PID) || !is32(e.TID) || e.Args == nil {
			t.Errorf("event without a name, 32-bit pid and tid, or args: %s", e.Raw)
			continue
		}
		tr := track{*e.PID, *e.TID}
		switch e.Ph {
		case "M":
			if e.Name == "thread_name" {
				named[tr] = true
			}
			if _, ok := e.Args["name"].(string); !ok {
				t.Errorf("metadata without a name: %s", e.Raw)
			}
		case "X":
			if e.TS == nil || e.Dur == nil || *e.Dur < 0 || *e.TS < 0 || e.Cat != "task" {
				t.Errorf("complete event without ts, dur: %s", e.Raw)
				continue
			}
			if _, ok := e.Args["func"].(string); !ok {
				t.Errorf("run without args.func: %s", e.Raw)
			}
			for _, k := range []string{"attempts", "pid", "slot"} {
				if _, ok := e.Args[k].(float64); !ok {
					t.Errorf("run without a number args.%s: %s", k, e.Raw)
				}
			}
			if k, ok := e.Args["kind"]; ok {
				if _, ok := k.(string); !ok {
					t.Errorf("run with a kind that is no string: %s", e.Raw)
				}
			}
			runs[e.Name] = append(runs[e.Name], e)
			byTrack[tr] = append(byTrack[tr], e)
		case "i":
			if e.TS == nil || e.S != "t" || e.Cat != "worker" {
				t.Errorf("instant event without ts or thread scope: %s", e.Raw)
				continue
			}
			if _, ok := e.Args["slot"].(float64); !ok {
				t.Errorf("instant without args.slot: %s", e.Raw)
			}
			switch e.Name {
			case "worker died", "worker exited":
				if r, _ := e.Args["reason"].(string); r == "" {
					t.Errorf("worker end without a reason: %s", e.Raw)
				}
				if e.Name == "worker died" {
					deaths = append(deaths, e)
				}
			case "worker started", "worker replaced":
			default:
				t.Errorf("unknown instant event: %s", e.Raw)
			}
		default:
			t.Errorf("unexpected phase %q: %s", e.Ph, e.Raw)
		}
	}
	for tr, xs := range byTrack {
		if !named[tr] {
			t.Errorf("track %v has no thread_name", tr)
		}
		sort.Slice(xs, func(i, j int) bool { return *xs[i].TS < *xs[j].TS })
		for i := 1; i < len(xs); i++ {
			// ts and dur are rounded to the nanosecond: allow that.
			if end := *xs[i-1].TS + *xs[i-1].Dur; *xs[i].TS < end-0.002 {
				t.Errorf("runs overlap on track %v:\n%s\n%s", tr, xs[i-1].Raw, xs[i].Raw)
			}
		}
	}
	return runs, deaths
}

// TestTraceCrashes traces a run with crashes, retries and recycled
// workers, and checks the trace against the results.
func TestTraceCrashes(t *testing.T) {
	t.Parallel()
	var tasks []task
	for i := range 6 {
		tasks = append(tasks, echoTask(fmt.Sprintf("e%d", i), i))
	}
	crashes := []crashCase{
		{mode: "exit", code: 3}, {mode: "kill"}, {mode: "segfault"},
	}
	for _, c := range crashes {
		tasks = append(tasks, c.task("crash-"+c.mode))
	}
	tasks = append(tasks, task{ID: "m", Map: "echo", Args: []any{echoArgs(1), echoArgs(2), echoArgs(3)}})
	file := writeTasks(t, tasks)
	path := filepath.Join(t.TempDir(), "trace.json")
	r := runPoold(t, runOpts{}, "--json", "-n", "2", "--retries", "1", "--max-tasks-per-worker", "2", "--trace", path, file)
	if r.Code != 1 {
		t.Fatalf("exit status %d, want 1; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	evs := loadTrace(t, path, true)
	runs, deaths := checkTraceEvents(t, evs)
	if len(recs) != 6+len(crashes)+3 {
		t.Fatalf("%d results", len(recs))
	}
	for id, rec := range recs {
		xs := runs[id]
		if len(xs) != rec.Attempts {
			t.Errorf("%s: %d runs in the trace, %d attempts in its result", id, len(xs), rec.Attempts)
			continue
		}
		seen := map[float64]bool{}
		for _, x := range xs {
			a := x.Args["attempts"].(float64)
			if seen[a] || a < 1 || a > float64(rec.Attempts) {
				t.Errorf("%s: run of attempt %v: %s", id, a, x.Raw)
			}
			seen[a] = true
			if x.Args["func"] != rec.Func {
				t.Errorf("%s: func %v, want %s", id, x.Args["func"], rec.Func)
			}
		}
		last := xs[len(xs)-1]
		for _, x := range xs {
			if x.Args["attempts"].(float64) == float64(rec.Attempts) {
				last = x
			}
		}
		if rec.ok() != (last.Args["kind"] == nil) || (!rec.ok() && last.Args["kind"] != rec.Error.Kind) {
			t.Errorf("%s: last run's kind %v, result %+v", id, last.Args["kind"], rec.Error)
		}
		if int(last.Args["pid"].(float64)) != rec.PID || int(*last.TID) != rec.PID {
			t.Errorf("%s: last run's pid %v (tid %v), the result's %d", id, last.Args["pid"], *last.TID, rec.PID)
		}
		// A run the worker reported says its CPU time and the worker's peak
		// memory, as the result does.
		if rec.ok() {
			if m, _ := last.Args["max_rss"].(float64); rec.MaxRSS == nil || m != float64(*rec.MaxRSS) {
				t.Errorf("%s: last run's max_rss %v, the result's %v", id, last.Args["max_rss"], rec.MaxRSS)
			}
			if _, ok := last.Args["cpu_ms"].(float64); !ok {
				t.Errorf("%s: last run has no cpu_ms: %v", id, last.Args)
			}
		}
	}
	for _, c := range crashes {
		if n := len(runs["crash-"+c.mode]); n != 2 {
			t.Errorf("crash-%s: %d runs, want 2 (--retries 1)", c.mode, n)
		}
	}
	// Each crash run took its worker down.
	if len(deaths) < 2*len(crashes) {
		t.Errorf("%d worker deaths in the trace, want at least %d", len(deaths), 2*len(crashes))
	}
	// A death with tasks left (a first attempt's, at least: its retry is
	// left) is followed by a replacement in its slot, as is a worker
	// retired after 2 tasks.
	replaced := 0
	for _, e := range evs {
		if e.Name == "worker replaced" {
			if r, ok := e.Args["replaces"].(float64); !ok || !is32(&r) || r == *e.TID {
				t.Errorf("replacement without the pid it replaces: %s", e.Raw)
			}
			replaced++
		}
	}
	if replaced < len(crashes) {
		t.Errorf("%d replacements, want at least %d", replaced, len(crashes))
	}
	died := map[float64]bool{}
	for _, d := range deaths {
		died[*d.TID] = true
	}
	for _, c := range crashes {
		for _, x := range runs["crash-"+c.mode] {
			if !died[*x.TID] {
				t.Errorf("crash-%s ran on pid %v, which has no death event", c.mode, *x.TID)
			}
		}
	}
}

// TestTraceThreads: in threads mode the tracks are the slots, tid slot+1.
func TestTraceThreads(t *testing.T) {
	t.Parallel()
	var tasks []task
	for i := range 20 {
		tasks = append(tasks, echoTask(fmt.Sprintf("e%d", i), i))
	}
	path := filepath.Join(t.TempDir(), "trace.json")
	r := runPoold(t, runOpts{}, "--json", "--mode", "threads", "-n", "3", "--trace", path, writeTasks(t, tasks))
	if r.Code != 0 {
		t.Fatalf("exit status %d; stderr:\n%s", r.Code, r.Stderr)
	}
	recs := parseRecords(t, r.Stdout)
	runs, _ := checkTraceEvents(t, loadTrace(t, path, true))
	for id := range recs {
		xs := runs[id]
		if len(xs) != 1 {
			t.Errorf("%s: %d runs", id, len(xs))
			continue
		}
		if slot := xs[0].Args["slot"].(float64); *xs[0].TID != slot+1 || slot < 0 || slot >= 3 {
			t.Errorf("%s: tid %v, slot %v: want tid slot+1", id, *xs[0].TID, slot)
		}
	}
}

// TestTraceKilled: a run SIGKILLed halfway leaves a trace that a lenient
// loader reads, with the runs of the tasks that had finished.
func TestTraceKilled(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := range 200 {
		fmt.Fprintf(&b, `{"id":"s%d","func":"sleep","args":{"seconds":0.01}}`+"\n", i)
	}
	file := writeFile(t, "tasks.jsonl", b.String())
	path := filepath.Join(t.TempDir(), "trace.json")
	c := startPoold(t, runOpts{}, "--json", "-n", "2", "--trace", path, file)
	var done []string
	deadline := time.After(30 * time.Second)
	for len(done) < 40 {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("poold ended early: %s", c.stderr)
			}
			var rec record
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatal(err)
			}
			done = append(done, rec.ID)
		case <-deadline:
			t.Fatal("no 40 results in 30 s")
		}
	}
	// The trace is flushed every 100 ms: give the last results that time.
	time.Sleep(300 * time.Millisecond)
	c.cmd.Process.Signal(syscall.SIGKILL)
	r := c.wait(t)
	if r.Code != 128+9 {
		t.Fatalf("status %d after SIGKILL", r.Code)
	}
	if b, err := os.ReadFile(path); err != nil || strings.HasSuffix(strings.TrimSpace(string(b)), "]}") {
		t.Fatalf("the trace of a killed run is closed, or unreadable (%v)", err)
	}
	runs, _ := checkTraceEvents(t, loadTrace(t, path, false))
	for _, id := range done {
		if len(runs[id]) != 1 {
			t.Errorf("%s finished before the kill, and has %d runs in the trace", id, len(runs[id]))
		}
	}
}

// TestTraceMillion: a million-task stream traced in bounded memory. It
// takes about 30 s (poold is not built with -race), so it runs with
// -short too.
func TestTraceMillion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "tasks.jsonl")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	for i := range 1_000_000 {
		b = fmt.Appendf(b[:0], `{"func":"echo","args":{"value":%d}}`+"\n", i)
		f.Write(b)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "trace.json")
	usage, _, _ := runWithUsage(t, "-n", "2", "-q", "--no-progress", "--trace", path, file)
	peak := usage["peak_bytes"]
	if peak == 0 {
		peak = usage["maxrss_bytes"]
	}
	t.Logf("peak %.1f MiB", peak/(1<<20))
	if peak <= 0 || peak > 64<<20 {
		t.Errorf("peak %.1f MiB, want under 64 MiB", peak/(1<<20))
	}
	// Every task is one run in the trace, and the file is closed.
	tf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	dec := json.NewDecoder(tf)
	var doc struct {
		TraceEvents []struct {
			Ph string `json:"ph"`
		} `json:"traceEvents"`
	}
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("trace: %v", err)
	}
	n := 0
	for _, e := range doc.TraceEvents {
		if e.Ph == "X" {
			n++
		}
	}
	if n != 1_000_000 {
		t.Errorf("%d runs in the trace, want 1000000", n)
	}
}

// --timeline writes a page drawn from the run's trace, with or without
// --trace; the temporary trace does not stay behind.
func TestTimelineFlag(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	page := filepath.Join(dir, "run.html")
	tmp := t.TempDir()
	r := runPoold(t, runOpts{env: []string{"TMPDIR=" + tmp}}, "-n", "2", "-q", "--timeline", page, filepath.Join(rootDir, "examples", "crash.json"))
	if r.Code != 1 { // the file's crash tasks fail
		t.Fatalf("exit status %d; stderr:\n%s", r.Code, r.Stderr)
	}
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<canvas", `id="timeline-data"`, "worker_lost", `"panic"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the page has no %q", want)
		}
	}
	if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") {
		t.Errorf("the page refers to the network")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left behind in TMPDIR: %v", left)
	}
	r = runPoold(t, runOpts{}, "--timeline", filepath.Join(dir, "no", "such", "dir.html"), filepath.Join(rootDir, "examples", "seed.json"))
	if r.Code != 2 || !strings.Contains(r.Stderr, "--timeline") {
		t.Errorf("an unwritable page: exit %d, stderr %q; want 2 naming --timeline", r.Code, r.Stderr)
	}
}

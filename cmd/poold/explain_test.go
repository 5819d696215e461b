package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/poold/poold"
)

var ex0 = time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)

// ran is a result of func f on worker slot w (pid pid) from a to b seconds
// after ex0, with cpu of CPU time (negative: unknown).
func ran(pid, w int, a, b float64, cpu time.Duration) poold.Result[poold.Raw] {
	at := func(s float64) time.Time { return ex0.Add(time.Duration(s * float64(time.Second))) }
	return poold.Result[poold.Raw]{Func: "f", PID: pid, Worker: w, Start: at(a), End: at(b), CPU: cpu}
}

// TestExplainKnownRun: five tasks on four slots, the fifth after the first
// on slot 0, in a wall time of 4 s: slot 0 is busy all of it, the others
// half; the longest three are named longest first; the CPU verdict is
// drawn from the tasks' CPU time over their duration.
func TestExplainKnownRun(t *testing.T) {
	st := newRunStats()
	st.add("a", ran(100, 0, 0, 2, 10*time.Millisecond))
	st.add("b", ran(101, 1, 0, 2, 10*time.Millisecond))
	st.add("c", ran(102, 2, 0, 1.9, 10*time.Millisecond))
	st.add("d", ran(103, 3, 0, 1.8, 10*time.Millisecond))
	st.add("e", ran(100, 0, 2, 4, 10*time.Millisecond))
	st.add("never", poold.Result[poold.Raw]{Func: "f", CPU: -1, Err: &poold.TaskError{Kind: poold.KindBadTask}})

	wall := 4 * time.Second
	var shares []string
	for _, sh := range st.shares(wall) {
		shares = append(shares, fmt.Sprintf("%d:%d:%d:%.3f", sh.Slot, sh.PID, sh.Tasks, sh.Share))
	}
	if got, want := strings.Join(shares, " "), "0:100:2:1.000 1:101:1:0.500 2:102:1:0.475 3:103:1:0.450"; got != want {
		t.Errorf("shares (slot:pid:tasks:share) %s, want %s", got, want)
	}
	var b bytes.Buffer
	writeExplain(&b, st, wall)
	want := "busy (task time ÷ wall time): pid 100 100 %, pid 101 50 %, pid 102 48 %, pid 103 45 %\n" +
		"longest: a f 2s (pid 100), b f 2s (pid 101), e f 2s (pid 100)\n" +
		"CPU: 50ms of CPU in 9.70s of task time (1 %): waiting (sleeping, on I/O or on other programs)\n"
	if b.String() != want {
		t.Errorf("explained as\n%s\nwant\n%s", b.String(), want)
	}
}

// TestExplainLongest: the top list keeps the longest, longest first, and
// no more than longestN, whatever the order the results come in.
func TestExplainLongest(t *testing.T) {
	st := newRunStats()
	for i, d := range []float64{3, 1, 4, 1, 5, 9, 2, 6, 5, 3} {
		st.add(fmt.Sprint(i), ran(100, 0, 0, d, -1))
	}
	var got []string
	for _, lt := range st.longest {
		got = append(got, fmt.Sprintf("%s:%v", lt.ID, lt.D))
	}
	if s := strings.Join(got, " "); s != "5:9s 7:6s 4:5s" {
		t.Errorf("longest %s, want 5:9s 7:6s 4:5s", s)
	}
	if st.noCPU != 10 || st.cpuWall != 0 {
		t.Errorf("%d tasks without CPU time and %v of task time with it, want 10 and 0", st.noCPU, st.cpuWall)
	}
	if _, _, ok := st.cpuShare(); ok {
		t.Error("a CPU share with no CPU time known")
	}
}

// TestExplainRestarts: a new pid on a slot is a restart, and the time from
// the slot's last task end to the new worker's first task start is lost; a
// late result of the old worker (a map item's failure, reported when the
// map is done) is not a restart.
func TestExplainRestarts(t *testing.T) {
	st := newRunStats()
	st.add("a", ran(100, 0, 0, 1, 0))
	st.add("b", ran(200, 1, 0, 1, 0))
	// The worker of slot 0 dies under its task at 2 s: no start, an end.
	lost := poold.Result[poold.Raw]{Func: "f", PID: 100, Worker: 0, End: ex0.Add(2 * time.Second), CPU: -1,
		Err: &poold.TaskError{Kind: poold.KindWorkerLost}}
	st.add("c", lost)
	st.add("d", ran(101, 0, 2.5, 3, 0))
	st.add("late", ran(100, 0, 0.5, 0.9, 0))
	// Slot 1's worker dies under its first task, whose start is unknown:
	// its replacement is counted, and the time to that death is lost.
	st.add("e", poold.Result[poold.Raw]{Func: "f", PID: 201, Worker: 1, End: ex0.Add(1500 * time.Millisecond), CPU: -1,
		Err: &poold.TaskError{Kind: poold.KindWorkerLost}})
	if st.restarts != 2 || st.lost != time.Second {
		t.Errorf("%d restarts, %v lost; want 2 and 1s (0.5 s on each slot)", st.restarts, st.lost)
	}
	var b bytes.Buffer
	writeExplain(&b, st, 4*time.Second)
	if want := "restarts: 2 workers replaced, 1s lost (on each slot, a worker's last task end to its replacement's first task start)\n"; !strings.Contains(b.String(), want) {
		t.Errorf("no line %q in\n%s", want, b.String())
	}
	// Slots are named by number once a slot had two workers.
	if !strings.HasPrefix(b.String(), "busy (task time ÷ wall time): slot 0 ") {
		t.Errorf("busy line not by slot:\n%s", b.String())
	}
}

// TestExplainVerdict: compare's classes and thresholds, and no verdict on
// too little task time.
func TestExplainVerdict(t *testing.T) {
	for _, c := range []struct {
		cpu, wall time.Duration
		want      string
	}{
		{500 * time.Millisecond, time.Second, "cpu-bound"},
		{499 * time.Millisecond, time.Second, "mixed"},
		{200 * time.Millisecond, time.Second, "mixed"},
		{199 * time.Millisecond, time.Second, "waiting"},
		{10 * time.Millisecond, 10 * time.Millisecond, ""}, // under cpuNoiseFloor
	} {
		st := &runStats{cpu: c.cpu, cpuWall: c.wall}
		if _, work, ok := st.cpuShare(); !ok || work != c.want {
			t.Errorf("%v of CPU in %v: %q (%v), want %q", c.cpu, c.wall, work, ok, c.want)
		}
	}
}

// TestExplainCompact: from 9 workers, the busy shares are summed up.
func TestExplainCompact(t *testing.T) {
	st := newRunStats()
	for w := range 10 {
		st.add(fmt.Sprint(w), ran(100+w, w, 0, float64(w+1)/10, 0))
	}
	var b bytes.Buffer
	writeExplain(&b, st, time.Second)
	want := "busy (task time ÷ wall time) of 10 workers: min 10 % (pid 100), median 55 %, max 100 % (pid 109); 4 under 50 %\n"
	if line, _, _ := strings.Cut(b.String(), "\n"); line+"\n" != want {
		t.Errorf("busy line %q, want %q", line, want)
	}
}

// TestExplainBounded: a long run keeps one record per slot and longestN
// tasks, nothing per task.
func TestExplainBounded(t *testing.T) {
	st := newRunStats()
	for i := range 200000 {
		s := float64(i/4) / 1000
		st.add(fmt.Sprint(i), ran(100+i%4, i%4, s, s+0.001, 100*time.Microsecond))
	}
	if len(st.slots) != 4 || len(st.longest) != longestN || cap(st.longest) > 2*longestN {
		t.Errorf("%d slots, %d longest (cap %d); want 4 and %d", len(st.slots), len(st.longest), cap(st.longest), longestN)
	}
	if st.restarts != 0 {
		t.Errorf("%d restarts, want 0", st.restarts)
	}
}

// TestJSONSummary: the final --json line on stderr.
func TestJSONSummary(t *testing.T) {
	st := newRunStats()
	st.add("a", ran(100, 0, 0, 2, time.Second))
	st.add("b", ran(101, 1, 0, 1, -1))
	var log bytes.Buffer
	r := newJSONReporter(&bytes.Buffer{}, &log)
	r.Summary(summary{Tasks: 2, OK: 2, PIDs: 2, WorkersStarted: 2, Wall: 4 * time.Second, Stats: st})
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	var got struct {
		Summary jsonSummary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil {
		t.Fatalf("last stderr line: %v\n%s", err, log.String())
	}
	s := got.Summary
	if s.Tasks != 2 || s.WallMS != 4000 || len(s.Workers) != 2 || s.Workers[0].Busy != 0.5 || s.Workers[1].BusyMS != 1000 ||
		len(s.Longest) != 2 || s.Longest[0].ID != "a" || s.CPU.Share == nil || *s.CPU.Share != 0.5 || s.CPU.Verdict != "cpu-bound" || s.CPU.Unknown != 1 {
		t.Errorf("summary %+v", s)
	}
	if !strings.HasPrefix(lines[0], "2 tasks: 2 ok") || !strings.HasPrefix(lines[1], "busy ") {
		t.Errorf("the text summary does not come first:\n%s", log.String())
	}
}

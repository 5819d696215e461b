package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/poold/poold"
)

// The summary that explains a run: how busy each worker was, the longest
// tasks, the time lost to worker restarts and whether the work computed or
// waited. It is drawn from the results alone, as they come, in memory
// bounded by the number of worker slots: per-slot sums and the few longest
// tasks, nothing per task.

// longestN is how many of the longest tasks the summary names.
const longestN = 3

// compactBusyFrom is the number of workers from which the busy shares are
// summed up (min, median, max) rather than listed.
const compactBusyFrom = 9

// lowBusy is the busy share under which the compact form counts a worker
// as underused.
const lowBusy = 0.5

// runStats accumulates what the summary explains.
type runStats struct {
	slots    map[int]*slotStats // by Result.Worker
	longest  []longTask         // at most longestN, longest first
	cpu      time.Duration      // the CPU time of the tasks whose CPU time is known
	cpuWall  time.Duration      // the duration of those tasks
	noCPU    int                // tasks that ran and whose CPU time is unknown
	restarts int                // a new worker pid on a slot
	lost     time.Duration      // time on slots between a worker's last task and its replacement's first
}

// slotStats is one worker slot: the workers that held it in turn.
type slotStats struct {
	host    string    // where it runs: "" for this machine
	pid     int       // the slot's current worker
	first   time.Time // when the current worker's first task began
	pids    int       // the workers that held the slot
	tasks   int       // task results that ran on the slot
	busy    time.Duration
	lastEnd time.Time // the latest end of a task on the slot
}

// longTask is one of the longest tasks.
type longTask struct {
	ID, Func    string
	Host        string
	PID, Worker int
	D           time.Duration
	Kind        poold.Kind // "" for a success
}

func newRunStats() *runStats { return &runStats{slots: make(map[int]*slotStats)} }

// add takes one reported result. Results of tasks that no worker ran (PID
// 0) count for nothing here.
func (st *runStats) add(id string, res poold.Result[poold.Raw]) {
	if res.PID == 0 {
		return
	}
	d := duration(res)
	// When the task began; for a worker that died under it the start is
	// unknown, and its end (when the death was seen) stands in.
	at := res.Start
	if at.IsZero() {
		at = res.End
	}
	s := st.slots[res.Worker]
	switch {
	case s == nil:
		s = &slotStats{host: res.Host, pid: res.PID, first: at, pids: 1}
		st.slots[res.Worker] = s
	case res.PID != s.pid && (at.IsZero() || !at.Before(s.first)):
		// A new worker on the slot (a result of an older one that comes
		// late, such as a map item's failure, began before it).
		st.restarts++
		s.pids++
		if !at.IsZero() && !s.lastEnd.IsZero() && at.After(s.lastEnd) {
			st.lost += at.Sub(s.lastEnd)
		}
		s.pid, s.first = res.PID, at
	}
	s.tasks++
	s.busy += d
	if res.End.After(s.lastEnd) {
		s.lastEnd = res.End
	}

	if res.CPU >= 0 && d > 0 {
		st.cpu += res.CPU
		st.cpuWall += d
	} else if res.CPU < 0 && d > 0 {
		st.noCPU++
	}

	if d > 0 && (len(st.longest) < longestN || d > st.longest[len(st.longest)-1].D) {
		lt := longTask{ID: id, Func: res.Func, Host: res.Host, PID: res.PID, Worker: res.Worker, D: d}
		if res.Err != nil {
			lt.Kind = errorKind(res.Err)
		}
		// After the tasks as long: of equals, the first reported stays.
		i := len(st.longest)
		for i > 0 && st.longest[i-1].D < d {
			i--
		}
		st.longest = slices.Insert(st.longest, i, lt)
		if len(st.longest) > longestN {
			st.longest = st.longest[:longestN]
		}
	}
}

// slotShare is one slot's busy share of the wall time.
type slotShare struct {
	Host                   string
	Slot, PID, PIDs, Tasks int
	Busy                   time.Duration
	Share                  float64
}

// shares are the slots that ran tasks, by slot, with their busy share of
// wall.
func (st *runStats) shares(wall time.Duration) []slotShare {
	out := make([]slotShare, 0, len(st.slots))
	for slot, s := range st.slots {
		sh := slotShare{Host: s.host, Slot: slot, PID: s.pid, PIDs: s.pids, Tasks: s.tasks, Busy: s.busy}
		if wall > 0 {
			sh.Share = float64(s.busy) / float64(wall)
		}
		out = append(out, sh)
	}
	slices.SortFunc(out, func(a, b slotShare) int { return cmp.Compare(a.Slot, b.Slot) })
	return out
}

// cpuShare is the tasks' CPU time ÷ their duration, and its verdict
// (compare's classes and thresholds); ok false when no task with a known
// CPU time took any time. Under cpuNoiseFloor of task time, where the
// clock's accounting is too coarse to judge, the verdict is "".
func (st *runStats) cpuShare() (share float64, work string, ok bool) {
	if st.cpuWall <= 0 {
		return 0, "", false
	}
	share = float64(st.cpu) / float64(st.cpuWall)
	if st.cpuWall >= cpuNoiseFloor {
		work = workClass(share)
	}
	return share, work, true
}

// writeExplain writes the summary's explaining lines, after its counts
// line; nothing when no task ran.
func writeExplain(w io.Writer, st *runStats, wall time.Duration) {
	if st == nil || len(st.slots) == 0 {
		return
	}
	shares := st.shares(wall)
	// Slots are named by their worker's pid when each had its own (a pool
	// of processes that lost none); by slot number otherwise (threads,
	// whose workers share this process's pid, or replaced workers).
	byPID := true
	seen := map[workerID]bool{}
	for _, sh := range shares {
		if sh.PIDs > 1 || seen[workerID{sh.Host, sh.PID}] {
			byPID = false
		}
		seen[workerID{sh.Host, sh.PID}] = true
	}
	// on names a worker's host, when it is not this machine.
	on := func(host string) string {
		if host == "" {
			return ""
		}
		return host + " "
	}
	name := func(sh slotShare) string {
		if byPID {
			return fmt.Sprintf("%spid %d", on(sh.Host), sh.PID)
		}
		return fmt.Sprintf("slot %d", sh.Slot)
	}
	pct := func(f float64) string { return fmt.Sprintf("%.0f %%", 100*f) }
	if len(shares) < compactBusyFrom {
		parts := make([]string, len(shares))
		for i, sh := range shares {
			parts[i] = name(sh) + " " + pct(sh.Share)
		}
		fmt.Fprintf(w, "busy (task time ÷ wall time): %s\n", strings.Join(parts, ", "))
	} else {
		sorted := slices.Clone(shares)
		slices.SortStableFunc(sorted, func(a, b slotShare) int { return cmp.Compare(a.Share, b.Share) })
		low := 0
		for _, sh := range sorted {
			if sh.Share < lowBusy {
				low++
			}
		}
		lo, hi := sorted[0], sorted[len(sorted)-1]
		fmt.Fprintf(w, "busy (task time ÷ wall time) of %d workers: min %s (%s), median %s, max %s (%s); %d under %s\n",
			len(sorted), pct(lo.Share), name(lo), pct(median(sorted)), pct(hi.Share), name(hi), low, pct(lowBusy))
	}
	if len(st.longest) > 0 {
		parts := make([]string, len(st.longest))
		for i, t := range st.longest {
			what := fmt.Sprintf("%s %s %s", t.ID, t.Func, formatDuration(t.D))
			if t.Kind != "" {
				what += " " + string(t.Kind)
			}
			if byPID {
				parts[i] = fmt.Sprintf("%s (%spid %d)", what, on(t.Host), t.PID)
			} else {
				parts[i] = fmt.Sprintf("%s (slot %d, %spid %d)", what, t.Worker, on(t.Host), t.PID)
			}
		}
		fmt.Fprintf(w, "longest: %s\n", strings.Join(parts, ", "))
	}
	if st.restarts > 0 {
		fmt.Fprintf(w, "restarts: %s, %s lost (on each slot, a worker's last task end to its replacement's first task start)\n",
			plural(st.restarts, "worker")+" replaced", formatDuration(st.lost))
	}
	if share, work, ok := st.cpuShare(); ok {
		unknown := ""
		if st.noCPU > 0 {
			unknown = fmt.Sprintf("; %s without a CPU time left out", plural(st.noCPU, "task"))
		}
		fmt.Fprintf(w, "CPU: %s of CPU in %s of task time (%s)%s: %s\n",
			fmtDuration(st.cpu), fmtDuration(st.cpuWall), pct(share), unknown, cmp.Or(workWords[work], "too little task time to judge"))
	}
}

// median of shares sorted by share.
func median(sorted []slotShare) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2].Share
	}
	return (sorted[n/2-1].Share + sorted[n/2].Share) / 2
}

// jsonSummary is the final line of --json on stderr: {"summary": {...}}.
type jsonSummary struct {
	Tasks          int            `json:"tasks"`
	OK             int            `json:"ok"`
	Failed         int            `json:"failed"`
	Skipped        int            `json:"skipped"`
	WorkerPIDs     int            `json:"worker_pids"`
	WorkersStarted int            `json:"workers_started"`
	WallMS         float64        `json:"wall_ms"`
	Signal         string         `json:"signal,omitempty"`
	Workers        []jsonBusy     `json:"workers"`
	Longest        []jsonLongTask `json:"longest"`
	Restarts       jsonRestarts   `json:"restarts"`
	CPU            jsonCPU        `json:"cpu"`
}

type jsonBusy struct {
	Slot   int     `json:"slot"`
	Host   string  `json:"host,omitempty"` // where the slot's workers ran, when not here
	PID    int     `json:"pid"`            // the slot's last worker
	PIDs   int     `json:"pids"`
	Tasks  int     `json:"tasks"`
	BusyMS float64 `json:"busy_ms"`
	Busy   float64 `json:"busy"` // busy_ms ÷ wall_ms
}

type jsonLongTask struct {
	ID         string  `json:"id"`
	Func       string  `json:"func"`
	Host       string  `json:"host,omitempty"`
	PID        int     `json:"pid"`
	Slot       int     `json:"slot"`
	DurationMS float64 `json:"duration_ms"`
	Kind       string  `json:"kind,omitempty"` // a failure's kind
}

type jsonRestarts struct {
	Count  int     `json:"count"`
	LostMS float64 `json:"lost_ms"`
}

type jsonCPU struct {
	CPUMS   float64  `json:"cpu_ms"`
	TaskMS  float64  `json:"task_ms"`
	Share   *float64 `json:"share"`   // null when no task with a known CPU time took time
	Verdict string   `json:"verdict"` // "cpu-bound", "mixed", "waiting"; "" with a null share or under 20 ms of task time
	Unknown int      `json:"unknown"` // tasks that ran without a known CPU time, left out
}

func newJSONSummary(s summary) jsonSummary {
	js := jsonSummary{
		Tasks: s.Tasks, OK: s.OK, Failed: s.Failed, Skipped: s.Skipped,
		WorkerPIDs: s.PIDs, WorkersStarted: s.WorkersStarted, WallMS: ms(s.Wall),
		Workers: []jsonBusy{}, Longest: []jsonLongTask{},
	}
	if s.Signal != 0 {
		js.Signal = signalName(s.Signal)
	}
	st := s.Stats
	if st == nil {
		return js
	}
	for _, sh := range st.shares(s.Wall) {
		js.Workers = append(js.Workers, jsonBusy{Slot: sh.Slot, Host: sh.Host, PID: sh.PID, PIDs: sh.PIDs, Tasks: sh.Tasks, BusyMS: ms(sh.Busy), Busy: sh.Share})
	}
	for _, t := range st.longest {
		js.Longest = append(js.Longest, jsonLongTask{ID: t.ID, Func: t.Func, Host: t.Host, PID: t.PID, Slot: t.Worker, DurationMS: ms(t.D), Kind: string(t.Kind)})
	}
	js.Restarts = jsonRestarts{Count: st.restarts, LostMS: ms(st.lost)}
	js.CPU = jsonCPU{CPUMS: ms(st.cpu), TaskMS: ms(st.cpuWall), Unknown: st.noCPU}
	if share, work, ok := st.cpuShare(); ok {
		js.CPU.Share, js.CPU.Verdict = &share, work
	}
	return js
}

package timeline

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// synth is a synthetic run for the tests, written in the trace format of
// poold --trace (issue 12): complete events per task run, thread_name
// metadata per worker, instant events for worker start, death and
// replacement.
type synth struct {
	tasks, workers int
	crash          int               // index of the task whose worker dies under it; -1: none
	failEvery      int               // every failEvery-th task fails with kind timeout; 0: none
	dur            func(int) float64 // µs
	closed         bool              // write the closing "]}"
}

// trace writes the trace; the crash's task, the worker it ran on, and its
// replacement are in the returned values.
func (s synth) trace() (data []byte, crashTrack string) {
	var b bytes.Buffer
	b.WriteString(`{"displayTimeUnit":"ms","traceEvents":[` + "\n")
	emit := func(v map[string]any) {
		js, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		b.Write(js)
		b.WriteString(",\n")
	}
	emit(map[string]any{"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": map[string]any{"name": "poold (this machine)"}})
	type worker struct {
		pid  int
		free float64
	}
	ws := make([]worker, s.workers)
	next := 1001
	start := func(slot int, at float64) {
		ws[slot].pid = next
		next++
		emit(map[string]any{"ph": "M", "name": "thread_name", "pid": 1, "tid": ws[slot].pid,
			"args": map[string]any{"name": fmt.Sprintf("worker %d (pid %d)", slot+1, ws[slot].pid)}})
		emit(map[string]any{"ph": "i", "s": "t", "name": "worker start", "ts": at, "pid": 1, "tid": ws[slot].pid,
			"args": map[string]any{"pid": ws[slot].pid}})
	}
	for i := range ws {
		start(i, 0)
		ws[i].free = 100
	}
	for i := 0; i < s.tasks; i++ {
		slot := 0
		for j := range ws {
			if ws[j].free < ws[slot].free {
				slot = j
			}
		}
		w := &ws[slot]
		ts, dur := w.free, s.dur(i)
		args := map[string]any{"func": "sleep", "attempts": 1, "pid": w.pid}
		if i%3 == 1 {
			args["func"] = "square"
		}
		switch {
		case i == s.crash:
			args["kind"] = "worker_lost"
			args["error"] = fmt.Sprintf("worker %d died: signal: killed", w.pid)
		case s.failEvery > 0 && i%s.failEvery == s.failEvery-1:
			args["kind"] = "timeout"
		default:
			args["kind"] = ""
		}
		emit(map[string]any{"ph": "X", "name": fmt.Sprintf("t%02d", i), "ts": ts, "dur": dur, "pid": 1, "tid": w.pid, "args": args})
		w.free = ts + dur + 5
		if i == s.crash {
			crashTrack = fmt.Sprintf("worker %d (pid %d)", slot+1, w.pid)
			old := w.pid
			emit(map[string]any{"ph": "i", "s": "t", "name": "worker death", "ts": ts + dur, "pid": 1, "tid": old,
				"args": map[string]any{"reason": "signal: killed", "pid": old, "task": fmt.Sprintf("t%02d", i)}})
			start(slot, ts+dur+2000)
			emit(map[string]any{"ph": "i", "s": "t", "name": "worker replaced", "ts": ts + dur + 2000, "pid": 1, "tid": w.pid,
				"args": map[string]any{"old_pid": old, "pid": w.pid}})
			w.free = ts + dur + 3000
		}
	}
	if s.closed {
		b.Truncate(b.Len() - 2) // the last ",\n"
		b.WriteString("\n]}\n")
	}
	return b.Bytes(), crashTrack
}

// crashRun is the run of acceptance 2 of issue 12: 20 tasks on 4 workers,
// one crash (task t07).
func crashRun() synth {
	return synth{tasks: 20, workers: 4, crash: 7, dur: func(i int) float64 { return float64(40000 + (i%5)*15000) }}
}

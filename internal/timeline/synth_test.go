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

// ev is a trace event as the tests write it: a struct rather than a map, for
// speed (100,000 runs).
type ev struct {
	Ph   string  `json:"ph"`
	S    string  `json:"s,omitempty"`
	Name string  `json:"name"`
	Ts   float64 `json:"ts"`
	Dur  float64 `json:"dur,omitempty"`
	Pid  int     `json:"pid"`
	Tid  int     `json:"tid"`
	Args evArgs  `json:"args"`
}

type evArgs struct {
	Name     string  `json:"name,omitempty"`
	Func     string  `json:"func,omitempty"`
	Attempts int     `json:"attempts,omitempty"`
	Kind     *string `json:"kind,omitempty"` // absent, or "" when ok
	Pid      int     `json:"pid,omitempty"`
	Error    string  `json:"error,omitempty"`
	Reason   string  `json:"reason,omitempty"`
	Task     string  `json:"task,omitempty"`
	OldPid   int     `json:"old_pid,omitempty"`
}

// trace writes the trace; the crash's task, the worker it ran on, and its
// replacement are in the returned values.
func (s synth) trace() (data []byte, crashTrack string) {
	var b bytes.Buffer
	b.WriteString(`{"displayTimeUnit":"ms","traceEvents":[` + "\n")
	emit := func(v ev) {
		js, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		b.Write(js)
		b.WriteString(",\n")
	}
	emit(ev{Ph: "M", Name: "process_name", Pid: 1, Args: evArgs{Name: "poold (this machine)"}})
	type worker struct {
		pid  int
		free float64
	}
	ws := make([]worker, s.workers)
	next := 1001
	start := func(slot int, at float64) {
		ws[slot].pid = next
		next++
		emit(ev{Ph: "M", Name: "thread_name", Pid: 1, Tid: ws[slot].pid,
			Args: evArgs{Name: fmt.Sprintf("worker %d (pid %d)", slot+1, ws[slot].pid)}})
		emit(ev{Ph: "i", S: "t", Name: "worker start", Ts: at, Pid: 1, Tid: ws[slot].pid, Args: evArgs{Pid: ws[slot].pid}})
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
		args := evArgs{Func: "sleep", Attempts: 1, Pid: w.pid}
		if i%3 == 1 {
			args.Func = "square"
		}
		kind := func(k string) *string { return &k }
		switch {
		case i == s.crash:
			args.Kind = kind("worker_lost")
			args.Error = fmt.Sprintf("worker %d died: signal: killed", w.pid)
		case s.failEvery > 0 && i%s.failEvery == s.failEvery-1:
			args.Kind = kind("timeout")
		case i%2 == 1:
			args.Kind = kind("") // ok: kind "" on some runs, absent on the others
		}
		emit(ev{Ph: "X", Name: fmt.Sprintf("t%02d", i), Ts: ts, Dur: dur, Pid: 1, Tid: w.pid, Args: args})
		w.free = ts + dur + 5
		if i == s.crash {
			crashTrack = fmt.Sprintf("worker %d (pid %d)", slot+1, w.pid)
			old := w.pid
			emit(ev{Ph: "i", S: "t", Name: "worker death", Ts: ts + dur, Pid: 1, Tid: old,
				Args: evArgs{Reason: "signal: killed", Pid: old, Task: fmt.Sprintf("t%02d", i)}})
			start(slot, ts+dur+2000)
			emit(ev{Ph: "i", S: "t", Name: "worker replaced", Ts: ts + dur + 2000, Pid: 1, Tid: w.pid,
				Args: evArgs{OldPid: old, Pid: w.pid}})
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

package trace

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/poold/poold/internal/pool"
)

// syncBuffer is a bytes.Buffer safe to read while the writer flushes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type event struct {
	Name string         `json:"name"`
	Ph   string         `json:"ph"`
	TS   float64        `json:"ts"`
	Dur  float64        `json:"dur"`
	PID  int64          `json:"pid"`
	TID  int64          `json:"tid"`
	Args map[string]any `json:"args"`
}

func decode(t *testing.T, s string) []event {
	t.Helper()
	var doc struct {
		DisplayTimeUnit string  `json:"displayTimeUnit"`
		TraceEvents     []event `json:"traceEvents"`
	}
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatalf("trace does not parse: %v\n%s", err, s)
	}
	if doc.DisplayTimeUnit != "ms" {
		t.Errorf("displayTimeUnit %q", doc.DisplayTimeUnit)
	}
	return doc.TraceEvents
}

func TestWriter(t *testing.T) {
	var buf syncBuffer
	w := New(&buf, false)
	o := w.origin
	w.Event(pool.Event{Kind: pool.WorkerStarted, Time: o + 1000, PID: 4242, Worker: 0})
	w.Event(pool.Event{Kind: pool.TaskRun, PID: 4242, Worker: 0, Func: "echo", Name: "a \"quoted\"\n\xffname", Index: -1,
		Attempts: 1, Start: o + 2_000_500, End: o + 3_000_000})
	w.Event(pool.Event{Kind: pool.TaskRun, PID: 4242, Worker: 0, Func: "echo", Index: 7, Attempts: 2,
		Start: o + 3_000_000, End: o + 4_000_000, Fail: "worker_lost", Lost: true})
	w.Event(pool.Event{Kind: pool.WorkerExited, Time: o + 5000000, PID: 4242, Worker: 0, Blame: "timeout", Reason: "killed",
		Exit: &pool.Exit{PID: 4242, ExitCode: -1, Signal: syscall.SIGKILL}})
	w.Event(pool.Event{Kind: pool.WorkerStarted, Time: o + 6000000, Host: "node2", PID: 1 << 40, Worker: 0, Replaces: 4242})

	// Flushed within FlushEvery, before Close: a killed run keeps it.
	time.Sleep(3 * FlushEvery)
	s := buf.String()
	if !strings.HasPrefix(s, `{"displayTimeUnit":"ms","traceEvents":[`+"\n") || !strings.HasSuffix(s, "}") {
		t.Fatalf("before Close:\n%s", s)
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines[1 : len(lines)-1] {
		if !strings.HasPrefix(l, "{") || !strings.HasSuffix(l, "},") {
			t.Errorf("line %d is not one event and a comma: %s", i+2, l)
		}
	}
	evs := decode(t, s+"]}")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Event(pool.Event{Kind: pool.TaskRun, Func: "late"}) // dropped
	s = buf.String()
	if !strings.HasSuffix(s, "]}\n") || strings.Contains(s, "late") {
		t.Fatalf("after Close:\n%s", s)
	}
	if got := decode(t, s); len(got) != len(evs) {
		t.Errorf("%d events after Close, %d before", len(got), len(evs))
	}

	var names []string
	for _, e := range evs {
		names = append(names, e.Ph+" "+e.Name)
		if e.TID < 0 || e.TID > 1<<31-1 {
			t.Errorf("tid %d does not fit in 32 bits", e.TID)
		}
	}
	want := []string{"M process_name", "M thread_name", "i worker started",
		"X a \"quoted\"\n\ufffdname", "X echo[7]", "i worker died",
		"M process_name", "M thread_name", "i worker started", "i worker replaced"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Fatalf("events\n%q\nwant\n%q", names, want)
	}
	run := evs[3]
	if run.TS != 2000.5 || run.Dur != 999.5 || run.PID != 1 || run.TID != 4242 {
		t.Errorf("run %+v: want ts 2000.5, dur 999.5 µs, pid 1, tid 4242", run)
	}
	if run.Args["func"] != "echo" || run.Args["attempts"] != 1.0 || run.Args["kind"] != nil || run.Args["slot"] != 0.0 {
		t.Errorf("run args %v", run.Args)
	}
	if lost := evs[4]; lost.Args["kind"] != "worker_lost" || lost.Args["lost"] != true || lost.Args["attempts"] != 2.0 {
		t.Errorf("lost run args %v", lost.Args)
	}
	if d := evs[5].Args; d["reason"] != "killed" || d["blame"] != "timeout" || d["signal"] != 9.0 {
		t.Errorf("death args %v", d)
	}
	if evs[6].PID != 2 || evs[6].Args["name"] != "node2" || evs[9].Args["replaces"] != 4242.0 {
		t.Errorf("second host: %+v, %+v", evs[6], evs[9])
	}
}

func TestWriterThreads(t *testing.T) {
	var buf syncBuffer
	w := New(&buf, true)
	var wg sync.WaitGroup
	for slot := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.Event(pool.Event{Kind: pool.WorkerStarted, Time: w.origin, PID: 99, Worker: slot})
			for i := range 1000 {
				w.Event(pool.Event{Kind: pool.TaskRun, PID: 99, Worker: slot, Func: "f", Index: i, Attempts: 1, Start: w.origin + int64(i), End: w.origin + int64(i) + 1})
			}
		}()
	}
	wg.Wait()
	w.Close()
	runs := 0
	for _, e := range decode(t, buf.String()) {
		if e.Ph == "X" {
			runs++
			if e.TID != int64(e.Args["slot"].(float64))+1 {
				t.Fatalf("threads run on tid %d, slot %v", e.TID, e.Args["slot"])
			}
		}
	}
	if runs != 4000 {
		t.Errorf("%d runs, want 4000", runs)
	}
}

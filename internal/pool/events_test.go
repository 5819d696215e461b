package pool

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/poold/poold/internal/kind"
	"github.com/poold/poold/internal/tasks"
)

// eventLog keeps the events a pool tells.
type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Exit != nil {
		x := *e.Exit // valid only during the call
		e.Exit = &x
	}
	l.evs = append(l.evs, e)
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

// runsOf are the TaskRun events of func fn.
func runsOf(evs []Event, fn string) []Event {
	var runs []Event
	for _, e := range evs {
		if e.Kind == TaskRun && e.Func == fn {
			runs = append(runs, e)
		}
	}
	return runs
}

func count(evs []Event, k EventKind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}

func TestEvents(t *testing.T) {
	var log eventLog
	p := newTestPool(t, Config{Workers: 2, Events: log.add})
	// A retried error: each attempt its own run, though only the last is
	// delivered.
	run(t, p, "fail", 1, nil)
	retried := &Task{Retries: 2, RetryOn: []Kind{kind.Error}}
	calls, wait := start(t, p, "fail", 1, retried, nil)
	wait()
	if calls[0].Attempts != 3 {
		t.Fatalf("fail: %d attempts, want 3", calls[0].Attempts)
	}
	// A worker lost under its call, retried once.
	lost := &Task{Retries: 1, RetryOn: []Kind{kind.WorkerLost}}
	calls, wait = start(t, p, "exit", 1, lost, 7)
	wait()
	if calls[0].Attempts != 2 || !failed(calls[0], kind.WorkerLost) {
		t.Fatalf("exit: %+v", calls[0])
	}
	// A named, indexed chunk.
	var wg sync.WaitGroup
	wg.Add(1)
	tk := &Task{Func: "echo", Args: append(raw(t, 1), raw(t, 2)...), Calls: 2, Name: "m", Base: 10, Indexed: true,
		Each: func(*Task, int, *Outcome) {}, Done: func(*Task) { wg.Done() }}
	if err := p.Submit(tk); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	evs := log.all()

	fails := runsOf(evs, "fail")
	if len(fails) != 4 {
		t.Fatalf("%d runs of fail, want 4 (1 + 3 attempts): %+v", len(fails), fails)
	}
	var attempts []int
	for _, e := range fails {
		if e.Fail != kind.Error || e.Lost || e.PID == 0 || e.Start == 0 || e.End < e.Start || e.Index != -1 {
			t.Errorf("fail run %+v", e)
		}
		attempts = append(attempts, e.Attempts)
	}
	slices.Sort(attempts)
	if !slices.Equal(attempts, []int{1, 1, 2, 3}) {
		t.Errorf("attempts of fail runs %v, want 1 1 2 3", attempts)
	}
	exits := runsOf(evs, "exit")
	if len(exits) != 2 {
		t.Fatalf("%d runs of exit, want 2: %+v", len(exits), exits)
	}
	// The retry may run, and die, on another worker before the first
	// death's event is told: deaths are told as they are settled.
	slices.SortFunc(exits, func(a, b Event) int { return a.Attempts - b.Attempts })
	for i, e := range exits {
		if !e.Lost || e.Fail != kind.WorkerLost || e.Attempts != i+1 || e.End < e.Start || e.Start == 0 {
			t.Errorf("exit run %d: %+v", i, e)
		}
	}
	echoes := runsOf(evs, "echo")
	if len(echoes) != 2 || echoes[0].Name != "m" || echoes[0].Index != 10 || echoes[1].Index != 11 {
		t.Errorf("echo runs %+v: want m, 10 and 11", echoes)
	}
	started, exited := count(evs, WorkerStarted), count(evs, WorkerExited)
	if started != exited || started != 4 {
		t.Errorf("%d workers started, %d exited; want 4 of each (2, and 2 replacements)", started, exited)
	}
	died := 0
	pids := map[int]bool{}
	for _, e := range evs {
		switch e.Kind {
		case WorkerStarted:
			if e.Replaces != 0 && !pids[e.Replaces] {
				t.Errorf("worker %d replaces %d, which never started", e.PID, e.Replaces)
			}
			pids[e.PID] = true
		case WorkerExited:
			if e.Exit == nil || e.Reason == "" || !pids[e.PID] {
				t.Errorf("exit event %+v", e)
			} else if e.Exit.ExitCode == 7 {
				died++
			}
		}
	}
	if died != 2 {
		t.Errorf("%d workers exited with code 7, want 2", died)
	}
}

func TestThreadsEvents(t *testing.T) {
	var log eventLog
	reg := testRegistry()
	reg.Register("stubborn", tasks.Typed(func(context.Context, struct{}) (int, error) {
		time.Sleep(300 * time.Millisecond) // deaf to its context
		return 0, nil
	}))
	p, err := NewThreads(context.Background(), ThreadsConfig{Workers: 2, Registry: reg, Events: log.add, KillGrace: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Terminate()
	t.Cleanup(func() { time.Sleep(400 * time.Millisecond) }) // the abandoned goroutine ends, for goleak
	var wg sync.WaitGroup
	wg.Add(2)
	each := func(*Task, int, *Outcome) {}
	done := func(*Task) { wg.Done() }
	if err := p.Submit(&Task{Func: "fail", Args: nilValue, Calls: 1, Retries: 1, RetryOn: []Kind{kind.Error}, Each: each, Done: done}); err != nil {
		t.Fatal(err)
	}
	// Ignores its time limit: abandoned, its goroutine replaced.
	if err := p.Submit(&Task{Func: "stubborn", Args: nilValue, Calls: 1, Timeout: time.Millisecond, Each: each, Done: done}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Join(ctx); err != nil {
		t.Fatal(err)
	}
	evs := log.all()
	if fails := runsOf(evs, "fail"); len(fails) != 2 || fails[0].Attempts != 1 || fails[1].Attempts != 2 {
		t.Errorf("fail runs %+v: want attempts 1 and 2", fails)
	}
	for _, e := range evs {
		if e.PID != p.pid || e.Worker < 0 || e.Worker >= 2 {
			t.Errorf("event %+v: want this process's pid, slot 0 or 1", e)
		}
	}
	if stub := runsOf(evs, "stubborn"); len(stub) != 1 || !stub[0].Lost || stub[0].Fail != kind.Timeout || stub[0].Start == 0 || stub[0].End < stub[0].Start {
		t.Errorf("stubborn runs %+v: want one lost to its timeout", stub)
	}
	var gone, replaced []Event
	for _, e := range evs {
		if e.Kind == WorkerExited {
			gone = append(gone, e)
		}
		if e.Kind == WorkerStarted && e.Replaces != 0 {
			replaced = append(replaced, e)
		}
	}
	if len(gone) != 1 || gone[0].Blame != kind.Timeout || gone[0].Reason == "" {
		t.Errorf("exits %+v: want the abandoned goroutine's, blamed on its timeout", gone)
	}
	if len(replaced) != 1 || len(gone) == 1 && (replaced[0].Worker != gone[0].Worker || replaced[0].Replaces != gone[0].Worker+1) {
		t.Errorf("replacements %+v of %+v: want one, in its slot, replacing slot+1", replaced, gone)
	}
	if n := count(evs, WorkerStarted); n != 3 {
		t.Errorf("%d workers started, want 3", n)
	}
}

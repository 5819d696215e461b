package worker

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/sys/unix"

	"github.com/poold/poold/internal/ipc"
)

// spin burns d of CPU time on one thread, whatever else the machine runs,
// and returns how much it burned, as the thread's CPU clock says: at least
// d.
func spin(d time.Duration) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	n := 0
	for threadCPU()-start < d {
		for i := range 1000 {
			n ^= i * n
		}
	}
	return threadCPU() - start + time.Duration(n&1)
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		panic(err)
	}
	return time.Duration(ts.Nano())
}

// startProcess is start with a worker process, this test binary run by
// Serve: its CPU clock counts the worker alone, where ServeConn's counts
// the test too. It has no control stream.
func startProcess(t *testing.T, s Settings) *conn {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), s.Environ()...)
	cmd.Stdin, cmd.Stdout = inR, outW
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	c := &conn{t: t, in: inW, wr: ipc.NewWriter(inW, 0), rd: ipc.NewReader(outR, 0), log: &bytes.Buffer{}, done: make(chan int, 1)}
	waited := make(chan struct{})
	go func() {
		defer close(waited)
		cmd.Wait()
		c.done <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		inW.Close() // the worker exits at EOF
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-waited
		}
		outR.Close()
		if t.Failed() {
			t.Logf("the worker's stderr:\n%s", stderr)
		}
	})
	return c
}

// syncBuffer is a worker process's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// workers are the two ways a test can run a worker.
var workers = []struct {
	name  string
	start func(*testing.T, Settings) *conn
}{{"ServeConn", start}, {"process", startProcess}}

func mp(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cpuOf(it ipc.Item) time.Duration  { return time.Duration(it.CPU) }
func wallOf(it ipc.Item) time.Duration { return time.Duration(it.End - it.Start) }

// TestCPUPerCall: a call that burns CPU for 30 ms reports about 30 ms of
// CPU, one that sleeps 30 ms hardly any; alone in their jobs, in a chunk
// between each other, in an eager chunk, and after a run of short calls
// (whose share of its span must not distort it).
func TestCPUPerCall(t *testing.T) {
	for _, w := range workers {
		// ServeConn's worker shares the test process's clock with the
		// test's own goroutines (its reader, the race detector): under load
		// they add a few ms to a call's CPU, which a 3 ms spin cannot hide
		// within 1.5× (seen in CI: 4.6 ms for 3.0 ms burned).
		shared := time.Duration(0)
		if w.name == "ServeConn" {
			shared = 3 * time.Millisecond
		}
		t.Run(w.name, func(t *testing.T) { testCPUPerCall(t, w.start(t, Settings{}), shared) })
	}
}

// shared is CPU time the worker's process may add to a call's on top of
// 1.5× what it burned: 0 for a worker process of its own.
func testCPUPerCall(t *testing.T, c *conn, shared time.Duration) {
	c.hello()
	// A spin burns a given CPU time, however long that takes on a busy
	// machine; it returns what it burned, by its thread's clock.
	checkSpin := func(what string, it ipc.Item) {
		t.Helper()
		var burned time.Duration
		if !it.OK || msgpack.Unmarshal(it.Value, &burned) != nil {
			t.Fatalf("%s: ok %v, value %x", what, it.OK, it.Value)
		}
		if cpu, wall := cpuOf(it), wallOf(it); float64(cpu) < 0.8*float64(burned) || float64(cpu) > 1.5*float64(burned)+float64(shared) || float64(cpu) > 1.5*float64(wall)+float64(shared) {
			t.Errorf("%s: cpu %v for a spin that burned %v in a wall time of %v; want 0.8× to 1.5× what it burned, at most 1.5× the wall time", what, cpu, burned, wall)
		}
	}
	checkSleep := func(what string, it ipc.Item) {
		t.Helper()
		if cpu, wall := cpuOf(it), wallOf(it); !it.OK || cpu < 0 || float64(cpu) > 0.3*float64(wall) || wall < 20*time.Millisecond {
			t.Errorf("%s: ok %v, cpu %v for a wall time of %v sleeping; want 0 to 30 %%", what, it.OK, cpu, wall)
		}
	}
	spinMS := func(ms int) any { return map[string]int{"SpinUS": 1000 * ms} }
	sleepMS := func(ms int) any { return map[string]int{"SleepMS": ms} }

	checkSpin("spin alone", c.task(1, "spin_sleep", spinMS(30)).Items[0])
	checkSleep("sleep alone", c.task(2, "spin_sleep", sleepMS(30)).Items[0])
	r := c.task(3, "spin_sleep", sleepMS(30), spinMS(30), sleepMS(30), spinMS(30))
	checkSleep("sleep first in a chunk", r.Items[0])
	checkSpin("spin after a sleep", r.Items[1])
	checkSleep("sleep after a spin", r.Items[2])
	checkSpin("spin last in a chunk", r.Items[3])

	eager := ipc.Task{ID: 4, Func: "spin_sleep", Eager: true} // each item written before the next call
	for _, a := range []any{spinMS(30), sleepMS(30)} {
		eager.Args = append(eager.Args, mp(t, a))
	}
	if err := c.wr.WriteTask(&eager); err != nil {
		t.Fatal(err)
	}
	c.wr.Flush()
	r = c.result(4, 2)
	checkSpin("eager spin", r.Items[0])
	checkSleep("eager sleep", r.Items[1])

	// Short spins, then a sleep: the sleep shares its span with the calls
	// of the last cpuSpan at most, whose CPU is estimated.
	args := make([]any, 0, 101)
	for range 100 {
		args = append(args, map[string]int{"SpinUS": 3})
	}
	r = c.task(5, "spin_sleep", append(args, sleepMS(30))...)
	checkSleep("sleep after short spins", r.Items[100])

	// Jobs sent back to back, read from the buffer without a wait.
	for id := uint64(6); id < 10; id++ {
		c.send(id, "spin_sleep", spinMS(3), sleepMS(3))
	}
	for id := uint64(6); id < 10; id++ {
		r = c.result(id, 2)
		checkSpin(fmt.Sprintf("job %d, one of a burst: spin", id), r.Items[0])
		if sleep := r.Items[1]; cpuOf(sleep) > wallOf(sleep)*3/10 {
			t.Errorf("job %d, one of a burst: cpu %v for a sleep of %v", id, cpuOf(sleep), wallOf(sleep))
		}
	}

	c.in.Close()
	if code := c.wait(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// TestCPUTrivialCalls: the calls of a chunk of trivial calls, which share
// readings, report CPUs that are not negative and add up to no more than
// the job's wall time, with a little room for the readings themselves. In
// a worker process: ServeConn's clock would count the test's goroutine
// too, which reads the partial results as they come.
func TestCPUTrivialCalls(t *testing.T) {
	c := startProcess(t, Settings{})
	c.hello()
	args := make([]any, 20000)
	for i := range args {
		args[i] = i
	}
	for job := range 3 {
		r := c.task(uint64(job+1), "double", args...)
		var sum time.Duration
		for i, it := range r.Items {
			if !it.OK || it.CPU < 0 {
				t.Fatalf("job %d, call %d: ok %v, cpu %d", job, i, it.OK, it.CPU)
			}
			sum += cpuOf(it)
		}
		wall := time.Duration(r.Items[len(r.Items)-1].End - r.Items[0].Start)
		if slack := wall/10 + time.Millisecond; sum > wall+slack || sum <= 0 {
			t.Errorf("job %d: %d calls in %v report %v of CPU in all; want more than 0, at most the wall time + %v", job, len(r.Items), wall, sum, slack)
		}
		t.Logf("job %d: %d calls in %v: %v of CPU", job, len(r.Items), wall, sum)
	}
	c.in.Close()
	c.wait()
}

// TestCPUChildren: the CPU of a program that a call ran and waited for is
// the call's.
func TestCPUChildren(t *testing.T) {
	c := startProcess(t, Settings{})
	c.hello()
	it := c.task(1, "sh", "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done").Items[0]
	var took time.Duration // by the shell's own rusage
	if !it.OK || msgpack.Unmarshal(it.Value, &took) != nil {
		t.Fatalf("a shell loop: ok %v (%+v), value %x", it.OK, it.Err, it.Value)
	}
	if cpu, wall := cpuOf(it), wallOf(it); float64(cpu) < 0.8*float64(took) || float64(cpu) > 1.5*float64(took)+float64(time.Millisecond) {
		t.Errorf("a shell loop: cpu %v for a shell that took %v of CPU in a wall time of %v; want 0.8× to 1.5× what it took", cpu, took, wall)
	}
	it = c.task(2, "sh", "sleep 0.05").Items[0]
	if cpu, wall := cpuOf(it), wallOf(it); !it.OK || cpu < 0 || float64(cpu) > 0.3*float64(wall) {
		t.Errorf("sleep 0.05: ok %v (%+v), cpu %v for a wall time of %v; want 0 to 30 %%", it.OK, it.Err, cpu, wall)
	}
	c.in.Close()
	c.wait()
}

// TestCPUAccounting: the calls between two readings share the CPU
// measured in proportion to their wall times, as a part of the span, and
// the shares add up exactly; calls that never ran get 0; estimates take
// the last span's rate, and the next reading gives the calls after them
// what the span measured less what the estimates gave, or takes what they
// gave too much from the span after.
func TestCPUAccounting(t *testing.T) {
	type step struct {
		walls    []int64 // calls since the last step, back to back; -1: never started
		gap      int64   // wall time after them, before the step
		estimate bool    // estimates, or else a reading that measured cpu
		cpu      int64
		want     []int64
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"one call, the whole span", []step{{walls: []int64{100}, cpu: 80, want: []int64{80}}}},
		{"one call, half the span", []step{{walls: []int64{50}, gap: 50, cpu: 80, want: []int64{40}}}},
		{"by wall", []step{{walls: []int64{10, 30, 60}, cpu: 1000, want: []int64{100, 300, 600}}}},
		{"rounding: the sum stays", []step{{walls: []int64{1, 1, 1}, cpu: 10, want: []int64{3, 3, 4}}}},
		{"never started", []step{{walls: []int64{-1, 50, -1}, cpu: 80, want: []int64{0, 80, 0}}}},
		{"only calls that never ran", []step{
			{walls: []int64{-1, -1}, cpu: 80, want: []int64{0, 0}},
			{walls: []int64{10}, cpu: 0, want: []int64{0}}, // the span had no call: its CPU is nobody's
		}},
		{"no span", []step{{walls: []int64{0, 0}, cpu: 80, want: []int64{0, 0}}}},
		{"huge", []step{{walls: []int64{math.MaxInt64 / 4, math.MaxInt64 / 4}, cpu: math.MaxInt64 / 2, want: []int64{math.MaxInt64/4 + 1, math.MaxInt64 / 4}}}}, // the first estimated at rate 1, as a float64
		{"short calls, then a long one: the short ones at the last rate", []step{
			{walls: []int64{100}, cpu: 100, want: []int64{100}}, // rate 1
			{walls: []int64{10, 10, 40000}, cpu: 30, want: []int64{10, 10, 10}},
			{walls: []int64{10, 40000}, cpu: 50000, want: []int64{0, 50000}}, // rate 30/40020: 0
		}},
		{"estimates at the last rate, then the rest", []step{
			{walls: []int64{100}, cpu: 50, want: []int64{50}}, // rate 0.5
			{walls: []int64{10, 10}, estimate: true, want: []int64{5, 5}},
			{walls: []int64{20}, cpu: 40, want: []int64{30}}, // 40 for the span's 40 of calls, 10 given
		}},
		{"estimates too high: the next span pays", []step{
			{walls: []int64{100}, cpu: 100, want: []int64{100}}, // rate 1
			{walls: []int64{40}, estimate: true, want: []int64{40}},
			{walls: []int64{10}, cpu: 10, want: []int64{0}},  // 10 for 50 of calls, 40 given: 30 too much
			{walls: []int64{50}, cpu: 50, want: []int64{20}}, // 50, less the 30
			{walls: []int64{50}, cpu: 50, want: []int64{50}}, // paid
		}},
		{"estimates too low, and no call after: the next span gets it", []step{
			{walls: []int64{100}, gap: 100, cpu: 20, want: []int64{10}}, // rate 0.1
			{walls: []int64{100}, estimate: true, want: []int64{10}},
			{walls: nil, cpu: 100, want: nil}, // a job's start: 100 for the 100 of calls, 10 given
			{walls: []int64{10}, cpu: 10, want: []int64{100}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := cpuMeter{ok: true, at: 1000, rate: 1}
			at := m.at
			var measured, given int64
			for k, st := range tc.steps {
				var its []ipc.Item
				for _, w := range st.walls {
					if w < 0 {
						its = append(its, ipc.Item{})
						continue
					}
					its = append(its, ipc.Item{Start: at, End: at + w})
					at += w
				}
				at += st.gap
				m.first = 0
				if st.estimate {
					m.estimate(its)
				} else {
					m.give(its, at, st.cpu)
					measured += st.cpu
				}
				var got []int64
				for _, it := range its {
					got = append(got, it.CPU)
					given += it.CPU
				}
				if !slices.Equal(got, st.want) {
					t.Errorf("step %d: CPUs %v, want %v", k, got, st.want)
				}
			}
			// Given, less what was given too much: at most what the
			// readings measured (the rest ran between calls).
			if given-m.given > measured {
				t.Errorf("measured %d, given %d, of which %d too much", measured, given, m.given)
			}
		})
	}
}

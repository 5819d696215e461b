package worker

import (
	"math/bits"
	"time"

	"github.com/poold/poold/internal/ipc"
)

// The CPU time of each call: what the worker process spent, user and
// system, while the call ran, its reaped children included. Serve's
// process is the worker's own, so this is the call's CPU, what the
// goroutines it started and the garbage collector did for it included;
// ServeConn shares its process with its host, whose CPU counts too.
//
// Reading the process's CPU clock is a syscall, and an expensive one here:
// measured on the 2-core machine this was built on, clock_gettime of
// CLOCK_PROCESS_CPUTIME_ID takes about 820 ns (450 as a raw syscall, more
// while the process's other threads run), getrusage(RUSAGE_SELF) 790 ns,
// getrusage(RUSAGE_THREAD) 450 ns (but a call's goroutines and the GC run
// on other threads), getrusage(RUSAGE_CHILDREN) about 300 ns; a trivial
// call inside a chunk costs the whole pool about 600 ns, a pipelined Apply
// about 4.4 µs. Two readings around every call would more than double the
// cost of a chunk's calls, and one per job cost a pipelined Apply 10 to
// 15 %. So the clock is read
//
//   - at a job's start, unless the last reading is less than cpuSpan old
//     and the worker has not waited for input since (the job was buffered
//     already): a wait must not be part of a span;
//   - after a call of cpuLong or more, so that its CPU is measured;
//   - after a call that ends cpuSpan or more after the last reading;
//   - after a job's last call if the next job is not buffered: the worker
//     is about to wait.
//
// The calls between two readings share the CPU measured in proportion to
// their wall times, as the share of the span that they ran: what the
// worker did between calls (a write, reading the next frame) takes its
// share of the span and is given to no call. A call whose item is written
// before the next reading (the end of a job in a burst, a partial result,
// an eager task's calls) gets an estimate instead, its wall time at the
// rate of the last span, and so do the short calls before a call of
// cpuLong or more. The next reading gives the calls after the estimates
// what the span measured less what the estimates gave (never less than 0;
// what they gave too much is taken from the span after). So the sum is
// exact, but for the share of what ran between calls; a call of cpuLong
// or more is exact within the error of the estimates of the short calls
// of its span (less than cpuSpan of them). Calls of a few microseconds
// are exact only in sum: the process clock counts the CPU of the
// process's other running threads in steps.
//
// The children's CPU (a task that ran a program and waited for it) is read
// with the process's after a call of cpuLong or more (no program starts,
// runs and is waited for in less) and before a wait for input, one more
// syscall (300 ns) there only. A child reaped by a shorter call (started
// by an earlier one) is counted with the next reading of the children's.
//
// In the pool's benchmarks this makes one reading per 120 calls of a
// chunk of trivial calls, and one per 5 jobs of a burst of pipelined
// Applies (nearly all of them around the worker's waits for input). A
// worker that waits between every two jobs (one task at a time) pays two
// readings per job, after a wake-up about 1 µs each here.
const (
	cpuLong = 20 * time.Microsecond
	cpuSpan = 100 * time.Microsecond
)

// cpuMeter spaces out the readings of the process's CPU clock and shares
// what they measure among the calls of the job running.
type cpuMeter struct {
	ok       bool    // the clock can be read; false: every call's CPU is unknown (-1)
	at       int64   // unix nanoseconds of the last reading
	self     int64   // the process's own CPU at the last reading, ns
	children int64   // the reaped children's CPU at the last reading of it, ns
	first    int     // the job's first item (in jobRun.res.Items) still without its CPU
	given    int64   // CPU that estimates gave calls since the last reading, ns; negative: owed to the next calls
	givenW   int64   // the wall time of those calls, ns
	rate     float64 // CPU per wall time in the last span
}

// maxRate bounds an estimate: a span's rate measured over a few
// microseconds can be far off.
const maxRate = 4

func newCPUMeter() cpuMeter {
	self, ok := processCPU()
	return cpuMeter{ok: ok, at: time.Now().UnixNano(), self: self, children: childrenCPU(0), rate: 1}
}

// begin starts a job at now, whose frame was not buffered when the worker
// went to read it (waited: it may have waited), and returns the job's
// start: after the reading, if it took one.
func (m *cpuMeter) begin(now time.Time, waited bool) time.Time {
	m.first = 0
	if !m.ok || !waited && now.UnixNano()-m.at < int64(cpuSpan) {
		return now
	}
	m.read(nil, now.UnixNano(), false) // the children's were read before the wait
	return time.Now()
}

// due reports whether the call of it must be followed by a reading: it
// took cpuLong or more, or it ended cpuSpan or more after the last one.
func (m *cpuMeter) due(it *ipc.Item) bool {
	return it.End-m.at >= int64(cpuSpan) || wall(it) >= int64(cpuLong)
}

// settle reads the clock at end, when the last of items ended, and gives
// the calls since, items[m.first:], their CPU; idle: the worker is about
// to wait for its next job.
func (m *cpuMeter) settle(items []ipc.Item, end time.Time, idle bool) {
	pending := items[m.first:]
	m.first = len(items)
	if !m.ok {
		unknown(pending)
		return
	}
	children := idle || len(pending) > 0 && wall(&pending[len(pending)-1]) >= int64(cpuLong)
	m.read(pending, end.UnixNano(), children)
}

// estimate gives the calls of items[m.first:], which are about to be
// written before the next reading, their wall time at the last span's rate.
func (m *cpuMeter) estimate(items []ipc.Item) {
	pending := items[m.first:]
	m.first = len(items)
	if !m.ok {
		unknown(pending)
		return
	}
	m.guess(pending)
}

// guess gives the calls of pending their wall time at the last span's
// rate, and counts it as given.
func (m *cpuMeter) guess(pending []ipc.Item) {
	for i := range pending {
		w := wall(&pending[i])
		pending[i].CPU = int64(min(float64(w)*m.rate, 1<<62)) // a float64 beyond int64 would not convert
		m.given += pending[i].CPU
		m.givenW += w
	}
}

// read reads the clock at t, and the children's if children, and gives
// the calls of pending, which ended since the last reading, what the span
// measured for them, less what estimates gave since.
func (m *cpuMeter) read(pending []ipc.Item, t int64, children bool) {
	self, ok := processCPU()
	if !ok {
		m.ok = false
		unknown(pending)
		return
	}
	cpu := max(self-m.self, 0)
	if children {
		c := childrenCPU(m.children)
		cpu += max(c-m.children, 0)
		m.children = c
	}
	m.self = self
	m.give(pending, t, cpu)
}

// give gives the calls of pending, which ended since the last reading,
// their part of cpu, what the span to t measured, less what estimates gave
// since, and makes t the last reading.
func (m *cpuMeter) give(pending []ipc.Item, t, cpu int64) {
	if n := len(pending) - 1; n > 0 && wall(&pending[n]) >= int64(cpuLong) {
		// The short calls before a long one run as the calls before them
		// did: proportional shares would give the long one their rate.
		m.guess(pending[:n])
		pending = pending[n:]
	}
	span := t - m.at
	var pendingW int64
	for i := range pending {
		pendingW += wall(&pending[i])
	}
	walls := m.givenW + pendingW
	den := max(span, walls, 1)
	m.rate = min(float64(cpu)/float64(den), maxRate)
	// What the span's calls ran, less what estimates gave: the pending
	// calls' share, or, negative, what they gave too much. Without a
	// pending call that ran, it stays for the next calls.
	rest := scale(cpu, walls, den) - m.given
	if pendingW > 0 {
		share(pending, max(rest, 0), pendingW)
		rest = min(rest, 0)
	} else {
		for i := range pending {
			pending[i].CPU = 0 // never ran
		}
	}
	m.at, m.given, m.givenW = t, -rest, 0
}

// scale is x × num / den, for 0 ≤ num ≤ den, 0 < den, 0 ≤ x, exactly.
func scale(x, num, den int64) int64 {
	// x × num / den ≤ x: the quotient fits, and Div64 does not panic
	// (hi < den).
	hi, lo := bits.Mul64(uint64(x), uint64(num))
	q, _ := bits.Div64(hi, lo, uint64(den))
	return int64(q)
}

// share gives the calls of items cpu ns between them, in proportion to
// their wall times, which add up to walls > 0. Shares of the running sum
// are rounded down, so that they add up to cpu exactly.
func share(items []ipc.Item, cpu, walls int64) {
	var sum, given int64 // the running sum of walls, and the CPU given
	for i := range items {
		sum += wall(&items[i])
		q := scale(cpu, sum, walls)
		items[i].CPU = q - given
		given = q
	}
}

func unknown(items []ipc.Item) {
	for i := range items {
		items[i].CPU = -1
	}
}

// wall is how long the call of it ran, in ns; 0 for one that never
// started.
func wall(it *ipc.Item) int64 {
	if it.Start == 0 {
		return 0
	}
	return max(it.End-it.Start, 0)
}

package pool

import (
	"runtime"
	"time"
)

// maxMeasured bounds the jobs measured at once. Measuring pins a job's
// goroutine to its OS thread, which a blocked call then holds; Go stops a
// program past 10,000 threads (debug.SetMaxThreads), and a threads pool of
// 20,000 sleeping tasks must not. A call of a job beyond the bound reports
// its CPU time unknown.
const maxMeasured = 1000

// cpuSpan is how long after the last reading of the thread CPU clock a
// call must end for the clock to be read again. A reading is a system call,
// 580–750 ns on the project machine, more than a trivial call: reading
// around every call halved a threads-mode Map (1,490 against 850 ns an
// item in BenchmarkThreadsMapChunked).
const cpuSpan = 20 * time.Microsecond

// threadMeter measures the CPU time of the calls of a job on the OS thread
// its goroutine holds for the job. The clock is read at the job's start,
// after its last call, and after any call that ends cpuSpan or more after
// the last reading. A call that ends sooner is given its wall time (a call
// that short has had no time to sleep much); the next reading gives the
// call that triggers it what the clock measured beyond those guesses. So a
// long call's CPU time is exact, and the sum over a job is.
type threadMeter struct {
	on      bool          // the goroutine holds its thread for the job
	mark    time.Duration // the clock at the last reading; negative: unreadable
	markAt  int64         // when it was read, unix ns
	guessed time.Duration // given since mark to calls that ended before a reading
}

// begin starts measuring a job of th's goroutine, if the bound allows.
func (p *Threads) beginMeter(m *threadMeter) {
	if p.locked.Add(1) > maxMeasured {
		p.locked.Add(-1)
		return
	}
	m.on = true
	runtime.LockOSThread()
	m.mark, m.markAt, m.guessed = threadCPU(), time.Now().UnixNano(), 0
}

// endMeter ends the measuring of a job, from its goroutine.
func (p *Threads) endMeter(m *threadMeter) {
	if m.on {
		m.on = false
		runtime.UnlockOSThread()
		p.locked.Add(-1)
	}
}

// cpu is the CPU time of a call of the job that ran from start to end
// (unix ns); last: the job's last call. Negative: unknown.
func (m *threadMeter) cpu(start, end int64, last bool) time.Duration {
	if !m.on || m.mark < 0 {
		return -1
	}
	if !last && time.Duration(end-m.markAt) < cpuSpan {
		wall := time.Duration(end - start)
		m.guessed += wall
		return wall
	}
	now := threadCPU()
	if now < 0 {
		m.mark = -1
		return -1
	}
	c := max(now-m.mark-m.guessed, 0)
	m.mark, m.markAt, m.guessed = now, end, 0
	return c
}

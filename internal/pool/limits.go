package pool

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/poold/poold/internal/kind"
)

// watchMemory samples each worker's resident memory every interval and
// kills a worker that passes the limit, blaming the job it was running. It
// returns when the pool has exited.
func (p *Pool) watchMemory() {
	tick := time.NewTicker(p.cfg.MemoryInterval)
	defer tick.Stop()
	page := int64(os.Getpagesize())
	for {
		select {
		case <-p.exited:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		ws := append([]*worker(nil), p.workers...)
		p.mu.Unlock()
		for _, w := range ws {
			rss := readRSS(w.pid, page)
			if rss <= p.cfg.MaxWorkerMemory {
				continue
			}
			peak := max(rss, readPeakRSS(w.pid))
			b := &blame{kind: kind.MemoryLimit,
				reason: fmt.Sprintf("killed: resident memory reached %s, over the limit of %s", mib(peak), mib(p.cfg.MaxWorkerMemory))}
			p.mu.Lock()
			if head := w.headLocked(); head != nil {
				b.jobID = head.id
			}
			p.killLocked(w, b)
			p.unlockAndFlush()
			w.signal(SIGKILL)
		}
	}
}

// readRSS returns a process's resident set in bytes, from /proc/PID/statm
// (one small read; 0 if the process is gone).
func readRSS(pid int, page int64) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.ParseInt(string(f[1]), 10, 64)
	return n * page
}

// readPeakRSS returns VmHWM, the process's peak resident set, in bytes.
func readPeakRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := bytes.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

package pool

import (
	"fmt"
	"os"
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
		// An explicit worker on another machine, or behind a launcher,
		// measures itself: see memoryReported.
		type watched struct {
			w   *worker
			pid int
		}
		var ws []watched
		p.mu.Lock()
		for _, w := range p.workers {
			if !w.explicit || w.measured {
				ws = append(ws, watched{w, w.pid})
			}
		}
		p.mu.Unlock()
		for _, x := range ws {
			rss := readRSS(x.pid, page)
			if rss <= p.cfg.MaxWorkerMemory {
				continue
			}
			peak := max(rss, readPeakRSS(x.pid))
			p.memoryKill(x.w, fmt.Sprintf("resident memory reached %s, over the limit of %s", mib(peak), mib(p.cfg.MaxWorkerMemory)))
		}
	}
}

// memoryKill kills w for passing the memory limit (what says by how much),
// blaming the job it runs.
func (p *Pool) memoryKill(w *worker, what string) {
	b := &blame{kind: kind.MemoryLimit, reason: "killed: " + what}
	p.mu.Lock()
	if head := w.headLocked(); head != nil {
		b.jobID = head.id
	}
	p.killLocked(w, b)
	p.unlockAndFlush()
	w.signal(SIGKILL)
}

// memoryReported: w, an explicit worker, said on stderr that it passed the
// limit of its Setup, and is ending its process group. The pool blames its
// job as for a local worker it measured, and closes the connection too.
func (p *Pool) memoryReported(w *worker, what string) {
	if p.cfg.MaxWorkerMemory > 0 {
		p.memoryKill(w, what)
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

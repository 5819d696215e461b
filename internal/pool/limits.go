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

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

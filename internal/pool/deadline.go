package pool

import (
	"fmt"
	"time"

	"github.com/poold/poold/internal/kind"
)

// headChangedLocked arms the deadline of w's new head job, which starts
// about now (a worker starts a job as soon as it has written the result
// before it). The timer names the job: if it fires after that job has
// finished, it does nothing, so a kill never hits the task that runs next.
func (p *Pool) headChangedLocked(w *worker) {
	stopTimer(w.deadline)
	w.deadline = nil
	t := w.headLocked()
	if t == nil || t.Timeout <= 0 {
		return
	}
	// The worker cancels each call's context at its limit; the kill is for
	// a call that ignores it. Each call of a chunk has the limit.
	limit := time.Duration(t.Calls) * t.Timeout
	w.deadline = time.AfterFunc(limit+p.cfg.KillGrace, func() {
		p.mu.Lock()
		hit := w.headLocked() == t && p.killLocked(w, &blame{kind: kind.Timeout, jobID: t.id,
			reason: fmt.Sprintf("killed: the task ran past its time limit of %v and ignored cancellation for %v", t.Timeout, p.cfg.KillGrace)})
		p.unlockAndFlush()
		if hit {
			w.signal(SIGKILL)
		}
	})
}

package pool

import (
	"cmp"
	"fmt"

	"github.com/poold/poold/internal/ipc"
	child "github.com/poold/poold/internal/worker"
)

// checkHello checks that m is a hello of this protocol version. The
// refusal names both versions, and the worker's program and host when it
// said them, so that a mismatch between machines reads as one.
func checkHello(m *ipc.Message) error {
	if m.Kind != ipc.KindHello {
		return fmt.Errorf("%w: first message is %s, want hello", ipc.ErrMalformed, m.Kind)
	}
	h := &m.Hello
	if h.Version == ipc.ProtocolVersion {
		return nil
	}
	where := ""
	if h.Host != "" {
		where = " on " + h.Host
	}
	return fmt.Errorf("version mismatch: the worker%s speaks protocol %d (%s), this pool protocol %d (%s): run the same poold version on both sides",
		where, h.Version, cmp.Or(h.Program, "a version before 5, which does not say its program"),
		ipc.ProtocolVersion, child.ProgramVersion())
}

// remoteWindow multiplies the window of a worker behind a launcher: its
// round trip through ssh is ~150 µs against ~30 µs through a pipe, and jobs
// in flight are what hide it (the harness's ping-pong through ssh on 2
// children: 80,066 round trips/s with 16 in flight, 185,567/s with 64).
const remoteWindow = 4

// adopt takes w, whose hello h says it asks for a setup or is not the
// process the launcher started (srun, ssh or a shell forked it), as a
// worker behind a launcher: what the launcher started may not pass on the
// control stream and the progress memory, so the pool does without them;
// w's pid is the one it said, and its host the one it said if srun or the
// like ran it elsewhere. A worker that asked for a setup limits its own
// memory; one behind a launcher that did not is not measured either.
func (w *worker) adopt(h *ipc.Hello) {
	p := w.p
	p.mu.Lock()
	w.explicit = true
	w.maxWindow = remoteWindow * p.cfg.MaxWindow
	// Started directly here (a --worker-cmd of another language, a local
	// poold worker), its memory is this machine's to read: it stays
	// measured, whatever it does with the Setup's limit.
	w.measured = w.host == "" && h.PID == w.pid
	w.launcherPID, w.pid = w.pid, h.PID
	if w.host == "" && h.Host != "" && h.Host != p.hostname {
		w.host = h.Host // srun and the like say nothing of where they ran it
	}
	w.log = p.workerLog(w)
	p.mu.Unlock()
	w.closeControl()
	w.ctl = nil
	if w.readProgress != nil {
		w.readProgress() // unmaps it
		w.readProgress = nil
	}
}

// setUp answers the hello of a worker that asked for its settings (an
// explicit `poold worker`, which no environment or extra descriptor
// reaches) and reads the hello it says once set up. Such a worker measures
// and limits its own memory, reads no control stream and records no
// progress: the pool's means for those are dropped, and its pid is the one
// it said, not its launcher's.
func (w *worker) setUp(first *ipc.Message) error {
	p := w.p
	set := p.settings()
	w.pipe.mu.Lock()
	err := w.pipe.out.WriteSetup(&ipc.Setup{
		MaxFrame: set.MaxFrame, MaxOutput: set.MaxOutput, LogLevel: set.LogLevel,
		Initializer: set.Initializer, InitializerArgs: set.InitializerArgs, Procs: set.Procs,
		MaxMemory: p.cfg.MaxWorkerMemory, MemoryInterval: int64(p.cfg.MemoryInterval),
	})
	if err == nil {
		err = w.pipe.out.Flush()
	}
	w.pipe.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sending the setup: %w", err)
	}
	w.adopt(&first.Hello)
	if err := w.in.Read(first); err != nil {
		return err
	}
	if err := checkHello(first); err != nil {
		return err
	}
	if first.Hello.Setup {
		return fmt.Errorf("%w: a second hello that asks for a setup again", ipc.ErrMalformed)
	}
	if first.Hello.PID != w.pid {
		return fmt.Errorf("%w: the second hello says pid %d, the first said %d", ipc.ErrMalformed, first.Hello.PID, w.pid)
	}
	return nil
}

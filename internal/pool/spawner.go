package pool

import (
	"os/exec"
	"runtime"
)

// spawner starts every worker of a pool from one goroutine locked to one OS
// thread. Pdeathsig is delivered when the *thread* that forked a child exits,
// not the process (golang/go#27505): started from ordinary goroutines, workers
// would be killed whenever the runtime retired a thread. The spawner's thread
// lives until the pool has reaped its last worker. Elsewhere the lock is
// harmless: FreeBSD's Pdeathsig follows the parent process, darwin has none.
type spawner struct {
	reqs chan spawnReq
}

type spawnReq struct {
	cmd   *exec.Cmd
	reply chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go func() {
		// Never unlocked: when this goroutine returns, its thread exits with
		// it, which is what we want once no worker is left.
		runtime.LockOSThread()
		for r := range s.reqs {
			r.reply <- r.cmd.Start()
		}
	}()
	return s
}

// start runs cmd.Start on the spawner's thread.
func (s *spawner) start(cmd *exec.Cmd) error {
	reply := make(chan error, 1)
	s.reqs <- spawnReq{cmd, reply}
	return <-reply
}

// stop ends the spawner once no more starts will be asked of it.
func (s *spawner) stop() { close(s.reqs) }

//go:build !linux && !freebsd

package pool

import "syscall"

// workerProcAttr puts a worker in its own process group. Darwin has no
// Pdeathsig, so a worker learns of its parent's death only from its pipes
// (see the worker's serve loop): an idle one reads EOF and kills its group;
// a busy one fails to write its task's result and exits, leaving what the
// task started; a task that never returns keeps its worker alive.
func workerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

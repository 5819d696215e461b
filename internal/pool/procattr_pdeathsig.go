//go:build linux || freebsd

package pool

import "syscall"

// workerProcAttr puts a worker in its own process group, and has the kernel
// send it SIGTERM when its parent goes: on Linux when the spawner's thread
// exits (see spawner), on FreeBSD (procctl PROC_PDEATHSIG_CTL) when the
// parent process exits. SIGTERM, not SIGKILL: the worker catches it and
// kills its whole process group, so that what its tasks started dies too.
func workerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

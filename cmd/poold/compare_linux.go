package main

import "syscall"

// childProcAttr puts a run of poold compare in a process group of its own,
// so that a Ctrl-C at the terminal reaches compare alone (which passes it
// on once), and has the kernel send it SIGTERM should compare die without
// waiting for it.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

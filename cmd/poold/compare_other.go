//go:build !linux

package main

import "syscall"

// childProcAttr puts a run of poold compare in a process group of its own,
// so that a Ctrl-C at the terminal reaches compare alone (which passes it
// on once). There is no Pdeathsig here: a run whose compare died goes on
// to its end.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

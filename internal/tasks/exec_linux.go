package tasks

import "syscall"

// execProcAttr makes exec's program die with its worker (Pdeathsig): a
// worker killed outright (by the OOM killer, by hand) cannot end it, and a
// worker on another machine has no parent near to end its group. The
// signal follows the thread that started the program, which execTask
// keeps locked until the program has ended.
func execProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }

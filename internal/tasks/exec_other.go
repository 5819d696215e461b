//go:build !linux

package tasks

import "syscall"

// execProcAttr: without Pdeathsig, exec's program outlives a worker killed
// outright; the pool ends a local worker's process group after it exits.
func execProcAttr() *syscall.SysProcAttr { return nil }

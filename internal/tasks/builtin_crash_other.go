//go:build !linux

package tasks

import (
	"errors"
	"syscall"
)

var errCrashUnsupported = errors.New("crash: modes segfault and abort are only supported on Linux")

func segfault() error            { return errCrashUnsupported }
func dieBy(syscall.Signal) error { return errCrashUnsupported }

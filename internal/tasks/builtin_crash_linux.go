package tasks

import (
	"errors"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Go's runtime handles SIGSEGV and SIGABRT itself: a fault becomes a panic
// and an unrecovered one ends in exit status 2, so that the process never
// dies by the signal. segfault and dieBy put back the default action first
// (with a raw rt_sigaction: os/signal cannot reset synchronous signals),
// then raise the signal. Core dumps are turned off first: a deliberate
// crash should not litter the disk.

// nilInt is nil; a package variable so that the compiler cannot see it.
var nilInt *int

// segfault dies by a genuine invalid memory access.
func segfault() error {
	if err := defaultAction(syscall.SIGSEGV); err != nil {
		return err
	}
	*nilInt = 1
	return errors.New("crash: survived a write through a nil pointer")
}

// dieBy raises sig, with its default action, in the calling thread.
func dieBy(sig syscall.Signal) error {
	runtime.LockOSThread() // for Gettid and the signal mask: we die on this thread
	defer runtime.UnlockOSThread()
	if err := defaultAction(sig); err != nil {
		return err
	}
	var set unix.Sigset_t
	set.Val[(sig-1)/64] |= 1 << ((uint(sig) - 1) % 64)
	if err := unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil); err != nil {
		return err
	}
	if err := unix.Tgkill(os.Getpid(), unix.Gettid(), sig); err != nil {
		return err
	}
	time.Sleep(time.Second) // delivery is immediate; this is a safety net
	return errors.New("crash: survived " + sig.String())
}

// defaultAction resets sig to SIG_DFL and disables core dumps.
func defaultAction(sig syscall.Signal) error {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return err
	}
	// A zeroed struct kernel_sigaction is {SIG_DFL, no flags, empty mask}
	// on every architecture; 64 bytes is more than any of them needs. The
	// last argument, the size of the kernel's sigset_t, is 8 except on mips
	// (where this fails with EINVAL, and so does the task).
	var act [8]uint64
	if _, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig),
		uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0); errno != 0 {
		return errno
	}
	return nil
}

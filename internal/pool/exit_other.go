//go:build !linux

package pool

import "golang.org/x/sys/unix"

// waitExit blocks until process pid, a child not yet reaped, has exited,
// without reaping it: until it is reaped, its pid, and so its process
// group's id, cannot be given to another process. x/sys has no waitid here;
// a kqueue filter on the process's exit (EVFILT_PROC, NOTE_EXIT) waits the
// same way, on darwin and the BSDs.
//
// If the kqueue cannot be had (out of descriptors, say), it returns at
// once, and the caller kills the group before the worker is known to have
// exited. That is still safe, since the pid is not reaped; and the worker
// has almost surely exited, since the pool asks only once the worker's
// stdout has ended, and its exit status is fixed before the kernel closes
// its descriptors, so the kill cannot change it. Only a worker that closed
// its protocol descriptor and lived on would read as killed by SIGKILL
// rather than by what ended it.
func waitExit(pid int) {
	kq, err := unix.Kqueue()
	if err != nil {
		return
	}
	defer unix.Close(kq)
	var ev [1]unix.Kevent_t
	unix.SetKevent(&ev[0], pid, unix.EVFILT_PROC, unix.EV_ADD|unix.EV_ONESHOT)
	ev[0].Fflags = unix.NOTE_EXIT
	// ESRCH: the child is already a zombie (darwin does not attach to one;
	// FreeBSD does, and reports the exit at once).
	if _, err := unix.Kevent(kq, ev[:], nil, nil); err != nil {
		return
	}
	for {
		if _, err := unix.Kevent(kq, nil, ev[:], nil); err != unix.EINTR {
			return
		}
	}
}

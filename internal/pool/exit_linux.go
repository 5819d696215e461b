package pool

import "golang.org/x/sys/unix"

// waitExit blocks until process pid has exited, without reaping it
// (waitid with WNOWAIT): until it is reaped, its pid, and so its process
// group's id, cannot be given to another process.
func waitExit(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			break
		}
	}
}

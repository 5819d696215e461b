package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// fdsPerWorker is what poold holds open for each worker: the pipes to its
// stdin, stdout and stderr, and a pidfd.
const fdsPerWorker = 4

// fdSlack is room for what poold opens besides: the task file, the
// pipes of a worker being started, the runtime's own.
const fdSlack = 16

// checkLimits refuses a number of workers that the process limits cannot
// allow, in one line, before any is started: otherwise they would fail one
// after the other. It checks what is cheap to know: the open-file limit
// (RLIMIT_NOFILE, which Go raises to its hard limit at start-up) against
// what the workers need, and the process limit (RLIMIT_NPROC, which does
// not bind root) against their number. A limit reached anyway, by a
// process or a thread of the same user, fails the pool's start, which
// poold also reports in one line.
func checkLimits(workers int) error {
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur != unix.RLIM_INFINITY {
		if need := uint64(openFiles() + fdsPerWorker*workers + fdSlack); need > lim.Cur {
			return fmt.Errorf("cannot start %s: they need about %d open files in poold, over its limit of %d (ulimit -n); use a smaller -n or raise the limit",
				plural(workers, "worker"), need, lim.Cur)
		}
	}
	if os.Geteuid() != 0 && unix.Getrlimit(unix.RLIMIT_NPROC, &lim) == nil && lim.Cur != unix.RLIM_INFINITY && uint64(workers) >= lim.Cur {
		return fmt.Errorf("cannot start %s: the limit is %d processes for this user, poold's included (ulimit -u); use a smaller -n or raise the limit",
			plural(workers, "worker"), lim.Cur)
	}
	return nil
}

// openFiles is the number of file descriptors open in this process.
func openFiles() int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(fds) - 1 // the directory's own
}
